"""The worker's web side: one aiohttp server for everything a browser or a stream tool talks to.

- `server.WebServer`: the application, its token check (middleware) and its runner, either on
  its own thread with its own event loop beside the worker's threads (`start()` / `stop()`) or
  as the main loop of a standalone command (`run_forever()`).
- `auth`: where a token may come from (query, header, cookie, or a WebSocket's first message).
- `static/`: the pages' files, shipped as package data (no CDN: the pages work offline).
- `ws_output.WsOutput`: the `ws` output (frames, the control API, `say`, the Browser Source page). It
  sits here, above the live worker whose parts it drives, not in `worker.output`; the output
  registry names it by its module path, so nothing below imports it.

Pages and sockets register on a `WebServer` (`add_page`, `add_get`, `add_post`, `add_socket`);
every route checks the token, and the server listens on 127.0.0.1 unless asked otherwise.
"""

from worker.web.auth import TOKEN_HEADER, TOKEN_QUERY, authed, check_token
from worker.web.server import STATIC_DIR, WebServer, check_host, json_error, open_socket

__all__ = [
    "STATIC_DIR",
    "TOKEN_HEADER",
    "TOKEN_QUERY",
    "WebServer",
    "authed",
    "check_host",
    "check_token",
    "json_error",
    "open_socket",
]
