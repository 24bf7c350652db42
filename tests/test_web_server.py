"""The shared web foundation (worker/web): token check on every route, static package files,
in-band socket auth, one loop on its own thread, refusing a busy port. Real aiohttp clients."""

from __future__ import annotations

import asyncio
import json
import logging
import socket

import aiohttp
import pytest
from aiohttp import web

from worker.errors import UserError
from worker.web import WebServer, open_socket


async def _echo(request: web.Request) -> web.StreamResponse:
    ws = await open_socket(request)
    if ws is None:
        return web.Response()  # aiohttp ignores the return value once the socket was prepared
    async for msg in ws:
        await ws.send_str("echo:" + msg.data)
    return ws


@pytest.fixture()
def server():
    s = WebServer(token="t0ken-for-tests", name="test")

    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"hello": True})

    s.add_get("/api/hello", hello)
    s.add_page("/page", lambda request: _page())
    s.add_socket("/sock", _echo)
    s.start()
    yield s
    s.stop()
    assert not s.running


async def _page() -> web.Response:
    return web.Response(text="<html><body>hi</body></html>", content_type="text/html")


def _run(coro):
    return asyncio.run(coro)


def test_token_on_every_route(server):
    async def go():
        async with aiohttp.ClientSession() as http:
            base = server.url("/", token=False)[:-1]
            statuses = {}
            for name, url, headers in (
                ("none", base + "/api/hello", {}),
                ("wrong", base + "/api/hello?token=nope-nope", {}),
                ("query", base + "/api/hello?token=t0ken-for-tests", {}),
                ("bearer", base + "/api/hello", {"Authorization": "Bearer t0ken-for-tests"}),
                ("header", base + "/api/hello", {"X-Stream-Animator-Token": "t0ken-for-tests"}),
                ("static-none", base + "/static/README.md", {}),
                ("static-query", base + "/static/README.md?token=t0ken-for-tests", {}),
                ("escape", base + "/static/../auth.py?token=t0ken-for-tests", {}),
                ("sock-wrong", base + "/sock?token=bad-bad-bad", {}),
            ):
                async with http.get(url, headers=headers) as r:
                    statuses[name] = (r.status, (await r.text())[:40])
            return statuses

    s = _run(go())
    assert s["none"] == (403, "forbidden: missing token\n")
    assert s["wrong"] == (403, "forbidden: wrong token\n")
    assert s["query"][0] == s["bearer"][0] == s["header"][0] == 200
    assert s["static-none"][0] == 403 and s["static-query"][0] == 200
    assert s["escape"][0] in (403, 404)  # never a file outside static/
    assert s["sock-wrong"][0] == 403


def test_page_cookie_lets_its_files_load(server):
    async def go():
        jar = aiohttp.CookieJar(unsafe=True)  # 127.0.0.1 is an IP: aiohttp's jar skips those by default
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            async with http.get(server.url("/page")) as r:
                assert r.status == 200 and r.headers["Cache-Control"] == "no-store"
            async with http.get(server.url("/static/README.md", token=False)) as r:
                return r.status

    assert _run(go()) == 200


def test_socket_auth_in_band(server):
    async def go():
        out = []
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(server.ws_url("/sock", token=False)) as ws:
                await ws.send_str(json.dumps({"op": "auth", "token": "t0ken-for-tests"}))
                out.append(json.loads((await ws.receive()).data))
                await ws.send_str("x")
                out.append((await ws.receive()).data)
            async with http.ws_connect(server.ws_url("/sock", token=False)) as ws:
                await ws.send_str(json.dumps({"op": "auth", "token": "wrong-token"}))
                out.append(json.loads((await ws.receive()).data))
                out.append((await ws.receive()).type)
            async with http.ws_connect(server.ws_url("/sock")) as ws:  # token in the address
                await ws.send_str("y")
                out.append((await ws.receive()).data)
        return out

    ok, echo, bad, closed, echo2 = _run(go())
    assert ok == {"ok": True, "op": "auth", "protocol": 1}
    assert echo == "echo:x" and echo2 == "echo:y"
    assert bad["ok"] is False and "bad token" in bad["error"]
    assert closed == aiohttp.WSMsgType.CLOSE


def test_busy_port_and_remote_host_warning(caplog):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        with pytest.raises(UserError, match=r"cannot listen on 127\.0\.0\.1:\d+"):
            WebServer(port=busy.getsockname()[1]).start()
    finally:
        busy.close()
    with pytest.raises(UserError, match="web host"):
        WebServer(host="example.org")
    with caplog.at_level(logging.WARNING, logger="worker.web.server"):
        s = WebServer(host="0.0.0.0").start()
        try:
            assert s.url().startswith("http://127.0.0.1:")
        finally:
            s.stop()
    assert any("reachable from the network" in r.getMessage() for r in caplog.records)
