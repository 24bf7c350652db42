"""The "ws" output: the worker's web server with the frames and the control API on ``/ws`` and
the OBS Browser Source page on ``/source`` (protocol: `worker.control.protocol`, "WebSocket
channel").

`send()` runs on the fanout's thread for this output: it encodes the frame once per pixel format
some client wants (raw RGBA, WebP or PNG with alpha) and posts it to the hub; the event loop
does the rest. `attach()` (called by `LiveWorker` once the pipeline exists) connects the control
ops, the events and the voice, which `say` and the request/response mode (`render`) use.
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import threading
import time
import wave
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
from aiohttp import web
from PIL import Image

from worker.audio import limits
from worker.control import protocol as P
from worker.errors import UserError
from worker.output.base import Output, check_rgba
from worker.output.registry import OUTPUTS
from worker.slot import LatestSlot
from worker.web.server import WebServer
from worker.web.stream import THEN_BINARY, Client, Frame, StreamHub

log = logging.getLogger(__name__)

SAY_LEAD = 0.25  # seconds between a `say` and its first sound: the pages fetch the audio meanwhile
RENDER_TIMEOUT = 2.0  # seconds a `render` waits for the frame that carries its mouth
MAX_SAY_SECONDS = limits.SAY_S
WEBP_ALPHA_QUALITY = 50  # lossy WebP's alpha plane (100 = lossless alpha)


def encode(rgba: np.ndarray, fmt: int, webp_quality: int = 90) -> bytes:
    """The payload of one frame in pixel format `fmt` (straight alpha kept in all three)."""
    if fmt == P.PIXEL_RGBA:
        return np.ascontiguousarray(rgba).tobytes()
    if fmt == P.PIXEL_WEBP:
        # Pillow's libwebp at its fastest method (m4 and OpenCV's encoder: ~3.5x slower, 17% smaller).
        # Lossy alpha at quality 50: a third less encode time than lossless alpha, and 0 and 255 stay
        # exact (edges within 12/255 on the demo character); see tests/test_ws_encode.py.
        buf = io.BytesIO()
        if webp_quality > 100:
            opts: dict = {"lossless": True, "quality": 0}
        else:
            opts = {"quality": webp_quality, "alpha_quality": WEBP_ALPHA_QUALITY}
        Image.fromarray(rgba, "RGBA").save(buf, "WEBP", method=0, **opts)
        return buf.getvalue()
    # zlib level 1 with run-length matching: 1.14-1.28x quicker than the default strategy and 16%
    # smaller on the demo character (transparent runs); the row filters do most of the rest
    bgra = cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA)
    params = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]
    ok, png = cv2.imencode(".png", bgra, params)
    if not ok:
        raise RuntimeError("encoding a frame as PNG failed")
    return png.tobytes()


class _Encoder:
    """One thread per encoded pixel format (WebP, PNG): the newest frame wins, so a slow encoder
    skips frames for its own clients (counted as their drops) and raw RGBA never waits for it."""

    def __init__(self, fmt: int, quality: int, post: Callable[[Frame], None]) -> None:
        self.fmt, self.quality, self.post = fmt, quality, post
        self.slot: LatestSlot[tuple[np.ndarray, Frame]] = LatestSlot()
        self.thread = threading.Thread(target=self._run, name=f"ws-encode-{fmt}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (item := self.slot.take(0.5)) is not None or not self.slot.closed:
            if item is None:
                continue
            rgba, frame = item
            try:
                payload = encode(rgba, self.fmt, self.quality)
            except Exception:
                log.exception("ws: encoding pixel format %d failed", self.fmt)
                continue
            h, w = rgba.shape[:2]
            header = P.pack_frame_header(w, h, frame.seq, frame.capture_ts, time.time(), self.fmt, len(payload))
            self.post(Frame(frame.n, frame.seq, frame.capture_ts, w, h, {self.fmt: header + payload}))

    def close(self) -> None:
        self.slot.close()


def wav_bytes(samples: np.ndarray, rate: int = 16000) -> bytes:
    pcm = (np.clip(np.asarray(samples, np.float32), -1.0, 1.0) * 32767.0).astype("<i2")
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return out.getvalue()


def bounds(rgba: np.ndarray) -> list[int]:
    """[x, y, w, h] of the non-transparent pixels ([0, 0, 0, 0] when there are none)."""
    x, y, w, h = cv2.boundingRect((rgba[..., 3] > 0).astype(np.uint8))
    return [int(x), int(y), int(w), int(h)]


class WsOutput(Output):
    """Frames and control over WebSocket, and the Browser Source page (see the module doc)."""

    name = "ws"

    def __init__(
        self,
        port: int | None = None,
        token: str | None = None,
        host: str = P.HOST,
        max_clients: int = 128,
        webp_quality: int = 90,
        obs_scenes: dict[str, str] | None = None,
        obs_websocket_port: int | None = None,
        obs_websocket_password: str | None = None,
    ) -> None:
        super().__init__()
        for scene, character in (obs_scenes or {}).items():
            if not isinstance(character, str) or not character:
                raise UserError(f"outputs.ws.obs_scenes: scene {scene!r} must name a character (a file name)")
        self.obs_scenes = dict(obs_scenes or {})
        self.obs_websocket = (obs_websocket_port, obs_websocket_password)
        self.scene_follower: Any = None
        if port is None or token is None:
            from worker.web.settings import stable_address

            saved = stable_address()  # the address a Browser Source was set up with
            port = saved.port if port is None else port
            token = saved.token if token is None else token
        self.hub = StreamHub(self.metrics, max_clients)
        self.server = WebServer(token, host, port, name="ws")
        self.webp_quality = webp_quality
        self.server.add_socket("/ws", self.hub.handle)
        self.server.add_page("/source", "source.html")
        self.server.add_get("/say/{n}.wav", self._say_audio)
        self.server.app.on_shutdown.insert(0, lambda app: self.hub.close_all())
        self.hub.ops.update({"frames": self._op_frames, "say": self._op_say, "render": self._op_render})
        self.speaker: Any = None  # worker.live.say.Speaker, once attached
        self.controls: Any = None
        self.stages: Any = None
        self._said: dict[int, bytes] = {}
        self._said_n = 0
        self._waiters: list[tuple[float, asyncio.Future]] = []
        self._encoders: dict[int, _Encoder] = {}
        self._lipsync_before: str | None = None  # the mode to go back to after a `say` / `render`
        self._lipsync_restore: asyncio.TimerHandle | None = None

    @classmethod
    def from_config(cls, config: dict) -> WsOutput:
        o = OUTPUTS["ws"].check(config)
        return cls(
            o["port"],
            o["token"],
            o["host"],
            o["max_clients"],
            o["webp_quality"],
            o["obs_scenes"],
            o["obs_websocket_port"],
            o["obs_websocket_password"],
        )

    # ---- lifecycle ----
    @property
    def port(self) -> int:
        return self.server.port

    @property
    def token(self) -> str:
        return self.server.token

    def source_url(self) -> str:
        return self.server.url("/source")

    def start(self) -> None:
        if not self.server.running:
            self.server.start()
            self.hub.loop = self.server.loop

    def close(self) -> None:
        if self.scene_follower is not None:
            self.scene_follower.stop()
        self.server.stop()
        for enc in self._encoders.values():
            enc.close()

    def attach(self, call: Any, stages: Any = None) -> None:
        """Connect the control ops (`call(op, args)`) and the live stages (voice, controls)."""
        from worker.live.say import Speaker

        self.hub.call = call
        if stages is not None:
            self.stages = stages
            self.controls = stages.controls
            if not isinstance(stages.voice, Speaker):
                stages.voice = Speaker(stages.voice)
            self.speaker = stages.voice
        if self.obs_scenes and self.scene_follower is None:  # scene-bound characters without the script
            from worker.web.obs_scenes import SceneFollower

            port, password = self.obs_websocket
            self.scene_follower = SceneFollower(self.obs_scenes, call, port=port, password=password).start()

    def publish(self, event: dict) -> None:
        self.hub.publish(event)

    # ---- frames (the fanout's thread) ----
    def send(self, rgba: np.ndarray, seq: int, capture_ts: float) -> None:
        check_rgba(rgba)
        h, w = rgba.shape[:2]
        frame = Frame(self.hub.next_n(), seq, capture_ts, w, h)
        wanted = self.hub.formats_wanted()
        if P.PIXEL_RGBA in wanted:
            header = P.pack_frame_header(w, h, seq, capture_ts, time.time(), P.PIXEL_RGBA)
            frame.messages[P.PIXEL_RGBA] = header + encode(rgba, P.PIXEL_RGBA)
            self.hub.post(frame)
        for fmt in wanted - {P.PIXEL_RGBA}:
            enc = self._encoders.get(fmt)
            if enc is None:
                enc = self._encoders[fmt] = _Encoder(fmt, self.webp_quality, self.hub.post)
            enc.slot.put((rgba, frame))
        if self._waiters:
            self.server.call_soon(self._answer_render, rgba, frame)
        if not wanted:
            self.metrics.delivered_frame(capture_ts)  # nobody watching: handed over to no one

    def stats(self) -> dict:
        return {**super().stats(), "port": self.server.port, **self.hub.stats()}

    # ---- socket-only ops (the event loop) ----
    async def _op_frames(self, c: Client, args: dict) -> dict:
        on = args.get("on", True)
        if not isinstance(on, bool):
            raise ValueError("'on' must be true or false")
        fmt = args.get("format", "rgba")
        if fmt not in P.PIXEL_FORMATS:
            raise ValueError(f"'format' must be one of {', '.join(P.PIXEL_FORMATS)}")
        self.hub.set_format(c, P.PIXEL_FORMATS[fmt] if on else None)
        return {"frames": on, "format": fmt}

    async def _op_say(self, c: Client, args: dict) -> dict:
        if self.speaker is None:
            raise UserError("say needs the live worker (this output is not attached to one)")
        text, audio = args.get("text"), args.get("audio")
        if (text is None) == (audio is None):
            raise ValueError("say needs exactly one of 'text' (a line) or 'audio' (a WAV file, base64)")
        loop = asyncio.get_running_loop()
        if text is not None:
            if not isinstance(text, str) or not text.strip() or len(text) > 500:
                raise ValueError("'text' must be a line of 1..500 characters")
            from worker.audio.tts import synthesize

            samples = await loop.run_in_executor(None, synthesize, text)
        else:
            samples = await loop.run_in_executor(None, _decode_b64_audio, audio)
        if len(samples) / 16000 > MAX_SAY_SECONDS:
            raise ValueError(f"the line is longer than {MAX_SAY_SECONDS:.0f} s")
        start = time.time() + SAY_LEAD
        line = await loop.run_in_executor(None, self.speaker.say, samples, start)
        self._said_n += 1
        n = self._said_n
        self._said = {k: v for k, v in self._said.items() if k > n - 4}  # the last few lines stay fetchable
        self._said[n] = wav_bytes(samples)
        self._lipsync_during(line.seconds + SAY_LEAD)
        self.hub.publish(
            {
                "event": "say",
                "data": {"id": n, "url": f"/say/{n}.wav", "start": start, "seconds": round(line.seconds, 3)},
            }
        )
        return {"say": n, "seconds": round(line.seconds, 3), "start": start}

    def _lipsync_during(self, seconds: float) -> None:
        """The voice takes the mouth while the line plays (camera motion goes on), then back."""
        if self.controls is None or self.stages is None:
            return
        before = self._lipsync_before or self.stages.lipsync
        self._lipsync_before = before
        self.controls.add_options({"voice.lipsync": "always"})
        loop = asyncio.get_running_loop()
        if self._lipsync_restore is not None:
            self._lipsync_restore.cancel()

        def restore() -> None:
            self.controls.add_options({"voice.lipsync": before})
            self._lipsync_before = None
            self._lipsync_restore = None

        self._lipsync_restore = loop.call_later(seconds + 0.3, restore)

    async def _say_audio(self, request: web.Request) -> web.StreamResponse:
        try:
            data = self._said[int(request.match_info["n"])]
        except (KeyError, ValueError):
            raise web.HTTPNotFound(text="no such line\n") from None
        return web.Response(body=data, content_type="audio/wav")

    async def _op_render(self, c: Client, args: dict) -> dict:
        """Request/response: the frame the character shows for `frame_id` with `audio`'s mouth."""
        t0 = time.perf_counter()
        fid = args.get("frame_id")
        if not isinstance(fid, int) or isinstance(fid, bool) or fid < 0:
            raise ValueError("render needs 'frame_id': an integer >= 0")
        if self.speaker is None:
            raise UserError("render needs the live worker (this output is not attached to one)")
        from worker.live.say import mouth_of
        from worker.retarget.mouth_signal import MouthSignal

        rate = args.get("rate", 16000)
        if not isinstance(rate, int) or not 8000 <= rate <= 48000:
            raise ValueError("'rate' must be an integer 8000..48000")
        mouth = MouthSignal()
        audio = args.get("audio")
        if audio is not None:
            pcm = _b64(audio, "audio", P.MAX_RENDER_AUDIO)
            if len(pcm) % 2:
                raise ValueError("'audio' must be 16-bit samples (an even number of bytes)")
            samples = np.frombuffer(pcm, "<i2").astype(np.float32) / 32768.0
            mouth = await asyncio.get_running_loop().run_in_executor(None, mouth_of, samples, rate)
        self.speaker.hold(mouth)
        self._lipsync_during(RENDER_TIMEOUT)  # that mouth, whatever the camera's mouth does
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._waiters.append((time.time(), fut))
        try:
            rgba, frame = await asyncio.wait_for(fut, RENDER_TIMEOUT)
        except asyncio.TimeoutError:
            raise UserError(f"no frame within {RENDER_TIMEOUT:.0f} s (is the worker paused?)") from None
        finally:
            self._waiters = [(a, f) for a, f in self._waiters if not f.done()]
            if not self._waiters:
                self.speaker.hold(None)
        fmt = c.fmt if c.fmt is not None else P.PIXEL_RGBA
        payload = encode(rgba, fmt, self.webp_quality)
        h, w = rgba.shape[:2]
        msg = P.pack_frame_header(w, h, fid, frame.capture_ts, time.time(), fmt, len(payload)) + payload
        return {
            "frame_id": fid,
            "processing_ms": round((time.perf_counter() - t0) * 1000, 2),
            "mouth": round(mouth.openness, 3),
            "voiced": mouth.voiced,
            "bounds": bounds(rgba),
            THEN_BINARY: msg,
        }

    def _answer_render(self, rgba: np.ndarray, frame: Frame) -> None:
        """A frame captured after a request arrived carries its mouth: it answers that request."""
        keep = []
        for asked, fut in self._waiters:
            if frame.capture_ts >= asked and not fut.done():
                fut.set_result((rgba, frame))
            elif not fut.done():
                keep.append((asked, fut))
        self._waiters = keep


def _b64(value: Any, field: str, limit: int) -> bytes:
    if not isinstance(value, str):
        raise ValueError(f"'{field}' must be a base64 string")
    if len(value) > limit * 4 // 3 + 4:
        raise ValueError(f"'{field}' is larger than {limit} bytes")
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        raise ValueError(f"'{field}' is not valid base64") from None


def _decode_b64_audio(value: Any) -> np.ndarray:
    import tempfile
    from pathlib import Path

    from worker.audio.sources import TooLong, decode_audio

    data = _b64(value, "audio", 3 << 20)
    with tempfile.TemporaryDirectory(prefix="sa-say-") as d:
        path = Path(d) / "line.wav"
        path.write_bytes(data)
        try:
            return decode_audio(path, limits.SAY_S, "a line")
        except TooLong:
            raise UserError(f"'audio': longer than {limits.SAY_S:.0f} s, the limit for a line") from None
        except UserError:
            raise UserError("'audio' is not a readable audio file (WAV, MP3, OGG, ...)") from None
