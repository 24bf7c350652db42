"""Scene-bound characters for an OBS without the script: the ws output's follower reads the
obs-websocket address and password from a real OBS's own configuration and switches the
character when the program scene changes (real OBS 29, headless; no worker needed)."""

from __future__ import annotations

import threading
import time

from obs_harness import skip_or_fail

from worker.tools.obs_run import ObsRun, missing_requirements
from worker.web.obs_scenes import SceneFollower, obs_websocket_settings


def test_follower_switches_with_obs_program_scene(tmp_path):
    reason = missing_requirements()
    if reason:
        skip_or_fail(reason)
    run = ObsRun(tmp_path, {"autostart": False}, scenes=["Just Chatting", "Gaming", "Unbound"])
    calls: list[tuple[str, dict]] = []
    lock = threading.Lock()

    def call(op: str, args: dict) -> dict:
        with lock:
            calls.append((op, args))
        return {"character": args["character"], "ready": True}

    run.start()
    follower = None
    try:
        config_dir = run.home / ".config" / "obs-studio"
        assert obs_websocket_settings(config_dir) == (run.ws_port, run.ws_password)
        follower = SceneFollower({"Gaming": "fox.png", "Just Chatting": "s12"}, call, config_dir=config_dir).start()

        def wait_calls(n: int) -> list:
            end = time.monotonic() + 15
            while time.monotonic() < end:
                with lock:
                    if len(calls) >= n:
                        return list(calls)
                time.sleep(0.05)
            return list(calls)

        assert wait_calls(1) == [("set_character", {"character": "s12"})]  # the scene OBS started on
        run.ws.set_current_program_scene("Gaming")
        assert wait_calls(2)[1] == ("set_character", {"character": "fox.png"})
        run.ws.set_current_program_scene("Unbound")  # no binding: the character stays
        time.sleep(1.5)
        assert len(calls) == 2 and follower.scene == "Unbound" and follower.connected
    finally:
        if follower is not None:
            follower.stop()
        run.stop()
