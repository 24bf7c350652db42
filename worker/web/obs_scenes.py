"""Scene-bound characters without the OBS script: follow OBS's program scene over obs-websocket 5
(built into OBS since 28, on when "Enable WebSocket server" is ticked) and switch to the character
bound to it, as the script does when OBS runs Python.

The address and password are read from OBS's own settings (OBS 28/29: global.ini's
[OBSWebSocket]; later: plugin_config/obs-websocket/config.json) unless given. OBS may start after
the worker, stop and come back: the follower retries every few seconds and says so once.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

POLL = 0.5  # seconds between looks at the program scene
RETRY = 3.0  # seconds between connection attempts while OBS is not there


def obs_websocket_settings(config_dir: Path) -> tuple[int | None, str | None]:
    """(port, password) of obs-websocket from OBS's configuration folder; None where not set."""
    from worker.setup.obs_config import ini_get, read_text

    plugin = config_dir / "plugin_config" / "obs-websocket" / "config.json"
    try:
        data = json.loads(plugin.read_text(encoding="utf-8"))
        if isinstance(data, dict) and data.get("server_port"):
            auth = data.get("auth_required", True)
            return int(data["server_port"]), (str(data.get("server_password") or "") or None) if auth else None
    except (OSError, ValueError, TypeError):
        pass
    try:
        text = read_text(config_dir / "global.ini")
    except OSError:
        return None, None
    port = ini_get(text, "OBSWebSocket", "ServerPort")
    auth = (ini_get(text, "OBSWebSocket", "AuthRequired") or "true").lower() == "true"
    password = ini_get(text, "OBSWebSocket", "ServerPassword") if auth else None
    return (int(port) if port and port.isdigit() else None), (password or None)


class SceneFollower:
    """Calls `call("set_character", {"character": ...})` when OBS's program scene changes to a bound one."""

    def __init__(
        self,
        bindings: dict[str, str],
        call: Callable[[str, dict], dict],
        host: str = "127.0.0.1",
        port: int | None = None,
        password: str | None = None,
        config_dir: Path | None = None,
    ) -> None:
        self.bindings = dict(bindings)
        self.call = call
        self.host, self.port, self.password, self.config_dir = host, port, password, config_dir
        self.scene: str | None = None
        self.connected = False
        self.switches = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="obs-scenes", daemon=True)

    def start(self) -> SceneFollower:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(3)

    def _address(self) -> tuple[int, str | None]:
        port, password = self.port, self.password
        if port is None or password is None:
            cfg = self.config_dir
            if cfg is None:
                from worker.setup.obs_registration import find_config_dir

                try:
                    cfg = find_config_dir(None)
                except Exception:  # no OBS configuration on this machine: the defaults
                    cfg = None
            found_port, found_password = obs_websocket_settings(cfg) if cfg is not None else (None, None)
            port = port or found_port or 4455
            password = password if password is not None else found_password
        return port, password

    def _run(self) -> None:
        import obsws_python

        logging.getLogger("obsws_python").setLevel(logging.CRITICAL)  # its own tracebacks while OBS is away
        said = False
        while not self._stop.is_set():
            port, password = self._address()
            try:
                client = obsws_python.ReqClient(host=self.host, port=port, password=password or "", timeout=3)
            except Exception as e:  # noqa: BLE001 - refused, auth failed, OBS not started yet
                if not said:
                    log.info(
                        "OBS scenes: no obs-websocket on %s:%d yet (%s); retrying",
                        self.host,
                        port,
                        " ".join(str(e).split())[:120],
                    )
                    said = True
                self._stop.wait(RETRY)
                continue
            said = False
            self.connected = True
            log.info("OBS scenes: following the program scene on %s:%d", self.host, port)
            try:
                while not self._stop.is_set():
                    self._seen(client.get_current_program_scene().current_program_scene_name)
                    self._stop.wait(POLL)
            except Exception as e:  # noqa: BLE001 - OBS closed: look for it again
                log.info("OBS scenes: lost obs-websocket (%s)", " ".join(str(e).split())[:120])
            finally:
                self.connected = False
                try:
                    client.disconnect()
                except Exception:  # noqa: BLE001
                    pass

    def _seen(self, scene: str) -> None:
        if scene == self.scene:
            return
        self.scene = scene
        character = self.bindings.get(scene)
        if character is None:
            return  # a scene without a binding keeps the character on stream
        try:
            self.call("set_character", {"character": character})
            self.switches += 1
            log.info("OBS scene %r: character %s", scene, character)
        except Exception as e:  # noqa: BLE001 - a binding to a character that is gone: one line
            log.warning("OBS scene %r: cannot switch to %r: %s", scene, character, e)
