"""Loopback TCP servers on their own thread: the control server (JSON lines, see protocol.py).

`LoopbackServer` is the shared machinery (selectors, non-blocking sockets, token auth,
connection cap, timeouts, bounded output, lingering close); the frame server of the "obs"
output builds on it too. Nothing a client sends can block the caller's threads: all socket
work happens on the server thread, and other threads only flip a slot and wake it.
"""

from __future__ import annotations

import ipaddress
import logging
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from worker.control import protocol as P
from worker.errors import UserError

log = logging.getLogger(__name__)

LINGER = 0.5  # seconds a refused client gets to read our error line before we close
LINGER_BYTES = 1 << 20  # what we discard from it meanwhile (a 100 MB line is not read through)


def check_loopback(host: str) -> str:
    """Return `host` as an IP if it is a loopback address; anything else is a UserError."""
    if host == "localhost":
        host = P.HOST
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise UserError(f"listen host must be a loopback address like 127.0.0.1, got {host!r}") from None
    if not ip.is_loopback:
        raise UserError(f"refusing to listen on {host!r}: only loopback (127.0.0.1) is allowed")
    return str(ip)


class Conn:
    """One client connection (server-thread state only)."""

    def __init__(self, sock: socket.socket, now: float):
        self.sock = sock
        self.reader = P.LineReader()
        self.authed = False
        self.opened = now
        self.partial_since: float | None = None
        self.out: deque[tuple[memoryview, Callable[[], None] | None]] = deque()
        self.out_bytes = 0
        self.closing = False
        self.close_deadline = 0.0
        self.discarded = 0
        self.wr_shut = False
        self.closed = False
        self.mask = selectors.EVENT_READ
        self.subscribed = False
        self.state: dict[str, Any] = {}  # for subclasses


