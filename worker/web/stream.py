"""The ``/ws`` socket: frames out (binary), control requests and events (JSON) on one socket.

Protocol: `worker.control.protocol`, "WebSocket channel". Runs on the web server's event loop.
The frame producer (the ws output's thread) encodes each frame once per pixel format that some
client wants and hands it over with `post()`; every client has a one-frame mailbox (newest wins:
a frame replaced before the client's sender took it counts as dropped), and its own sender task,
so a slow or stalled client waits on its own socket only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from worker.control import protocol as P
from worker.control.server import UnknownOp, answer
from worker.errors import UserError
from worker.output.metrics import OutputMetrics
from worker.web.server import open_socket

log = logging.getLogger(__name__)

MAX_MESSAGE = 4 << 20  # a `say` with a WAV file fits; aiohttp refuses (and closes) anything larger
THEN_BINARY = "_then_binary"  # an async op's result key: bytes sent as a binary message after the reply
EVENT_TICK = 0.25  # seconds between looks at the status for face / voice changes


@dataclass
class Frame:
    """One rendered frame, its messages ready to send per pixel format (header + payload)."""

    n: int  # the hub's own count: gaps between what a client got = its drops
    seq: int
    capture_ts: float
    width: int
    height: int
    messages: dict[int, bytes] = field(default_factory=dict)


@dataclass(eq=False)  # one per socket: compared and hashed by identity
class Client:
    ws: web.WebSocketResponse
    fmt: int | None  # pixel format of the frames it gets; None = no frames
    remote: str
    subscribed: bool = False
    pending: Frame | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    sent: int = 0
    dropped: int = 0
    last_n: int = 0


Call = Callable[[str, dict], dict]
AsyncOp = Callable[["Client", dict], Any]  # coroutine function: (client, args) -> result dict


class StreamHub:
    """Clients of ``/ws``; `call` answers the control ops, `ops` the socket-only ones (async)."""

    def __init__(self, metrics: OutputMetrics, max_clients: int = 128, default_remote_format: int = P.PIXEL_WEBP):
        self.metrics = metrics
        self.max_clients = max_clients
        self.default_remote_format = default_remote_format
        self.call: Call | None = None
        self.ops: dict[str, AsyncOp] = {}
        self.clients: set[Client] = set()
        self.refused = 0
        self.errors = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self._wanted: frozenset[int] = frozenset()
        self._n = 0
        self._ticker: asyncio.Task | None = None
        self._last_status: dict | None = None
        self._next_status = 0.0

    # ---- any thread ----
    def formats_wanted(self) -> frozenset[int]:
        return self._wanted

    def post(self, frame: Frame) -> None:
        loop = self.loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._post, frame)
            except RuntimeError:
                pass  # the loop stopped meanwhile

    def publish(self, event: dict) -> None:
        """An event for subscribed clients, from any thread."""
        loop = self.loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._broadcast, event)
            except RuntimeError:
                pass

    def stats(self) -> dict:
        worst = sorted(self.clients, key=lambda c: -c.dropped)[:8]
        return {
            "clients": len(self.clients),
            "refused": self.refused,
            "errors": self.errors,
            "worst_clients": [{"remote": c.remote, "sent": c.sent, "dropped": c.dropped} for c in worst],
        }

    # ---- the event loop ----
    def next_n(self) -> int:
        self._n += 1
        return self._n

    def _post(self, frame: Frame) -> None:
        for c in self.clients:
            if c.fmt is not None and c.fmt in frame.messages:
                if c.pending is not None:  # never taken: replaced (a stalled client's drops count here)
                    self._dropped(c, c.pending.n - c.last_n if c.last_n else 1)
                    c.last_n = c.pending.n
                c.pending = frame
                c.wake.set()

    def _dropped(self, c: Client, n: int) -> None:
        c.dropped += n
        self.metrics.dropped_frames(n)

    def _refresh_wanted(self) -> None:
        self._wanted = frozenset(c.fmt for c in self.clients if c.fmt is not None)

    def _broadcast(self, event: dict) -> None:
        text = json.dumps(event)
        for c in self.clients:
            if c.subscribed and not c.ws.closed:
                asyncio.ensure_future(self._send_text(c, text))

    async def _send_text(self, c: Client, text: str) -> None:
        try:
            await c.ws.send_str(text)
        except (ConnectionError, RuntimeError):
            pass  # closing: its handler cleans up

    async def _pump(self, c: Client) -> None:
        """Send the newest frame whenever there is one; a stalled socket holds only this task."""
        while not c.ws.closed:
            await c.wake.wait()
            c.wake.clear()
            frame, c.pending = c.pending, None
            if frame is None or c.fmt is None:
                continue
            msg = frame.messages.get(c.fmt)
            if msg is None:
                continue
            try:
                await c.ws.send_bytes(msg)
            except (ConnectionError, RuntimeError):
                return
            if c.last_n and frame.n > c.last_n + 1:  # frames its encoder skipped
                self._dropped(c, frame.n - c.last_n - 1)
            c.sent += 1
            c.last_n = frame.n
            self.metrics.delivered_frame(frame.capture_ts)

    async def _tick(self) -> None:
        """Status events each STATUS_INTERVAL, and face / voice events when they change."""
        while True:
            await asyncio.sleep(EVENT_TICK)
            if self.call is None or not any(c.subscribed for c in self.clients):
                continue
            try:
                status = self.call("status", {})
            except Exception as e:  # the worker is stopping; nothing to tell
                log.debug("ws status failed: %s", e)
                continue
            self._changes(self._last_status, status)
            self._last_status = status
            now = time.monotonic()
            if now >= self._next_status:
                self._next_status = now + P.STATUS_INTERVAL
                self._broadcast({"event": "status", "data": status})

    def _changes(self, old: dict | None, new: dict) -> None:
        found = new.get("tracking") in ("tracking", "calibrating")
        was = None if old is None else old.get("tracking") in ("tracking", "calibrating")
        if new.get("tracking") in ("tracking", "calibrating", "lost") and found != was:
            self._broadcast({"event": "face", "data": {"found": found}})
        voiced = bool((new.get("voice") or {}).get("voiced"))
        if old is not None and voiced != bool((old.get("voice") or {}).get("voiced")):
            self._broadcast({"event": "voice", "data": {"voiced": voiced}})

    async def close_all(self) -> None:
        """Tell every client the worker is stopping and close (a stalled one gets a second)."""

        async def bye(c: Client) -> None:
            try:
                await c.ws.send_str(json.dumps({"event": "stopping", "data": {}}))
                await c.ws.close(code=WSCloseCode.SERVICE_RESTART, message=b"worker stopping")
            except (ConnectionError, RuntimeError):
                pass

        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        clients = list(self.clients)
        if clients:
            done, pending = await asyncio.wait([asyncio.ensure_future(bye(c)) for c in clients], timeout=1.0)
            for task in pending:
                task.cancel()
        for c in clients:
            if not c.ws.closed:  # stalled: drop the connection
                transport = c.ws._req.transport if c.ws._req is not None else None
                if transport is not None:
                    transport.abort()

    # ---- one client ----
    def _format(self, request: web.Request, value: str | None) -> int | None:
        if value is None:
            loopback = (request.remote or "").startswith(("127.", "::1"))
            return P.PIXEL_RGBA if loopback else self.default_remote_format
        if value in P.PIXEL_FORMATS:
            return P.PIXEL_FORMATS[value]
        raise ValueError(f"format must be one of {', '.join(P.PIXEL_FORMATS)}, got {value!r}")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
        if self._ticker is None:
            self._ticker = asyncio.ensure_future(self._tick())
        if len(self.clients) >= self.max_clients:
            self.refused += 1
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            await ws.send_str(json.dumps({"ok": False, "error": f"too many clients (max {self.max_clients})"}))
            await ws.close(code=WSCloseCode.TRY_AGAIN_LATER)
            return ws
        try:
            fmt = None if request.query.get("frames") == "0" else self._format(request, request.query.get("format"))
        except ValueError as e:
            return web.json_response({"ok": False, "error": str(e)}, status=400)
        socket = await open_socket(request, max_msg_size=MAX_MESSAGE)
        if socket is None:
            self.errors += 1
            return web.Response()
        ws = socket
        c = Client(ws, fmt, request.remote or "?")
        self.clients.add(c)
        self._refresh_wanted()
        pump = asyncio.ensure_future(self._pump(c))
        try:
            async for msg in ws:  # ends at a close; a message over MAX_MESSAGE: aiohttp closes with 1009
                if msg.type == WSMsgType.TEXT:
                    await self._on_text(c, msg.data)
                elif msg.type == WSMsgType.BINARY:  # not part of the protocol
                    self.errors += 1
                    error = {"id": None, "ok": False, "error": "binary messages are not accepted"}
                    await ws.send_str(json.dumps(error))
                    await ws.close(code=WSCloseCode.UNSUPPORTED_DATA, message=b"binary message")
            if ws.exception() is not None:
                self.errors += 1
        except ConnectionError:
            pass  # the client went away mid-reply
        finally:
            self.clients.discard(c)
            self._refresh_wanted()
            c.wake.set()
            pump.cancel()
        return ws

    async def _on_text(self, c: Client, text: str) -> None:
        try:
            msg = json.loads(text)
        except ValueError:
            msg = None
        if not isinstance(msg, dict):
            self.errors += 1
            await c.ws.send_str(json.dumps({"id": None, "ok": False, "error": "expected a JSON object"}))
            return
        op = msg.get("op")
        binary: bytes | None = None
        if op == "subscribe" and isinstance(msg.get("id"), int) and P.check_args("subscribe", msg) is None:
            c.subscribed = msg.get("on", True)
            self._next_status = 0.0
            reply = {"id": msg["id"], "ok": True, "result": {"subscribed": c.subscribed}}
        elif isinstance(op, str) and op in self.ops and isinstance(msg.get("id"), int):
            args = {k: v for k, v in msg.items() if k not in ("id", "op")}
            try:
                result = dict(await self.ops[op](c, args))
                binary = result.pop(THEN_BINARY, None)
                reply = {"id": msg["id"], "ok": True, "result": result}
            except (UserError, ValueError, TypeError, KeyError) as e:
                reply = {"id": msg["id"], "ok": False, "error": " ".join(str(e).split())[:400]}
            except Exception as e:
                log.exception("ws op %r failed", op)
                reply = {"id": msg["id"], "ok": False, "error": f"internal error: {type(e).__name__}: {e}"[:400]}
        else:
            reply = answer(self._call, msg)
        if not reply.get("ok"):
            self.errors += 1
        await c.ws.send_str(json.dumps(reply))
        if binary is not None:  # e.g. `render`: the frame follows its reply
            await c.ws.send_bytes(binary)

    def _call(self, op: str, args: dict) -> dict:
        if self.call is None:
            raise UnknownOp(op)
        return self.call(op, args)

    def set_format(self, c: Client, fmt: int | None) -> None:
        c.fmt = fmt
        c.pending = None
        c.last_n = 0
        self._refresh_wanted()
