"""The token check every web route goes through (an aiohttp middleware).

A request carries the token in one of:
- the query parameter ``token`` (the address a Browser Source or a person opens:
  ``http://127.0.0.1:PORT/source?token=...``); a page loaded that way also gets a cookie, so
  the files and requests it makes afterwards (scripts, images, ``fetch``) pass without
  repeating the token in every address;
- the header ``Authorization: Bearer <token>`` or ``X-Stream-Animator-Token`` (tools);
- the cookie set above (``HttpOnly``, ``SameSite=Strict``, named after the port: cookies are
  shared between the ports of one host);
- for a WebSocket route registered with ``first_message=True``: the socket's first message,
  ``{"op": "auth", "token": "..."}`` as on the control channel (checked by `open_socket`).

A request without a valid token gets 403 and one line; nothing else is read from it.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

TOKEN_QUERY = "token"
TOKEN_HEADER = "X-Stream-Animator-Token"
COOKIE_PREFIX = "sa-token-"
# request key: True once the token was checked (a typed key where aiohttp has them, 3.13+)
AUTHED = web.RequestKey("sa_authed", bool) if hasattr(web, "RequestKey") else "sa_authed"
FIRST_MESSAGE = web.AppKey("sa_first_message_routes", set)  # resources whose sockets may auth in-band


def check_token(given: object, token: str) -> bool:
    """Constant-time comparison; anything but a non-empty string is wrong."""
    return isinstance(given, str) and bool(given) and hmac.compare_digest(given.encode(), token.encode())


def cookie_name(port: int) -> str:
    return f"{COOKIE_PREFIX}{port}"


def request_token(request: web.Request, port: int) -> tuple[str | None, str]:
    """(token, where it came from) of a request, or (None, "") when it carries none."""
    if TOKEN_QUERY in request.query:
        return request.query[TOKEN_QUERY], "query"
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip(), "header"
    if TOKEN_HEADER in request.headers:
        return request.headers[TOKEN_HEADER], "header"
    cookie = request.cookies.get(cookie_name(port))
    if cookie is not None:
        return cookie, "cookie"
    return None, ""


def authed(request: web.Request) -> bool:
    """True when the request's token was checked (False: a socket that must auth in-band)."""
    return bool(request.get(AUTHED))


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def token_middleware(token: str, port_of: Callable[[], int]) -> Middleware:
    """The middleware: 403 for a missing or wrong token, except in-band-auth sockets (see module doc)."""

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        port = port_of()
        given, where = request_token(request, port)
        if given is not None and check_token(given, token):
            request[AUTHED] = True
            response = await handler(request)
            if where == "query" and not response.prepared and response.content_type == "text/html":
                response.set_cookie(cookie_name(port), token, httponly=True, samesite="Strict", path="/")
            return response
        resource = request.match_info.route.resource
        if given is None and resource is not None and resource in request.app[FIRST_MESSAGE]:
            request[AUTHED] = False
            return await handler(request)
        reason = "missing token" if given is None else "wrong token"
        return web.Response(status=403, text=f"forbidden: {reason}\n", headers={"Cache-Control": "no-store"})

    return check