class LoopbackServer:
    """Listens on a loopback port and runs a selector loop on its own daemon thread."""

    name = "server"
    tick = 0.1  # seconds between timeout checks
    read_after_auth = True  # the frame server ignores everything after auth

    def __init__(
        self,
        token: str,
        host: str = P.HOST,
        port: int = 0,
        *,
        max_connections: int = P.MAX_CONNECTIONS,
        auth_timeout: float = P.AUTH_TIMEOUT,
        partial_line_timeout: float = P.PARTIAL_LINE_TIMEOUT,
        max_pending_out: int = P.MAX_PENDING_OUT,
    ):
        if not isinstance(token, str) or len(token) < 8:
            raise UserError("control token must be a string of at least 8 characters")
        self.host = check_loopback(host)
        self.requested_port = int(port)
        if not 0 <= self.requested_port <= 65535:
            raise UserError(f"port must be 0..65535, got {port}")
        self.token = token
        self.max_connections = max_connections
        self.auth_timeout = auth_timeout
        self.partial_line_timeout = partial_line_timeout
        self.max_pending_out = max_pending_out
        self.conns: set[Conn] = set()
        self.counters = {
            "accepted": 0,
            "refused_full": 0,
            "auth_failed": 0,
            "protocol_errors": 0,
            "timeouts": 0,
            "slow_readers": 0,
        }
        self._sel: selectors.BaseSelector | None = None
        self._listener: socket.socket | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.port = 0

    # ---- lifecycle (any thread) ----
    def start(self) -> LoopbackServer:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        lst = socket.socket(family, socket.SOCK_STREAM)
        if hasattr(socket, "SO_EXCLUSIVEADDRUSE"):  # Windows: nobody may steal the port
            lst.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)
        try:
            lst.bind((self.host, self.requested_port))
        except OSError as e:
            lst.close()
            raise UserError(
                f"{self.name}: cannot listen on {self.host}:{self.requested_port}: {e.strerror or e}"
            ) from None
        lst.listen(128)
        lst.setblocking(False)
        self._listener = lst
        self.port = lst.getsockname()[1]
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._sel = selectors.DefaultSelector()
        self._sel.register(lst, selectors.EVENT_READ, "listen")
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._thread = threading.Thread(target=self._run, name=f"{self.name}-server", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        self._stopping = True
        self.wake()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout)

    def wake(self) -> None:
        w = self._wake_w
        if w is None:
            return
        try:
            w.send(b"x")
        except (BlockingIOError, OSError):
            pass  # already pending (or shutting down): one wake-up is enough

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def connection_count(self) -> int:
        return len(self.conns)

    # ---- hooks for subclasses (server thread) ----
    def on_authed(self, conn: Conn) -> None:
        pass

    def on_line(self, conn: Conn, line: bytes) -> None:
        pass

    def on_wake(self) -> None:
        pass

    def on_tick(self, now: float) -> None:
        pass

    def on_closed(self, conn: Conn) -> None:
        pass

    # ---- helpers for subclasses (server thread) ----
    def queue(self, conn: Conn, data: bytes | memoryview, on_sent: Callable[[], None] | None = None) -> bool:
        """Queue bytes for `conn` and try to send at once; False if it was dropped as too slow."""
        if conn.closed or conn.wr_shut:
            return False
        mv = memoryview(data)
        if conn.out_bytes + len(mv) > self.max_pending_out and conn.out_bytes > 0:
            self.counters["slow_readers"] += 1
            self.close_conn(conn)
            return False
        conn.out.append((mv, on_sent))
        conn.out_bytes += len(mv)
        self._flush(conn)
        return not conn.closed

    def send_obj(self, conn: Conn, obj: Any) -> bool:
        return self.queue(conn, P.encode(obj))

    def fail(self, conn: Conn, error: str, **fields: Any) -> None:
        """Send one error line, then close (lingering briefly so the client can read it)."""
        if conn.closing or conn.closed:
            return
        self.counters["protocol_errors"] += 1
        self.send_obj(conn, {**fields, "ok": False, "error": error})
        if conn.closed:
            return
        conn.closing = True
        conn.close_deadline = time.monotonic() + LINGER
        self._flush(conn)

    def close_conn(self, conn: Conn) -> None:
        if conn.closed:
            return
        conn.closed = True
        self.conns.discard(conn)
        try:
            assert self._sel is not None
            self._sel.unregister(conn.sock)
        except (KeyError, ValueError, AssertionError):
            pass
        try:
            conn.sock.close()
        except OSError:
            pass
        conn.out.clear()
        conn.out_bytes = 0
        self.on_closed(conn)

    # ---- the loop ----
    def _run(self) -> None:
        assert self._sel is not None
        try:
            while not self._stopping:
                for key, mask in self._sel.select(self.tick):
                    if key.data == "listen":
                        self._accept()
                    elif key.data == "wake":
                        self._drain_wake()
                        if not self._stopping:
                            self.on_wake()
                    else:
                        conn: Conn = key.data
                        try:
                            if mask & selectors.EVENT_READ and not conn.closed:
                                self._read(conn)
                            if mask & selectors.EVENT_WRITE and not conn.closed:
                                self._flush(conn)
                        except Exception:  # a bug hit by one client costs that client only
                            log.exception("%s: dropping a client after an unexpected error", self.name)
                            self.close_conn(conn)
                now = time.monotonic()
                self._check_timeouts(now)
                self.on_tick(now)
        except Exception:  # a bug here must not go unseen; the stream itself is unaffected
            log.exception("%s server thread crashed", self.name)
        finally:
            for conn in list(self.conns):
                self.close_conn(conn)
            for s in (self._listener, self._wake_r, self._wake_w):
                if s is not None:
                    s.close()
            self._wake_w = None
            self._sel.close()

    def _drain_wake(self) -> None:
        assert self._wake_r is not None
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def _accept(self) -> None:
        assert self._listener is not None and self._sel is not None
        for _ in range(64):  # bounded so a connect storm cannot starve the other sockets
            try:
                sock, _addr = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                log.warning("%s: accept failed: %s", self.name, e)
                return
            sock.setblocking(False)
            if len(self.conns) >= self.max_connections:
                self.counters["refused_full"] += 1
                try:
                    sock.send(P.encode({"ok": False, "error": f"too many connections (max {self.max_connections})"}))
                except OSError:
                    pass
                sock.close()
                continue
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
            conn = Conn(sock, time.monotonic())
            self.conns.add(conn)
            self.counters["accepted"] += 1
            self._sel.register(sock, selectors.EVENT_READ, conn)

    def _read(self, conn: Conn) -> None:
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close_conn(conn)
            return
        if not data:
            self.close_conn(conn)
            return
        if conn.closing:
            conn.discarded += len(data)
            if conn.discarded > LINGER_BYTES:
                self.close_conn(conn)
            return
        if conn.authed and not self.read_after_auth:
            return
        try:
            lines = conn.reader.feed(data)
        except P.LineTooLong:
            self.fail(conn, f"line longer than {P.MAX_LINE} bytes")
            return
        for line in lines:
            if conn.closing or conn.closed:
                return
            if not conn.authed:
                self._auth(conn, line)
            else:
                self.on_line(conn, line)
        if conn.reader.pending:
            if conn.partial_since is None:
                conn.partial_since = time.monotonic()
        else:
            conn.partial_since = None

    def _auth(self, conn: Conn, line: bytes) -> None:
        try:
            reason = P.check_auth(P.decode(line), self.token)
        except P.ProtocolError as e:
            reason = str(e)
        if reason is not None:
            self.counters["auth_failed"] += 1
            self.fail(conn, f"auth: {reason}")
            return
        conn.authed = True
        self.send_obj(conn, P.auth_ok())
        if not conn.closed:
            self.on_authed(conn)

    def _flush(self, conn: Conn) -> None:
        while conn.out and not conn.closed:
            mv, on_sent = conn.out[0]
            try:
                n = conn.sock.send(mv)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self.close_conn(conn)
                return
            conn.out_bytes -= n
            if n < len(mv):
                conn.out[0] = (mv[n:], on_sent)
                break
            conn.out.popleft()
            if on_sent is not None:
                on_sent()
        if conn.closed:
            return
        if not conn.out and conn.closing and not conn.wr_shut:
            conn.wr_shut = True
            try:
                conn.sock.shutdown(socket.SHUT_WR)
            except OSError:
                self.close_conn(conn)
                return
        want = selectors.EVENT_READ | (selectors.EVENT_WRITE if conn.out else 0)
        if want != conn.mask:
            conn.mask = want
            assert self._sel is not None
            self._sel.modify(conn.sock, want, conn)

    def _check_timeouts(self, now: float) -> None:
        for conn in list(self.conns):
            if conn.closing:
                if now >= conn.close_deadline:
                    self.close_conn(conn)
            elif not conn.authed:
                if now - conn.opened > self.auth_timeout:
                    self.counters["timeouts"] += 1
                    self.fail(conn, "auth timeout")
            elif conn.partial_since is not None and now - conn.partial_since > self.partial_line_timeout:
                self.counters["timeouts"] += 1
                self.fail(conn, "incomplete line for too long")


