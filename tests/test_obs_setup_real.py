"""obs-setup against a real OBS 29 (headless, Xvfb), from the configuration OBS itself writes.

Two OBS starts in all: the first, with an empty HOME, lets OBS write its first-run configuration
(global.ini, profile, the "Untitled" collection) and exits; then `obs-setup` registers the script
(idempotent; `--undo` gives the original bytes back); the second start shows the script loaded and
the "Animated Character" source receiving frames with alpha, while `obs-setup` refuses to touch
the running OBS's files in one line. After OBS has saved the collection itself, `--undo` removes
only what setup added.

Skips when OBS/Xvfb/obsws-python are missing; fails instead when env CI is set.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from obs_harness import skip_or_fail

from worker.setup import obs_config
from worker.tools.obs_run import REPO, ObsRun, missing_requirements

pytestmark = [pytest.mark.obs, pytest.mark.slow]

SOURCE = "Animated Character"


def _obs_env(home: Path, display: str, extra: dict | None = None) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if not (k.startswith("QT_") or k in ("PYTHONHOME", "PYTHONPATH", "VIRTUAL_ENV"))
    }
    env.update(
        {
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "DISPLAY": display,
            "LIBGL_ALWAYS_SOFTWARE": "1",
            "QT_QPA_PLATFORM": "xcb",
        }
    )
    env.update(extra or {})
    return env


class FirstRunObs(ObsRun):
    """OBS started on whatever configuration HOME holds (no --collection/--profile: its current ones)."""

    def first_start(self) -> None:
        """OBS with an empty HOME: it writes its first-run configuration; then it is closed."""
        self.home.mkdir(parents=True, exist_ok=True)
        display = self.xvfb.start()
        cfg = self.home / ".config" / "obs-studio"
        with open(self.root / "obs-first-run.log", "wb") as out:
            proc = subprocess.Popen(
                ["obs", "--multi", "--disable-shutdown-check"],
                env=_obs_env(self.home, display),
                cwd=self.root,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            try:
                deadline = time.monotonic() + 60
                while not (list((cfg / "basic" / "scenes").glob("*.json")) and (cfg / "global.ini").is_file()):
                    assert proc.poll() is None, f"OBS exited with {proc.returncode} on its first start"
                    assert time.monotonic() < deadline, "OBS wrote no configuration within 60 s"
                    time.sleep(0.2)
                time.sleep(1.0)  # let it finish loading before asking it to quit
                proc.send_signal(signal.SIGINT)  # a clean exit, as when the user closes the window
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
            finally:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
        self.xvfb.stop()

    def start(self, ws_timeout: float = 30.0, fresh_config: bool = False) -> FirstRunObs:
        import logging

        import obsws_python

        logging.getLogger("obsws_python").setLevel(logging.CRITICAL)
        display = self.xvfb.start()
        env = _obs_env(self.home, display, {"STREAM_ANIMATOR_STATE_DIR": str(self.state_dir), **self.extra_env})
        self.started_at = time.time()
        self._out = open(self.root / "obs-stdout.log", "wb")
        self.proc = subprocess.Popen(
            ["obs", "--multi", "--disable-missing-files-check", "--disable-shutdown-check"],
            env=env,
            cwd=self.root,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + ws_timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"OBS exited with {self.proc.returncode}:\n{self.log_text()[-3000:]}")
            try:
                self.ws = obsws_python.ReqClient(
                    host="127.0.0.1", port=self.ws_port, password=self.ws_password, timeout=5
                )
                return self
            except Exception:  # noqa: BLE001 - not listening yet
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.25)


def obs_setup(home: Path, *args: str) -> subprocess.CompletedProcess:
    """`python -m worker obs-setup` as a streamer runs it, with OBS's configuration under `home`."""
    env = {k: v for k, v in os.environ.items() if k != "XDG_CONFIG_HOME"}
    env["HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "worker", "obs-setup", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def fresh(tmp_path_factory, testdata):
    reason = missing_requirements()
    if reason:
        skip_or_fail(reason)
    root = tmp_path_factory.mktemp("obs-setup")
    run = FirstRunObs(root, {}, env={"STREAM_ANIMATOR_CACHE": str(root / "cache")})
    try:
        run.first_start()
        cfg = run.home / ".config" / "obs-studio"
        ini = cfg / "global.ini"
        text = obs_config.read_text(ini)
        collection = cfg / "basic" / "scenes" / f"{obs_config.ini_get(text, 'Basic', 'SceneCollectionFile')}.json"
        assert collection.is_file(), sorted(p.name for p in (cfg / "basic" / "scenes").iterdir())
        # test instrumentation only: obs-websocket on, with a random port and password
        for key, value in (
            ("ServerEnabled", "true"),
            ("ServerPort", str(run.ws_port)),
            ("ServerPassword", run.ws_password),
            ("AuthRequired", "true"),
        ):
            text = obs_config.ini_set(text, "OBSWebSocket", key, value)
        ini.write_text(text)
        run.cfg, run.collection, run.ini = cfg, collection, ini
        run.video = testdata / "footage" / "driving" / "d0.mp4"
        yield run
    finally:
        run.stop()
        run.kill_leftovers()


def test_setup_is_idempotent_and_undo_restores_every_byte(fresh):
    before = {p: p.read_bytes() for p in (fresh.collection, fresh.ini)}
    first = obs_setup(fresh.home, "--camera", str(fresh.video))
    assert first.returncode == 0, first.stdout + first.stderr
    assert "registered" in first.stdout and "Linux: OBS uses the system's Python" in first.stdout
    data = json.loads(fresh.collection.read_text())
    (entry,) = obs_config.script_entries(data)
    assert entry["path"] == str(REPO / "obs_script" / "stream_animator.py")
    video = str(fresh.video.resolve())
    assert entry["settings"] == {"worker_python": sys.executable, "camera": "file", "video_file": video}
    assert data["scene_order"] == json.loads(before[fresh.collection])["scene_order"]  # nothing else touched
    after_first = fresh.collection.read_bytes()

    again = obs_setup(fresh.home, "--camera", str(fresh.video))
    assert again.returncode == 0 and "already registered" in again.stdout, again.stdout + again.stderr
    assert fresh.collection.read_bytes() == after_first

    undo = obs_setup(fresh.home, "--undo")
    assert undo.returncode == 0 and "restored exactly" in undo.stdout, undo.stdout + undo.stderr
    assert {p: p.read_bytes() for p in before} == before
    assert not (fresh.cfg / obs_config.LEDGER_DIR).exists()
    assert "Nothing to undo" in obs_setup(fresh.home, "--undo").stdout


def _alpha_ok(img) -> bool:
    a = img[..., 3]
    return int(a.max()) == 255 and int(a.min()) < 128


def test_next_obs_start_loads_the_script_and_the_source_gets_frames(fresh, record_property):
    setup = obs_setup(fresh.home, "--camera", str(fresh.video))
    assert setup.returncode == 0, setup.stdout + setup.stderr
    fresh.start()
    deadline = time.monotonic() + 30
    while "Loaded python script: stream_animator.py" not in fresh.log_text():
        assert time.monotonic() < deadline, fresh.log_text()[-3000:]
        time.sleep(0.2)
    shots, deadline = [], time.monotonic() + 120
    while len(shots) < 3 and time.monotonic() < deadline:
        try:
            img = fresh.screenshot(SOURCE)
        except Exception as e:  # noqa: BLE001 - 600: the script has not created the source yet
            if "600" not in str(e) and "not found" not in str(e).lower():
                raise
            img = None
        if img is not None and img[..., 3].max() > 0:
            if not shots:
                took = round(time.time() - fresh.started_at, 2)
                record_property("obs_start_to_first_frame_s", took)
                print(f"[obs-setup] OBS start -> first frame with alpha on screen: {took} s")
            shots.append(img)
        time.sleep(0.3)
    assert len(shots) == 3, f"the source never showed a frame:\n{fresh.log_text()[-2500:]}"
    assert all(_alpha_ok(s) for s in shots), "transparency lost"
    scene = fresh.ws.get_current_program_scene().current_program_scene_name
    assert SOURCE in [i["sourceName"] for i in fresh.ws.get_scene_item_list(scene).scene_items]


def test_refuses_while_obs_runs_in_one_line(fresh):
    assert fresh.proc is not None and fresh.proc.poll() is None, "needs the OBS of the previous test"
    before = fresh.collection.read_bytes()
    for args in ((), ("--undo",)):
        proc = obs_setup(fresh.home, *args)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: OBS is running (pid "), proc.stderr
        assert str(fresh.pid) in lines[0] and "close OBS first" in lines[0]
    assert fresh.collection.read_bytes() == before


def test_undo_after_obs_saved_keeps_the_users_changes(fresh):
    fresh.stop(sig=signal.SIGINT)  # OBS saves the collection on exit (with the script's source in it)
    saved = json.loads(fresh.collection.read_text())
    assert obs_config.script_entries(saved) and SOURCE in [s["name"] for s in saved["sources"]]
    undo = obs_setup(fresh.home, "--undo")
    assert undo.returncode == 0 and "only the script and its source were removed" in undo.stdout, undo.stdout
    left = json.loads(fresh.collection.read_text())
    assert obs_config.script_entries(left) == []
    assert SOURCE not in [s["name"] for s in left["sources"]]
    assert all(
        SOURCE not in [i["name"] for i in s["settings"].get("items", [])]
        for s in left["sources"]
        if s.get("id") == "scene"
    )
    assert [s["name"] for s in left["sources"] if s.get("id") == "scene"] == [
        s["name"] for s in saved["sources"] if s.get("id") == "scene"
    ]
    assert not (fresh.cfg / obs_config.LEDGER_DIR).exists()
