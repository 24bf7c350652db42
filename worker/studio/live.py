"""The studio's Live section: a running worker's status and character, through its control channel.

The worker is found the way `stream-animator ctl` finds it: an explicit port and token, the
environment (STREAM_ANIMATOR_CONTROL_PORT / _TOKEN, as the OBS script's Studio… button hands
them over), or the endpoint file a worker started from the command line leaves
(`worker.control.endpoints`). Every call is short (a 2 s timeout) and runs off the
web server's loop; no worker running is a normal answer, not an error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from worker.control import protocol as P
from worker.errors import UserError


@dataclass
class WorkerLink:
    port: int | None = None
    token: str | None = None

    def endpoint(self) -> tuple[int, str] | None:
        """The given port and token, else the environment's, else the worker started by hand that
        runs now (the newest, when several do)."""
        from worker.control import endpoints

        port = self.port or _int(os.environ.get(P.ENV_CONTROL_PORT))
        token = self.token or os.environ.get(P.ENV_TOKEN)
        if port and token:
            return port, token
        found = [e for e in endpoints.running() if not port or e.port == port]
        if not found:
            return None
        newest = max(found, key=lambda e: e.started)
        return newest.port, token or newest.token

    def request(self, op: str, **args) -> dict:
        where = self.endpoint()
        if where is None:
            raise UserError("no running worker found (start one with `stream-animator run` or from OBS)")
        port, token = where
        try:
            with P.ControlClient(port, token, timeout=2.0) as client:
                return client.request(op, **args)
        except P.RemoteError as e:
            raise UserError(str(e)) from None
        except (P.AuthError, P.ProtocolError, OSError) as e:
            raise UserError(f"no worker answers on 127.0.0.1:{port} ({e})") from None

    def status(self) -> dict:
        """{"running": False, "why": ...} without a worker, else the status and the character list."""
        try:
            status = self.request("status")
            characters = self.request("list_characters")
        except UserError as e:
            return {"running": False, "why": str(e)}
        return {"running": True, "status": status, "characters": characters, "preview": _preview(status)}

    def set_character(self, character: str) -> dict:
        return self.request("set_character", character=character)


def _preview(status: dict) -> dict:
    """Where the page can watch the live frames: the Browser Source page of the worker's `ws`
    output, opened with the token kept in the user's settings (the one `ws` uses unless its
    config names another; then the page is refused and the studio says so)."""
    import urllib.error
    import urllib.request

    from worker.web.settings import load_address

    for name, out in (status.get("outputs") or {}).items():
        if not (isinstance(out, dict) and str(name).startswith("ws") and out.get("port")):
            continue
        addr = load_address()
        url = f"http://127.0.0.1:{out['port']}/source?token={addr.token}" if addr else None
        try:
            if url:
                urllib.request.urlopen(url, timeout=2).close()
                return {"url": url}
        except (urllib.error.URLError, OSError):
            pass
        return {"url": None, "why": f"the ws output on port {out['port']} has a token of its own: open its address"}
    return {"url": None, "why": "the worker has no WebSocket output: add one (`run --output ws`) for a preview"}


def _int(v) -> int | None:
    try:
        return int(v) if v not in (None, "") else None
    except (TypeError, ValueError):
        return None
