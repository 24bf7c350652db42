"""The "ws" output with real aiohttp clients on 127.0.0.1: frames in every pixel format, newest
frame per client, stalled / many / malformed / oversized / unauthenticated clients, and the
stable address. The live API (switch, say, render) is in test_ws_live.py."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import aiohttp
import cv2
import numpy as np
import pytest

from worker.control import protocol as P
from worker.output.registry import parse_output_spec
from worker.web.ws_output import WsOutput

SIZE = 512


def picture(i: int, size: int = SIZE) -> np.ndarray:
    """Transparent left half, an opaque right half whose red channel counts frames."""
    rgba = np.zeros((size, size, 4), np.uint8)
    rgba[:, size // 2 :, :] = (i % 256, 128, 255 - i % 256, 255)
    return rgba


class Producer:
    """Sends frames at `fps` on its own thread, like the fanout; records how long each send took."""

    def __init__(self, out: WsOutput, fps: float = 30.0, size: int = SIZE) -> None:
        self.out, self.period, self.size = out, 1.0 / fps, size
        self.sends: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        i, t_next = 0, time.monotonic()
        frames = [picture(k, self.size) for k in range(8)]
        while not self.stop.is_set():
            t0 = time.perf_counter()
            self.out.send(frames[i % 8], i, time.time())
            self.sends.append(time.perf_counter() - t0)
            i += 1
            t_next += self.period
            self.stop.wait(max(0.0, t_next - time.monotonic()))

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)


@pytest.fixture()
def out(tmp_path, monkeypatch):
    monkeypatch.setenv("STREAM_ANIMATOR_CONFIG", str(tmp_path / "config"))
    o = WsOutput(port=0, token="ws-test-token-123456")
    o.start()
    yield o
    o.close()


async def frames_for(url: str, seconds: float) -> list[P.FrameHeader]:
    got = []
    async with aiohttp.ClientSession() as s, s.ws_connect(url, max_msg_size=0) as ws:
        t_end = time.monotonic() + seconds
        while (left := t_end - time.monotonic()) > 0:
            try:
                m = await asyncio.wait_for(ws.receive(), left)
            except asyncio.TimeoutError:
                break
            if m.type == aiohttp.WSMsgType.BINARY:
                h = P.unpack_frame_header(m.data[: P.FRAME_HEADER_SIZE], tuple(P.PIXEL_FORMATS.values()))
                assert len(m.data) == P.FRAME_HEADER_SIZE + h.payload_len
                got.append((h, m.data[P.FRAME_HEADER_SIZE :]))
    return got


def test_short_form_and_registry():
    assert parse_output_spec("ws") == {"type": "ws"}
    assert parse_output_spec("ws:8123") == {"type": "ws", "port": 8123}


def test_every_pixel_format_keeps_alpha(out):
    prod = Producer(out)
    try:
        for name, fmt in P.PIXEL_FORMATS.items():
            got = asyncio.run(frames_for(out.server.ws_url(f"/ws?format={name}"), 1.0))
            assert got, name
            h, payload = got[-1]
            assert (h.pixel_format, h.width, h.height) == (fmt, SIZE, SIZE)
            if fmt == P.PIXEL_RGBA:
                img = np.frombuffer(payload, np.uint8).reshape(SIZE, SIZE, 4)
            else:
                img = cv2.cvtColor(
                    cv2.imdecode(np.frombuffer(payload, np.uint8), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGRA2RGBA
                )
            assert img[:, : SIZE // 2 - 2, 3].max() == 0, name  # transparent where the picture is
            assert img[:, SIZE // 2 + 2 :, 3].min() == 255, name
            seqs = [g[0].seq for g in got]
            assert seqs == sorted(seqs)
    finally:
        prod.close()


def test_stalled_and_many_clients_do_not_slow_the_others(out):
    """One client that never reads, 100 more control-only and WebP clients: the producer's send()
    stays quick, a normal RGBA client keeps receiving, the stalled one's losses are counted."""
    prod = Producer(out)

    async def scenario():
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as s:  # no cap of 100
            stalled = await s.ws_connect(out.server.ws_url("/ws"), max_msg_size=0)  # never reads
            crowd = [
                await s.ws_connect(out.server.ws_url("/ws?frames=0" if i % 2 else "/ws?format=webp"), max_msg_size=0)
                for i in range(100)
            ]
            await asyncio.sleep(1.0)
            got = await frames_for(out.server.ws_url("/ws"), 3.0)
            stats = out.stats()
            for ws in crowd:
                await ws.close()
            stalled._response.connection.transport.abort()  # gone without a goodbye
            return got, stats

    try:
        got, stats = asyncio.run(scenario())
    finally:
        prod.close()
    assert stats["clients"] >= 101
    fps = (len(got) - 1) / (got[-1][0].capture_ts - got[0][0].capture_ts)
    assert fps >= 15, f"the reading client got {fps:.1f} FPS of 30 beside 101 others"  # target 30: the bench
    assert stats["dropped"] > 0 and stats["worst_clients"][0]["dropped"] > 0  # the stalled one, counted
    assert float(np.median(prod.sends)) < 0.05  # send() never waits for a client (WebP + RGBA encode)


