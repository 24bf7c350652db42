"""The web server's stable address: its port and token, kept in the user's settings so that a
Browser Source set up once (``http://127.0.0.1:PORT/source?token=...``) keeps working across
worker restarts and reboots.

Stored as JSON in the per-user config folder (`platformdirs`; ``$STREAM_ANIMATOR_CONFIG`` in
tests), written atomically (temp file + `os.replace`); a damaged file is replaced with a warning.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

FORMAT = 1
DEFAULT_PORT = 17865  # tried first; another free port if it is taken on the first run


def settings_dir() -> Path:
    if os.environ.get("STREAM_ANIMATOR_CONFIG"):
        return Path(os.environ["STREAM_ANIMATOR_CONFIG"]).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir("stream-animator", appauthor=False))


def settings_path() -> Path:
    return settings_dir() / "web.json"


@dataclass(frozen=True)
class WebAddress:
    port: int
    token: str


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _any_free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_address() -> WebAddress | None:
    path = settings_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        log.warning("%s: unreadable (%s); making a new web address", path, e)
        return None
    port, token = (data.get("port"), data.get("token")) if isinstance(data, dict) else (None, None)
    if not (isinstance(port, int) and 1 <= port <= 65535 and isinstance(token, str) and len(token) >= 16):
        log.warning("%s: not a web address (port, token); making a new one", path)
        return None
    return WebAddress(port, token)


def save_address(addr: WebAddress) -> Path:
    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".web-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"format": FORMAT, "port": addr.port, "token": addr.token}, f)
        if hasattr(os, "chmod"):
            os.chmod(tmp, 0o600)  # the token is a secret
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def stable_address() -> WebAddress:
    """The saved address, or a new one (DEFAULT_PORT if free, else any free port) saved now."""
    addr = load_address()
    if addr is not None:
        return addr
    addr = WebAddress(DEFAULT_PORT if _free(DEFAULT_PORT) else _any_free_port(), secrets.token_urlsafe(18))
    try:
        path = save_address(addr)
        log.info("web address saved to %s", path)
    except OSError as e:
        log.warning("cannot save the web address (%s): it will change at the next start", e)
    return addr
