"""Run a real OBS Studio headless (Xvfb) with a throw-away config that loads our script.

Each run gets a fresh HOME holding global.ini (first-run wizard off, obs-websocket on with a
random port and password), a profile and a scene collection whose "scripts-tool" module loads
obs_script/stream_animator.py with the given settings. The OBS tests and `bench --obs` drive OBS
over obs-websocket 5 (obsws-python) and read the script's status file. A development tool: it
needs the checkout (the script beside the package) and the dev extra.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import select
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "obs_script" / "stream_animator.py"
OBS_SCRIPTING_DIR = Path("/usr/lib/x86_64-linux-gnu/obs-scripting")  # Debian's obspython
COLLECTION = "AnimatorTest"
PROFILE = "AnimatorTest"


def missing_requirements() -> str | None:
    """Why real-OBS tests cannot run here, or None."""
    for exe in ("obs", "Xvfb"):
        if shutil.which(exe) is None:
            return f"{exe} not installed (apt-get install obs-studio xvfb libgl1-mesa-dri libglx-mesa0 libegl-mesa0)"
    try:
        import obsws_python  # noqa: F401
    except ImportError:
        return "obsws-python not installed (pip install -e .[dev])"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Xvfb:
    """A private X server on a display number it picks itself (-displayfd): tests and benches that
    run side by side (pytest-xdist, another checkout's suite) never race for the same number."""

    def __init__(self, screen: str = "1280x720x24"):
        self.proc: subprocess.Popen | None = None
        self.display = ""
        self.screen = screen

    def start(self, timeout: float = 10.0) -> str:
        read_fd, write_fd = os.pipe()
        with os.fdopen(read_fd, "rb") as pipe:
            try:
                self.proc = subprocess.Popen(
                    ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", self.screen, "-nolisten", "tcp"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    pass_fds=(write_fd,),
                )
            finally:
                os.close(write_fd)
            # Xvfb writes "N\n" once it listens; EOF (nothing written) means it exited
            if not select.select([pipe], [], [], timeout)[0]:
                self.stop()
                raise RuntimeError(f"Xvfb wrote no display number within {timeout:g} s")
            line = pipe.readline().strip()
        if not line.isdigit():
            self.stop()
            raise RuntimeError(f"Xvfb did not start (exit code {self.proc.poll()})")
        self.display = f":{int(line)}"
        return self.display

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def scene_json(name: str) -> dict:
    return {
        "id": "scene",
        "versioned_id": "scene",
        "name": name,
        "enabled": True,
        "mixers": 0,
        "settings": {"custom_size": False, "id_counter": 0, "items": []},
    }


def write_config(
    home: Path,
    ws_port: int,
    ws_password: str,
    scenes: list[str],
    script_settings: dict,
    script_path: Path = SCRIPT,
    extra_scripts: tuple[Path, ...] = (),
) -> None:
    cfg = home / ".config" / "obs-studio"
    (cfg / "basic" / "profiles" / PROFILE).mkdir(parents=True, exist_ok=True)
    (cfg / "basic" / "scenes").mkdir(parents=True, exist_ok=True)
    (cfg / "global.ini").write_text(
        "[General]\nFirstRun=true\nEnableAutoUpdates=false\nWarnBeforeStartingStream=false\n"
        f"[Basic]\nProfile={PROFILE}\nProfileDir={PROFILE}\nSceneCollection={COLLECTION}\n"
        f"SceneCollectionFile={COLLECTION}\nConfigOnNewProfile=false\n"
        "[BasicWindow]\nSysTrayEnabled=false\nShowTransitions=false\n"
        "[OBSWebSocket]\nFirstLoad=false\nServerEnabled=true\n"
        f"ServerPort={ws_port}\nAuthRequired=true\nServerPassword={ws_password}\nAlertsEnabled=false\n"
    )
    (cfg / "basic" / "profiles" / PROFILE / "basic.ini").write_text(
        f"[General]\nName={PROFILE}\n[Video]\nBaseCX=1280\nBaseCY=720\nOutputCX=1280\nOutputCY=720\n"
        "FPSType=0\nFPSCommon=30\n[Audio]\nSampleRate=48000\nChannelSetup=Stereo\n"
    )
    collection = {
        "name": COLLECTION,
        "current_scene": scenes[0],
        "current_program_scene": scenes[0],
        "scene_order": [{"name": s} for s in scenes],
        "sources": [scene_json(s) for s in scenes],
        "modules": {
            "scripts-tool": [
                {"path": str(script_path), "settings": script_settings},
                *({"path": str(p), "settings": {}} for p in extra_scripts),
            ]
        },
    }
    (cfg / "basic" / "scenes" / f"{COLLECTION}.json").write_text(json.dumps(collection, indent=1))


class ObsRun:
    """One headless OBS: `start()`, drive it with `ws` (obsws-python ReqClient), `stop()`."""

    def __init__(
        self,
        root: Path,
        script_settings: dict,
        scenes: list[str] | None = None,
        env: dict | None = None,
        script: Path = SCRIPT,
        extra_scripts: tuple[Path, ...] = (),
    ):
        self.root = Path(root)
        self.home = self.root / "home"
        self.state_dir = self.root / "state"
        self.scenes = scenes or ["Scene A", "Scene B"]
        self.script_settings = script_settings
        self.script = Path(script)  # another checkout's script runs that checkout's worker (before/after)
        self.extra_env = env or {}
        self.extra_scripts = tuple(extra_scripts)  # test helpers loaded beside ours (tests/data/obs_*.py)
        self.ws_port = free_port()
        self.ws_password = secrets.token_urlsafe(16)
        self.xvfb = Xvfb()
        self.proc: subprocess.Popen | None = None
        self.ws = None
        self.started_at = 0.0  # time.time() when obs was launched
        self.output = b""

    def collection_path(self) -> Path:
        return self.home / ".config" / "obs-studio" / "basic" / "scenes" / f"{COLLECTION}.json"

    def start(self, ws_timeout: float = 30.0, fresh_config: bool = True) -> ObsRun:
        """Launch OBS; `fresh_config=False` starts again from what the previous run saved."""
        if self.proc is not None and self.proc.poll() is None:
            # a second start would orphan this OBS, its worker and its Xvfb for good
            raise RuntimeError(f"OBS (pid {self.proc.pid}) is still running: stop() it before starting again")
        import logging

        import obsws_python

        logging.getLogger("obsws_python").setLevel(logging.CRITICAL)  # "refused" until OBS listens
        self.home.mkdir(parents=True, exist_ok=True)
        if fresh_config:
            write_config(
                self.home,
                self.ws_port,
                self.ws_password,
                self.scenes,
                self.script_settings,
                self.script,
                self.extra_scripts,
            )
        display = self.xvfb.start()
        env = dict(os.environ)
        # opencv-python (imported by these tests) points QT_* at its own Qt plugins: OBS must not see them
        for k in [k for k in env if k.startswith("QT_") or k in ("PYTHONHOME", "PYTHONPATH", "VIRTUAL_ENV")]:
            env.pop(k, None)
        env.update(
            {
                "HOME": str(self.home),
                "DISPLAY": display,
                "LIBGL_ALWAYS_SOFTWARE": "1",
                "XDG_CONFIG_HOME": str(self.home / ".config"),
                "STREAM_ANIMATOR_STATE_DIR": str(self.state_dir),
                "QT_QPA_PLATFORM": "xcb",
            }
        )
        env.update(self.extra_env)
        self.started_at = time.time()
        self._out = open(self.root / "obs-stdout.log", "wb")
        self.proc = subprocess.Popen(
            [
                "obs",
                "--multi",
                "--collection",
                COLLECTION,
                "--profile",
                PROFILE,
                "--disable-missing-files-check",
                "--disable-shutdown-check",
            ],
            env=env,
            cwd=self.root,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + ws_timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"OBS exited with {self.proc.returncode}:\n{self.log_text()[-3000:]}")
            try:
                self.ws = obsws_python.ReqClient(
                    host="127.0.0.1", port=self.ws_port, password=self.ws_password, timeout=5
                )
                return self
            except Exception as e:  # noqa: BLE001 - not listening yet
                last = e
                time.sleep(0.25)
        raise RuntimeError(f"obs-websocket did not answer within {ws_timeout} s: {last}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def status_path(self) -> Path:
        return self.state_dir / f"status-{self.pid}.json"

    def status(self) -> dict:
        try:
            return json.loads(self.status_path().read_text())
        except (OSError, ValueError):
            return {}

    def wait_status(self, pred, timeout: float, what: str) -> dict:
        deadline = time.monotonic() + timeout
        st: dict = {}
        while time.monotonic() < deadline:
            st = self.status()
            if st and pred(st):
                return st
            if self.proc is not None and self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(
            f"timed out waiting for {what}; last status: {json.dumps(st)[:1500]}\n"
            f"OBS log tail:\n{self.log_text()[-2500:]}"
        )

    def log_text(self) -> str:
        logs = sorted((self.home / ".config" / "obs-studio" / "logs").glob("*.txt"))
        return logs[-1].read_text(errors="replace") if logs else ""

    def screenshot(self, source: str, width: int | None = None):
        """RGBA numpy array of `source` as OBS renders it, or None before its first frame."""
        import cv2
        import numpy as np

        kwargs = {"name": source, "img_format": "png", "width": width, "height": width, "quality": -1}
        assert self.ws is not None, "start() first"
        try:
            r = self.ws.get_source_screenshot(**kwargs)
        except Exception as e:  # noqa: BLE001 - 702: the source has no frame yet
            if "702" in str(e) or "render" in str(e).lower():
                return None
            raise
        png = base64.b64decode(r.image_data.split(",", 1)[1])
        img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
        if img.ndim == 2 or img.shape[2] != 4:
            raise AssertionError(f"screenshot of {source} has no alpha channel: shape {img.shape}")
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)

    def dump_backtrace(self) -> Path | None:
        """All threads' stacks of a hung OBS into obs-hang-backtrace.txt (needs gdb)."""
        if self.proc is None or shutil.which("gdb") is None:
            return None
        out = self.root / "obs-hang-backtrace.txt"
        r = subprocess.run(
            ["gdb", "-p", str(self.proc.pid), "-batch", "-ex", "thread apply all bt 25"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        out.write_text(r.stdout + r.stderr)
        return out

    def kill_leftovers(self) -> None:
        """Last-resort cleanup after a failed test: anything still in OBS's process group."""
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def stop(self, timeout: float = 15.0, sig: int = signal.SIGTERM) -> int | None:
        """End OBS with `sig`, then kill after `timeout`.

        OBS 29 on Linux shuts down cleanly on SIGINT (scripts unload); SIGTERM ends it without
        unloading anything, like a crash or a killed session.
        """
        if self.ws is not None:
            try:
                self.ws.disconnect()
            except Exception:  # noqa: BLE001
                pass
            self.ws = None
        rc = None
        if self.proc is not None and self.proc.poll() is None:
            # OBS only, not its process group: the worker must notice on its own that OBS is gone
            self.proc.send_signal(sig)
            try:
                rc = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.dump_backtrace()
                self.proc.kill()
                rc = self.proc.wait(5)
        elif self.proc is not None:
            rc = self.proc.returncode
        self.xvfb.stop()
        if getattr(self, "_out", None):
            self._out.close()
        return rc
