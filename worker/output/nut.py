"""The "nut" output: NUT-muxed rawvideo RGBA over loopback TCP for OBS's built-in Media Source.

OBS listens (Media Source input ``tcp://127.0.0.1:PORT?listen``, input_format ``nut``; see
DESIGN.md §2) and the worker connects. While nobody listens, frames are dropped and the
connection is retried with exponential back-off; when OBS goes away, the next write fails
and the same back-off starts again. We own the socket (PyAV writes through a file object)
so connect and write time-outs are ours: a listener that stops reading cannot hang us.
"""

from __future__ import annotations

import logging
import socket
import time
from fractions import Fraction
from typing import Any

import av
import numpy as np

from worker.control.server import check_loopback
from worker.output.base import Output, check_rgba
from worker.output.registry import OUTPUTS

log = logging.getLogger(__name__)

TIME_BASE = Fraction(1, 1000)  # pts in milliseconds of capture time


class _SocketWriter:
    """The file object PyAV writes the NUT stream into."""

    def __init__(self, sock: socket.socket):
        self.sock = sock

    def write(self, data: bytes) -> int:
        self.sock.sendall(data)
        return len(data)

    def flush(self) -> None:
        pass


class NutOutput(Output):
    name = "nut"

    def __init__(
        self,
        port: int,
        host: str = "127.0.0.1",
        fps: float = 30.0,
        write_timeout: float = 2.0,
        max_backoff: float = 5.0,
    ):
        super().__init__()
        self.host = check_loopback(host)
        self.port = port
        self.fps = fps
        self.write_timeout = write_timeout
        self.max_backoff = max_backoff
        self.connects = 0
        self._sock: socket.socket | None = None
        self._container: Any = None  # PyAV's output container and stream, open while connected
        self._stream: Any = None
        self._size: tuple[int, int] | None = None
        self._backoff = 0.0
        self._next_try = 0.0
        self._t0: float | None = None
        self._last_pts = -1

    @classmethod
    def from_config(cls, config: dict) -> NutOutput:
        o = OUTPUTS["nut"].check(config)
        return cls(o["port"], o["host"], float(o["fps"]), float(o["write_timeout"]), float(o["max_backoff"]))

    @property
    def connected(self) -> bool:
        return self._container is not None

    def _open(self, w: int, h: int) -> bool:
        now = time.monotonic()
        if now < self._next_try:
            return False
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.write_timeout)
        except OSError as e:
            self._backoff = min(self.max_backoff, max(0.1, self._backoff * 2))
            self._next_try = now + self._backoff
            if self.metrics.last_error != f"connect: {e}":
                self.metrics.error(f"connect: {e}")
            return False
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # flush_packets: each frame leaves at once instead of waiting in PyAV's IO buffer.
        # write_index=0: the muxer otherwise keeps every syncpoint (one per rawvideo frame, 262 bytes)
        # for a seek index written at the end, which a live stream never reaches: 0.45 MiB a minute
        # at 30 FPS, for as long as the stream runs. OBS does not seek a live input; the syncpoints
        # themselves are still written, so a receiver can still join and resynchronise.
        options = {"flush_packets": "1", "write_index": "0"}
        container = av.open(_SocketWriter(sock), mode="w", format="nut", container_options=options)
        stream = container.add_stream("rawvideo", rate=round(self.fps))
        stream.width, stream.height, stream.pix_fmt = w, h, "rgba"
        stream.codec_context.time_base = TIME_BASE
        self._sock, self._container, self._stream, self._size = sock, container, stream, (w, h)
        self._backoff = 0.0
        self._t0 = None
        self._last_pts = -1
        self.connects += 1
        log.info("nut output connected to %s:%d", self.host, self.port)
        return True

    def _drop_connection(self) -> None:
        container, sock = self._container, self._sock
        self._container = self._stream = self._sock = None
        if sock is not None:
            try:
                sock.close()  # first, so closing the container cannot block on a dead peer
            except OSError:
                pass
        if container is not None:
            try:
                container.close()
            except Exception:  # the trailer cannot be written to a closed socket; expected
                pass

    def send(self, rgba: np.ndarray, seq: int, capture_ts: float) -> None:
        check_rgba(rgba)
        h, w = rgba.shape[:2]
        if self._container is not None and self._size != (w, h):
            self._drop_connection()  # NUT cannot change size mid-stream: start a new one
        if self._container is None and not self._open(w, h):
            self.metrics.dropped_frames(1)
            return
        if self._t0 is None:
            self._t0 = capture_ts
        pts = max(self._last_pts + 1, int(round((capture_ts - self._t0) * 1000)))
        self._last_pts = pts
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgba), format="rgba")
        frame.pts, frame.time_base = pts, TIME_BASE
        try:
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        except Exception as e:  # peer gone or stuck past write_timeout: reconnect later
            self.metrics.error(f"write: {e}")
            self.metrics.dropped_frames(1)
            self._drop_connection()
            self._next_try = time.monotonic() + 0.1
            return
        self.metrics.delivered_frame(capture_ts)

    def close(self) -> None:
        self._drop_connection()

    def stats(self) -> dict:
        return {
            **super().stats(),
            "connected": self.connected,
            "connects": self.connects,
            "target": f"tcp://{self.host}:{self.port}",
        }