OpFunc = Callable[[dict], "dict | None"]
Handler = Mapping[str, OpFunc] | Callable[[str, dict], "dict | None"]


class UnknownOp(Exception):
    """Raised by a callable handler for an op it does not know."""


def _one_line(text: str, limit: int = 400) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def answer(call: Callable[[str, dict], dict], msg: dict) -> dict[str, Any]:
    """The reply to one decoded request ``{"id", "op", ...args}``: checks the id, the op and its
    arguments (`P.check_args`), then `call(op, args)`. Shared by every channel that takes the
    control requests (this server, the WebSocket API), so they answer alike. ``subscribe`` is
    each channel's own and is not handled here."""
    rid = msg.get("id")
    if not isinstance(rid, int) or isinstance(rid, bool):
        return {"id": None, "ok": False, "error": "request needs an integer 'id'"}
    op = msg.get("op")
    if not isinstance(op, str):
        return {"id": rid, "ok": False, "error": "request needs a string 'op'"}
    args = {k: v for k, v in msg.items() if k not in ("id", "op")}
    if op == "auth":
        return {"id": rid, "ok": False, "error": "already authenticated"}
    if (bad := P.check_args(op, args)) is not None:
        return {"id": rid, "ok": False, "error": bad}
    try:
        return {"id": rid, "ok": True, "result": call(op, args)}
    except UnknownOp:
        return {"id": rid, "ok": False, "error": f"unknown op {_one_line(op, 60)!r}"}
    except (UserError, ValueError, TypeError, KeyError) as e:
        text = f"missing {e.args[0]!r}" if isinstance(e, KeyError) and e.args else str(e)
        return {"id": rid, "ok": False, "error": _one_line(text) or type(e).__name__}
    except Exception as e:
        log.exception("control op %r failed", op)
        return {"id": rid, "ok": False, "error": _one_line(f"internal error: {type(e).__name__}: {e}")}


