"""The "nut" output against a PyAV listener configured like OBS's Media Source."""

from __future__ import annotations

import socket
import threading
import time

import av
import numpy as np
import pytest

from worker.errors import UserError
from worker.output.nut import NutOutput
from worker.output.registry import create_output


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Listener(threading.Thread):
    """Listens like OBS does (tcp://...?listen, nut, no buffering) and decodes n frames."""

    def __init__(self, port: int, n: int):
        super().__init__(daemon=True)
        self.port, self.n = port, n
        self.frames: list[np.ndarray] = []
        self.formats: set[str] = set()
        self.error: Exception | None = None
        self.ready = threading.Event()

    def run(self) -> None:
        try:
            self.ready.set()
            with av.open(
                f"tcp://127.0.0.1:{self.port}?listen=1&listen_timeout=10000",
                format="nut",
                options={"fflags": "nobuffer", "probesize": "32", "analyzeduration": "0"},
            ) as c:
                for frame in c.decode(video=0):
                    self.formats.add(frame.format.name)
                    self.frames.append(frame.to_ndarray(format="rgba"))
                    if len(self.frames) >= self.n:
                        return
        except Exception as e:  # reported by the test
            self.error = e


def rgba_pattern(i: int, h: int = 96, w: int = 128) -> np.ndarray:
    img = np.zeros((h, w, 4), np.uint8)
    img[..., 0] = np.arange(w)[None, :] * 2
    img[..., 1] = np.arange(h)[:, None] * 2
    img[..., 2] = i * 10
    img[..., 3] = (np.arange(w)[None, :] + np.arange(h)[:, None]) % 256  # gradient alpha
    return img


def send_until(out: NutOutput, listener: Listener, start: int, timeout: float = 10.0) -> int:
    i = start
    deadline = time.monotonic() + timeout
    while listener.is_alive() and time.monotonic() < deadline:
        out.send(rgba_pattern(i), i, time.time())
        i += 1
        time.sleep(1 / 60)
    return i


def test_alpha_survives_and_output_reconnects():
    port = free_port()
    out = create_output({"type": "nut", "port": port, "max_backoff": 0.2})
    out.start()
    # nobody listening yet: frames are dropped, not fatal
    for i in range(5):
        out.send(rgba_pattern(i), i, time.time())
    assert not out.connected and out.stats()["dropped"] == 5
    assert "connect" in out.stats()["last_error"]

    first = Listener(port, 8)
    first.start()
    first.ready.wait()
    time.sleep(0.2)
    i = send_until(out, first, 5)
    first.join(5)
    assert first.error is None, first.error
    assert len(first.frames) == 8 and first.formats == {"rgba"}
    # frames are exact (rawvideo), including alpha; every frame is one we sent
    sent = {rgba_pattern(k).tobytes() for k in range(i)}
    assert all(f.tobytes() in sent for f in first.frames)
    assert np.array_equal(first.frames[0][..., 3], rgba_pattern(0)[..., 3])
    assert out.connects == 1

    # OBS goes away and comes back (scene switch, restart): the output reconnects by itself
    second = Listener(port, 3)
    second.start()
    second.ready.wait()
    send_until(out, second, i)
    second.join(5)
    assert second.error is None, second.error
    assert len(second.frames) == 3
    st = out.stats()
    assert st["connects"] == 2 and st["delivered"] >= 11
    out.close()


def test_config_errors():
    with pytest.raises(UserError, match="outputs.nut.port is required"):
        create_output({"type": "nut"})
    with pytest.raises(UserError, match="loopback"):
        NutOutput(port=9999, host="10.0.0.1")
    with pytest.raises(UserError, match="unknown key"):
        create_output({"type": "nut", "port": 1, "colour": 3})


# The stream, in a fresh interpreter: in a test worker that ran other files first, threads they left
# (a server, a native pool) allocate while this measures (one CI run read 7.4 MiB that way).
LONG_STREAM = r"""
import json, os, socket, sys, threading
import numpy as np
from worker.output.registry import create_output
from worker.tools.soak import rss_mib

srv = socket.create_server(("127.0.0.1", 0))
port = srv.getsockname()[1]
got = [0]

def drain():  # a receiver that reads as fast as it can and keeps nothing
    conn, _ = srv.accept()
    with conn:
        while data := conn.recv(1 << 20):
            got[0] += len(data)

t = threading.Thread(target=drain, daemon=True)
t.start()
out = create_output({"type": "nut", "port": port})
out.start()
img = np.zeros((96, 96, 4), np.uint8)
img[..., 0] = np.arange(96)[None, :] * 2
img[..., 3] = 255
warm, n = int(sys.argv[1]), int(sys.argv[2])
for i in range(warm):  # allocator pools and buffers fill up first
    out.send(img, i, i / 30)
before = rss_mib(os.getpid())
for i in range(warm, warm + n):
    out.send(img, i, i / 30)
grown = rss_mib(os.getpid()) - before
delivered, connects = out.stats()["delivered"], out.connects
out.close()
t.join(5)
srv.close()
print(json.dumps({"grown": grown, "delivered": delivered, "connects": connects, "bytes": got[0], "frame": img.nbytes}))
"""


def test_a_long_stream_holds_no_per_frame_memory():
    """NUT's muxer kept every syncpoint (one per rawvideo frame) for a seek index written at the
    end: 262 bytes a frame, 0.45 MiB a minute at 30 FPS for as long as the stream ran. The live
    output writes no index, so its memory stays flat whatever the stream's length."""
    import json
    import subprocess
    import sys

    warm, n = 5_000, 40_000  # 96x96 RGBA, 36 KB: over NUT's max_distance (32 KB), a syncpoint each frame
    r = subprocess.run(
        [sys.executable, "-c", LONG_STREAM, str(warm), str(n)], capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["delivered"] == warm + n and res["connects"] == 1, res
    assert res["bytes"] > n * res["frame"]
    grown = res["grown"]
    # Measured over these 40,000 frames: with the index 10.0 MiB (40,000 x 262 bytes); without it
    # 0.35-0.7 MiB of allocator noise (one CI run saw 1.05 MiB over 10,000 frames, so a short run
    # cannot tell the two apart).
    assert grown < 3.0, f"{grown:.2f} MiB over {n} frames"
