"""The "obs" output: a loopback frame server the OBS script's receiver connects to.

Wire format: `worker.control.protocol` (frame channel). Every client gets the newest frame:
while a client is still writing one frame, newer ones replace each other and the skipped
ones count as dropped. The producer never waits for a client.
"""

from __future__ import annotations

import os
import threading
import time

import numpy as np

from worker.control import protocol as P
from worker.control.server import Conn, LoopbackServer
from worker.errors import UserError
from worker.output.base import Output, check_rgba
from worker.output.metrics import OutputMetrics
from worker.output.registry import OUTPUTS


class _Latest:
    __slots__ = ("n", "seq", "capture_ts", "width", "height", "payload")

    def __init__(self, n: int, seq: int, capture_ts: float, width: int, height: int, payload: bytes):
        self.n, self.seq, self.capture_ts = n, seq, capture_ts
        self.width, self.height, self.payload = width, height, payload


class FrameServer(LoopbackServer):
    name = "frames"
    read_after_auth = False

    def __init__(self, token: str, metrics: OutputMetrics, host: str = P.HOST, port: int = 0, max_connections: int = 8):
        # One frame may be in flight per client, so the pending-bytes cap is a frame, not 1 MiB.
        super().__init__(
            token,
            host,
            port,
            max_connections=max_connections,
            max_pending_out=P.FRAME_HEADER_SIZE + 4 * P.MAX_FRAME_SIDE**2,
        )
        self.metrics = metrics
        self._lock = threading.Lock()
        self._latest: _Latest | None = None

    def post(self, latest: _Latest) -> None:
        """Any thread: make `latest` the frame every client gets next."""
        with self._lock:
            self._latest = latest
        self.wake()

    def on_authed(self, conn: Conn) -> None:
        with self._lock:
            latest = self._latest
        # "accounted": the newest frame number this client has sent or been counted as dropping.
        conn.state["accounted"] = 0 if latest is None else latest.n - 1
        conn.state["busy"] = False
        self._feed(conn)

    def on_wake(self) -> None:
        with self._lock:
            latest = self._latest
        for conn in list(self.conns):
            if not conn.authed or conn.closing:
                continue
            if conn.state["busy"] and latest is not None and latest.n - 1 > conn.state["accounted"]:
                # Superseded while this client was still busy: those frames are lost to it.
                self.metrics.dropped_frames(latest.n - 1 - conn.state["accounted"])
                conn.state["accounted"] = latest.n - 1
            self._feed(conn)

    def _feed(self, conn: Conn) -> None:
        if conn.state.get("busy") or conn.closed:
            return
        with self._lock:
            latest = self._latest
        if latest is None or latest.n <= conn.state["accounted"]:
            return
        self.metrics.dropped_frames(latest.n - conn.state["accounted"] - 1)
        conn.state["accounted"] = latest.n
        conn.state["busy"] = True
        header = P.pack_frame_header(latest.width, latest.height, latest.seq, latest.capture_ts, time.time())

        def sent(conn: Conn = conn, latest: _Latest = latest) -> None:
            conn.state["busy"] = False
            self.metrics.delivered_frame(latest.capture_ts)
            self._feed(conn)  # a newer frame may have arrived meanwhile

        self.queue(conn, header)
        self.queue(conn, latest.payload, sent)


class ObsOutput(Output):
    """Serves frames to the OBS script (port 0 = any free port; see `port` after start)."""

    name = "obs"

    def __init__(self, port: int = 0, token: str | None = None, host: str = P.HOST, max_clients: int = 8):
        super().__init__()
        token = token or os.environ.get(P.ENV_TOKEN)
        if not token:
            raise UserError(f"obs output needs a token: set {P.ENV_TOKEN} or outputs[].token")
        self.server = FrameServer(token, self.metrics, host, port, max_connections=max_clients)
        self._n = 0

    @classmethod
    def from_config(cls, config: dict) -> ObsOutput:
        o = OUTPUTS["obs"].check(config)
        return cls(o["port"], o["token"], o["host"], o["max_clients"])

    @property
    def port(self) -> int:
        return self.server.port

    def start(self) -> None:
        if not self.server.running:
            self.server.start()

    def send(self, rgba: np.ndarray, seq: int, capture_ts: float) -> None:
        check_rgba(rgba)
        h, w = rgba.shape[:2]
        self._n += 1
        self.server.post(_Latest(self._n, seq, capture_ts, w, h, np.ascontiguousarray(rgba).tobytes()))

    def close(self) -> None:
        self.server.stop()

    def stats(self) -> dict:
        return {**super().stats(), "port": self.server.port, "clients": self.server.connection_count()}