class ControlServer(LoopbackServer):
    """The worker's control channel.

    `handler` is either a mapping ``op -> function(args) -> result dict`` or a callable
    ``(op, args) -> result dict`` (raising `UnknownOp` for ops it does not serve). `args` is
    the request without ``id`` and ``op``. Handlers run on the server thread, so they must
    be quick (flip a flag, hand work to the pipeline); a `UserError`, `ValueError`,
    `TypeError` or `KeyError` becomes the one-line error reply, anything else is logged with
    its traceback and reported as "internal error". ``subscribe`` is served here; status
    events come from the handler's ``status`` op every `status_interval` seconds while
    anyone is subscribed, and `publish()` pushes any other event from any thread.
    """

    name = "control"

    def __init__(
        self,
        handler: Handler,
        token: str,
        host: str = P.HOST,
        port: int = 0,
        *,
        status_interval: float = P.STATUS_INTERVAL,
        **kw: Any,
    ):
        super().__init__(token, host, port, **kw)
        if not (isinstance(handler, Mapping) or callable(handler)):
            raise TypeError("handler must be a mapping op -> function or a callable (op, args)")
        self.handler = handler
        self.status_interval = status_interval
        self.requests = 0
        self._next_status = 0.0
        self._events: deque[dict] = deque(maxlen=256)
        self._status_failed = False

    def publish(self, event: dict) -> None:
        """Push an event ({"event": name, "data": {...}}) to subscribers; thread-safe."""
        self._events.append(event)
        self.wake()

    def call(self, op: str, args: dict) -> dict:
        """Dispatch one op to the handler (server thread); raises on failure."""
        if isinstance(self.handler, Mapping):
            fn = self.handler.get(op)
            if fn is None:
                raise UnknownOp(op)
            result = fn(args)
        else:
            result = self.handler(op, args)
        if result is None:
            return {}
        if not isinstance(result, dict):
            raise TypeError(f"handler for {op!r} returned {type(result).__name__}, not a dict")
        return result

    def on_line(self, conn: Conn, line: bytes) -> None:
        self.requests += 1
        try:
            msg = P.decode(line)
        except P.ProtocolError as e:
            self.counters["protocol_errors"] += 1
            self.send_obj(conn, {"id": None, "ok": False, "error": str(e)})
            return
        if msg.get("op") == "subscribe" and isinstance(msg.get("id"), int) and P.check_args("subscribe", msg) is None:
            conn.subscribed = msg.get("on", True)
            reply: dict[str, Any] = {"id": msg["id"], "ok": True, "result": {"subscribed": conn.subscribed}}
            if conn.subscribed:
                self._next_status = 0.0  # first event right away
        else:
            reply = answer(self.call, msg)
        try:
            data = P.encode(reply)
        except (TypeError, ValueError) as e:
            error = _one_line(f"internal error: result not JSON: {e}")
            data = P.encode({"id": reply.get("id"), "ok": False, "error": error})
        self.queue(conn, data)

    def _broadcast(self, event: dict) -> None:
        data = P.encode(event)
        for conn in list(self.conns):
            if conn.subscribed and conn.authed and not conn.closing:
                self.queue(conn, data)

    def on_wake(self) -> None:
        while self._events:
            self._broadcast(self._events.popleft())

    def on_tick(self, now: float) -> None:
        if now < self._next_status or not any(c.subscribed for c in self.conns):
            return
        self._next_status = now + self.status_interval
        try:
            data = self.call("status", {})
        except Exception as e:
            if not self._status_failed:
                log.warning("status for subscribers failed: %s", e)
                self._status_failed = True
            return
        self._broadcast({"event": "status", "data": data})