def test_bad_clients_get_one_error_each(out):
    async def scenario():
        res = {}
        async with aiohttp.ClientSession() as s:
            base = out.server.url("/ws", token=False)
            async with s.get(base.replace("http", "http", 1) + "?token=wrong-token-x") as r:
                res["wrong token"] = r.status
            async with s.ws_connect(out.server.ws_url("/ws", token=False)) as ws:  # no token: in-band
                await ws.send_str(json.dumps({"op": "auth", "token": "nope-nope-nope"}))
                res["bad auth"] = [json.loads((await ws.receive()).data), (await ws.receive()).type]
            async with s.ws_connect(out.server.ws_url("/ws", token=False)) as ws:
                await ws.send_str(json.dumps({"op": "auth", "token": out.token}))
                res["good auth"] = json.loads((await ws.receive()).data)
                for bad in ("not json", "[1, 2]", json.dumps({"id": 5, "op": "no_such_op"}), json.dumps({"op": "x"})):
                    await ws.send_str(bad)
                replies = []
                while len(replies) < 4:
                    m = await ws.receive()
                    if m.type == aiohttp.WSMsgType.TEXT:
                        replies.append(json.loads(m.data))
                res["malformed"] = replies
                await ws.send_str(json.dumps({"id": 6, "op": "frames", "format": "bmp"}))
                while (m := await ws.receive()).type != aiohttp.WSMsgType.TEXT:
                    pass
                res["bad format"] = json.loads(m.data)
            async with s.ws_connect(out.server.ws_url("/ws?frames=0")) as ws:
                errors = out.hub.errors
                try:  # over the limit: closed with "message too big" (or reset while still writing)
                    await ws.send_str("x" * (5 << 20))
                    await ws.receive()
                    res["oversized"] = ws.close_code
                except ConnectionError:
                    res["oversized"] = "reset"
                for _ in range(50):
                    if out.hub.errors > errors:
                        break
                    await asyncio.sleep(0.05)
                res["oversized counted"] = out.hub.errors - errors
            async with s.ws_connect(out.server.ws_url("/ws?frames=0")) as ws:
                await ws.send_bytes(b"\x00" * 10)
                res["binary"] = [json.loads((await ws.receive()).data), (await ws.receive()).type]
        return res

    prod = Producer(out)
    try:
        r = asyncio.run(scenario())
        got = asyncio.run(frames_for(out.server.ws_url("/ws"), 1.0))  # and it still streams
    finally:
        prod.close()
    assert r["wrong token"] == 403
    assert r["bad auth"][0]["ok"] is False and r["bad auth"][1] == aiohttp.WSMsgType.CLOSE
    assert r["good auth"] == P.auth_ok()
    assert [x["ok"] for x in r["malformed"]] == [False] * 4
    assert "unknown op" in r["malformed"][2]["error"] and r["malformed"][2]["id"] == 5
    assert r["bad format"]["ok"] is False and "format" in r["bad format"]["error"]
    assert r["oversized"] in (aiohttp.WSCloseCode.MESSAGE_TOO_BIG, "reset") and r["oversized counted"] == 1
    assert r["binary"][0]["ok"] is False and r["binary"][1] == aiohttp.WSMsgType.CLOSE
    assert len(got) > 5


def test_address_is_kept_across_restarts(tmp_path, monkeypatch):
    monkeypatch.setenv("STREAM_ANIMATOR_CONFIG", str(tmp_path / "config"))
    first = WsOutput()
    first.start()
    url = first.source_url()
    first.close()
    again = WsOutput()
    again.start()
    try:
        assert again.source_url() == url and "token=" in url
        saved = json.loads((tmp_path / "config" / "web.json").read_text())
        assert saved["port"] == again.port and saved["token"] == again.token
    finally:
        again.close()
    (tmp_path / "config" / "web.json").write_text("{broken")
    third = WsOutput()  # a damaged settings file: a new address, saved
    assert third.token != again.token
    assert json.loads((tmp_path / "config" / "web.json").read_text())["token"] == third.token
