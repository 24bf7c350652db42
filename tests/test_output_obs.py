"""The "obs" output (frame server) with the stdlib FrameReceiver the OBS script uses."""

from __future__ import annotations

import socket
import threading
import time

import numpy as np
import pytest

from worker.control import protocol as P
from worker.errors import UserError
from worker.output.obs import ObsOutput

TOKEN = "frame-token-" + "y" * 20


def pattern(seq: int, size: int = 512) -> np.ndarray:
    """A frame whose pixels depend on seq, so any mix-up or tearing shows."""
    rng = np.random.default_rng(seq)
    img = rng.integers(0, 256, (size, size, 4), dtype=np.uint8)
    img[0, 0, :] = [seq % 256, (seq >> 8) % 256, 0, 255]
    return img


@pytest.fixture
def obs():
    out = ObsOutput(token=TOKEN)
    out.start()
    yield out
    out.close()


def test_frames_arrive_in_order_intact_with_low_latency(obs):
    rx = P.FrameReceiver(obs.port, TOKEN).connect()
    frames = {i: pattern(i) for i in range(4)}
    got = []
    for i in range(90):  # 3 s of 30 fps would be slow; pace at 90 fps for 1 s
        obs.send(frames[i % 4], i, time.time())
        f = rx.poll(0.2)
        assert f is not None, f"frame {i} did not arrive"
        assert (f.width, f.height) == (512, 512)
        assert f.seq == i and f.capture_ts <= f.send_ts <= f.recv_ts
        assert bytes(f.data) == frames[i % 4].tobytes()
        got.append(f.latency)
        time.sleep(1 / 90)
    lat = np.array(got) * 1000
    p50, p95 = np.percentile(lat, [50, 95])
    print(f"\nobs output 512x512 loopback latency p50 {p50:.2f} ms p95 {p95:.2f} ms")
    assert p95 < 100
    st = obs.stats()
    assert st["delivered"] == 90 and st["dropped"] == 0 and st["clients"] == 1
    assert st["latency_ms_p50"] is not None
    rx.close()


def test_slow_client_gets_newest_frames_and_never_blocks_the_sender(obs):
    stalled = socket.create_connection(("127.0.0.1", obs.port))
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.sendall(P.auth_line(TOKEN))  # ...and then never reads
    fast = P.FrameReceiver(obs.port, TOKEN).connect()
    seen: list[int] = []
    stop = threading.Event()

    def read_fast() -> None:
        while not stop.is_set():
            f = fast.poll(0.05)
            if f is not None:
                seen.append(f.seq)

    t = threading.Thread(target=read_fast)
    t.start()
    time.sleep(0.1)
    img = pattern(1)
    took = []
    for i in range(120):
        t0 = time.perf_counter()
        obs.send(img, i, time.time())
        took.append(time.perf_counter() - t0)
        time.sleep(0.004)
    time.sleep(0.2)
    stop.set()
    t.join()
    # a sender that blocks on the stalled client would do so on every frame once its buffer is full;
    # a few slow calls are the VM's scheduling (one of 214 ms seen in a full CI run), not that: they
    # are counted instead of timing the worst
    slow = [round(t * 1000) for t in took if t > 0.05]
    assert len(slow) <= 12, f"send() took over 50 ms in {len(slow)} of 120 calls: {slow}"
    assert seen and seen[-1] == 119, "the fast client must end on the newest frame"
    assert seen == sorted(seen)
    assert obs.stats()["dropped"] > 50  # the stalled client skipped most frames
    stalled.close()
    fast.close()


def test_receiver_skips_to_newest_when_polled_late(obs):
    rx = P.FrameReceiver(obs.port, TOKEN).connect()
    time.sleep(0.05)
    for i in range(5):
        obs.send(pattern(i, 64), i, time.time())
        time.sleep(0.02)  # each one fully sent before the next
    time.sleep(0.1)
    f = rx.poll(0.5)
    assert f is not None and f.seq == 4
    assert rx.skipped == 4 and rx.received == 5 and rx.gaps == 0
    assert bytes(f.data) == pattern(4, 64).tobytes()
    assert rx.poll(0.05) is None
    rx.close()


def test_frame_channel_auth(obs):
    with pytest.raises(P.AuthError, match="bad token"):
        P.FrameReceiver(obs.port, "wrong-token-zzzz").connect()
    s = socket.create_connection(("127.0.0.1", obs.port), timeout=3)
    s.sendall(b"garbage\n")
    assert b'"ok":false' in s.recv(4096)
    s.close()


def test_receiver_sees_worker_going_away():
    out = ObsOutput(token=TOKEN)
    out.start()
    rx = P.FrameReceiver(out.port, TOKEN).connect()
    out.send(pattern(0, 32), 0, time.time())
    assert rx.poll(1.0) is not None
    out.close()
    with pytest.raises(ConnectionError):
        for _ in range(20):
            rx.poll(0.1)
    assert not rx.connected


def test_token_required(monkeypatch):
    monkeypatch.delenv(P.ENV_TOKEN, raising=False)
    with pytest.raises(UserError, match=P.ENV_TOKEN):
        ObsOutput()
    monkeypatch.setenv(P.ENV_TOKEN, TOKEN)
    assert ObsOutput().server.token == TOKEN
