"""`WebServer`: the worker's one aiohttp application, its token check and its runner.

Two ways to run it:
- beside the worker's threads: `start()` runs the event loop on its own daemon thread and returns
  once the port is bound (a port in use is a `UserError` raised by `start()`); `stop()` closes
  every open socket and ends the thread. Other threads hand work to the loop with `submit()`;
- as a standalone command's main loop: `run_forever()` (Ctrl+C ends it).

Routes are added before starting (`add_page`, `add_get`, `add_post`, `add_socket`, or
`app.router` directly); the token middleware (`worker.web.auth`) guards all of them, the
package's `static/` folder is served under ``/static/`` (behind the token too; a page loaded
with ``?token=`` gets a cookie so its own scripts load). Nothing else on disk is reachable.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import secrets
import threading
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import WSCloseCode, WSMsgType, web

from worker.control import protocol as P
from worker.errors import UserError
from worker.web.auth import AUTHED, FIRST_MESSAGE, TOKEN_QUERY, token_middleware

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
DEFAULT_HOST = P.HOST
MAX_BODY = 1 << 20  # a POST body larger than this is refused by aiohttp (413)
SOCKETS = web.AppKey("sa_open_sockets", weakref.WeakSet)
TOKEN_KEY = web.AppKey("sa_token", str)

T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def check_host(host: str) -> tuple[str, bool]:
    """(host to bind, whether it is loopback). A name other than localhost, or a bad address, is a UserError."""
    if host == "localhost":
        return DEFAULT_HOST, True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise UserError(
            f"web host must be an IP address like 127.0.0.1 (or 0.0.0.0 for every network), got {host!r}"
        ) from None
    return str(ip), ip.is_loopback


def json_error(status: int, message: str) -> web.Response:
    """A JSON error reply with one line of text: ``{"ok": false, "error": "..."}``."""
    return web.json_response({"ok": False, "error": " ".join(str(message).split())}, status=status)


def _no_store(handler: Handler) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        response = await handler(request)
        if not response.prepared:
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    return wrapped


class WebServer:
    """One aiohttp application on `host`:`port` (0 = any free port) guarded by `token`.

    A host that is not loopback is allowed only because someone asked for it: it is logged as a
    warning, since then anyone on that network who learns the token can connect.
    """

    def __init__(
        self,
        token: str | None = None,
        host: str = DEFAULT_HOST,
        port: int = 0,
        *,
        name: str = "web",
        max_body: int = MAX_BODY,
    ) -> None:
        self.token = token or secrets.token_urlsafe(18)
        if len(self.token) < 8:
            raise UserError("web token must be at least 8 characters")
        self.host, self.loopback = check_host(host)
        if not 0 <= int(port) <= 65535:
            raise UserError(f"web port must be 0..65535, got {port}")
        self.requested_port = int(port)
        self.name = name
        self.port = 0
        self.app = web.Application(
            middlewares=[token_middleware(self.token, lambda: self.port)], client_max_size=max_body
        )
        self.app[FIRST_MESSAGE] = set()
        self.app[TOKEN_KEY] = self.token
        self.app[SOCKETS] = weakref.WeakSet()
        self.app.on_shutdown.append(self._close_sockets)
        self.app.router.add_static("/static", STATIC_DIR, follow_symlinks=False)
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None

    # ---- routes (before start) ----
    def add_page(self, path: str, page: str | Path | Handler) -> None:
        """An HTML page: a file of `static/` (by name), any file path, or a handler."""
        if callable(page):
            self.app.router.add_get(path, _no_store(page))
            return
        file = STATIC_DIR / page if isinstance(page, str) else Path(page)

        async def serve(request: web.Request) -> web.StreamResponse:
            return web.Response(body=file.read_bytes(), content_type="text/html", charset="utf-8")

        self.app.router.add_get(path, _no_store(serve))

    def add_get(self, path: str, handler: Handler) -> None:
        self.app.router.add_get(path, _no_store(handler))

    def add_post(self, path: str, handler: Handler) -> None:
        self.app.router.add_post(path, _no_store(handler))

    def add_socket(self, path: str, handler: Handler, *, first_message: bool = True) -> None:
        """A WebSocket route; with `first_message` a tool may send the token as its first message
        (`open_socket` then checks it) instead of in the address or a header."""
        route = self.app.router.add_get(path, handler)
        if first_message:
            self.app[FIRST_MESSAGE].add(route.resource)

    # ---- addresses ----
    def url(self, path: str = "/", *, token: bool = True) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        host = f"[{host}]" if ":" in host else host
        sep = "&" if "?" in path else "?"
        return f"http://{host}:{self.port}{path}" + (f"{sep}{TOKEN_QUERY}={self.token}" if token else "")

    def ws_url(self, path: str, *, token: bool = True) -> str:
        return "ws" + self.url(path, token=token)[4:]

    # ---- running ----
    async def open(self) -> None:
        """Bind and serve on the running loop (`start` and `run_forever` call this)."""
        if not self.loopback:
            log.warning(
                "%s server listens on %s: reachable from the network; keep its token secret", self.name, self.host
            )
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        # POSIX: SO_REUSEADDR so a restarted worker gets its port back at once (connections of the
        # last run in TIME_WAIT would block it); it never lets two listeners share a port there.
        # Windows: not set, since there it would let another program take the port.
        site = web.TCPSite(runner, self.host, self.requested_port, reuse_address=os.name != "nt")
        try:
            await site.start()
        except OSError as e:
            await runner.cleanup()
            raise UserError(
                f"{self.name} server: cannot listen on {self.host}:{self.requested_port}: "
                f"{(e.strerror or str(e)).split(': ')[-1]}"
            ) from None
        self._runner = runner
        self.port = runner.addresses[0][1]
        log.info("%s server on %s", self.name, self.url(token=False))

    async def close(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    def start(self) -> WebServer:
        """Serve on a daemon thread with its own event loop; returns once listening."""
        if self._thread is not None:
            return self
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                loop.run_until_complete(self.open())
            except BaseException as e:  # handed to start()'s caller
                failure.append(e)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self.close())
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, name=f"{self.name}-server", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        return self

    def stop(self, timeout: float = 3.0) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if thread is threading.current_thread():
            raise RuntimeError("WebServer.stop() from its own loop: use `await close()`")
        try:
            loop.call_soon_threadsafe(loop.stop)
        except RuntimeError:
            pass  # the loop is closed already
        thread.join(timeout)
        self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self._loop

    def submit(self, coro: Coroutine[Any, Any, T]) -> Any:
        """Run `coro` on the server's loop from another thread; returns a concurrent Future."""
        if self._loop is None:
            raise RuntimeError("the web server is not running")
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Call `fn(*args)` on the server's loop (thread-safe, never waits); ignored once stopped."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(fn, *args)
            except RuntimeError:
                pass

    def run_forever(self, on_ready: Callable[[WebServer], None] | None = None) -> None:
        """Serve on this thread until Ctrl+C (a standalone command's main loop)."""

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            await self.open()
            if on_ready is not None:
                on_ready(self)
            try:
                await asyncio.Event().wait()
            finally:
                await self.close()

        try:
            asyncio.run(main())
        except KeyboardInterrupt:
            pass

    async def _close_sockets(self, app: web.Application) -> None:
        sockets = [ws for ws in app[SOCKETS] if not ws.closed]
        if sockets:  # a client that stopped reading cannot hold the shutdown up
            tasks = [
                asyncio.ensure_future(ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down"))
                for ws in sockets
            ]
            _, pending = await asyncio.wait(tasks, timeout=1.0)
            for t in pending:
                t.cancel()


async def open_socket(
    request: web.Request,
    *,
    max_msg_size: int = P.MAX_LINE,
    heartbeat: float | None = 10.0,
    auth_timeout: float = P.AUTH_TIMEOUT,
) -> web.WebSocketResponse | None:
    """Accept a WebSocket; if the request carried no token, its first message must be the auth line
    (``{"op": "auth", "token": ...}``), answered like on the control channel. Returns None (after
    one error message and a close) when it was not."""
    # no permessage-deflate: frames are raw pixels or WebP/PNG already, and deflating them per client
    # would cost the worker far more CPU than it saves on loopback
    ws = web.WebSocketResponse(max_msg_size=max_msg_size, heartbeat=heartbeat, compress=False)
    await ws.prepare(request)
    request.app[SOCKETS].add(ws)
    if request.get(AUTHED):
        return ws
    reason: str | None
    try:
        msg = await asyncio.wait_for(ws.receive(), auth_timeout)
    except asyncio.TimeoutError:
        reason = "auth timeout"
    else:
        if msg.type != WSMsgType.TEXT:
            reason = "the first message must be the auth line"
        else:
            try:
                data = json.loads(msg.data)
            except ValueError:
                data = None
            if isinstance(data, dict):
                reason = P.check_auth(data, request.app[TOKEN_KEY])
            else:
                reason = "the first message must be a JSON object"
    if reason is None:
        await ws.send_str(json.dumps(P.auth_ok()))
        request[AUTHED] = True
        return ws
    await ws.send_str(json.dumps({"ok": False, "error": f"auth: {reason}"}))
    await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"auth failed")
    return None
