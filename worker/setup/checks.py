"""The doctor's checks: each looks at one piece and says ok / warn / fail, with what to do.

Every check is a function of `DoctorOptions` returning a `Check`; `run_checks()` runs them all
(a check that crashes becomes a failed check naming the exception, never a traceback).
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import json
import os
import queue
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from worker.errors import UserError
from worker.setup import import_hints

if TYPE_CHECKING:
    from worker.config import Settings

OK, WARN, FAIL = "ok", "warn", "fail"
INSTALL = "python3 installer/install.py" if os.name != "nt" else "py installer\\install.py"
ORT_BUILDS = ("onnxruntime", "onnxruntime-gpu", "onnxruntime-directml")
STARTUP_TIMEOUT = 90.0  # the worker's start: imports, tracker, the first character's preparation
PACKAGES = ("numpy", "cv2", "mediapipe", "onnxruntime", "av", "yaml", "psutil", "PIL")


@dataclass
class Check:
    name: str
    status: str
    detail: str
    advice: str = ""  # what to do; empty when ok
    data: dict = field(default_factory=dict)

    def line(self) -> str:
        text = f"{self.status.upper():4}  {self.name}: {self.detail}"
        return text + (f" -> {self.advice}" if self.advice and self.status != OK else "")


@dataclass
class DoctorOptions:
    config: str | None = None  # the worker's YAML config (ports, cache, renderer)
    obs_config: str | None = None
    cache_dir: Path | None = None
    models_dir: Path | None = None
    manifest: Path | None = None
    selftest_seconds: float = 3.0
    platform: str = sys.platform


def _worker_config(opts: DoctorOptions) -> Settings:
    from worker.config import load_settings

    return load_settings(opts.config)


# ---------------------------------------------------------------- the checks


def check_python(opts: DoctorOptions) -> Check:
    v = sys.version_info
    ver = f"{v[0]}.{v[1]}.{v[2]}"
    in_venv = sys.prefix != sys.base_prefix
    data = {"version": ver, "executable": sys.executable, "venv": sys.prefix if in_venv else None}
    if not (3, 10) <= v[:2] < (3, 13):
        return Check(
            "python",
            FAIL,
            f"Python {ver} ({sys.executable}) is not supported",
            f"install Python 3.10-3.12 and run {INSTALL}",
            data,
        )
    if not in_venv:
        return Check(
            "python",
            WARN,
            f"Python {ver} outside a virtual environment ({sys.executable})",
            f"run {INSTALL}, which makes .venv, and use .venv's stream-animator",
            data,
        )
    return Check("python", OK, f"Python {ver} in the venv {sys.prefix}", data=data)


def check_packages(opts: DoctorOptions) -> Check:
    versions, failed = {}, {}
    for name in PACKAGES:
        try:
            mod = importlib.import_module(name)
            versions[name] = str(getattr(mod, "__version__", "") or "")
        except Exception as e:  # noqa: BLE001 - any import failure is the finding
            failed[name] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    builds = []
    for dist in ORT_BUILDS:
        try:
            builds.append(f"{dist} {md.version(dist)}")
        except md.PackageNotFoundError:
            pass
    data = {"versions": versions, "failed": failed, "onnxruntime_builds": builds}
    if failed:
        name, err = next(iter(failed.items()))
        others = f" (also: {', '.join(list(failed)[1:])})" if len(failed) > 1 else ""
        line = import_hints.explain(name, err.partition(": ")[2] or err)
        detail, _, fix = line.partition(" -> ")
        return Check("packages", FAIL, detail + others, fix, data)
    if len(builds) > 1:
        return Check(
            "packages",
            FAIL,
            f"two ONNX Runtime builds side by side ({', '.join(builds)}): the GPU is then usually not used",
            f"run {INSTALL} --force (it keeps exactly one)",
            data,
        )
    shown = ", ".join(f"{k} {v}" for k, v in versions.items() if v)
    return Check("packages", OK, f"{len(versions)} import ({shown})", data=data)


def check_devices(opts: DoctorOptions) -> Check:
    from worker.audio.sources import microphones_and_reason
    from worker.capture import list_cameras

    cams = list_cameras()
    mics, reason = microphones_and_reason()
    no_portaudio = "PortAudio" in reason
    cam_text = ", ".join(f"webcam:{c.index} {c.name}" for c in cams) or "no camera"
    if no_portaudio:
        mic_text = "no microphone support (the PortAudio library is missing)"
    else:
        mic_text = f"{len(mics)} microphone(s)" if mics else f"no microphone ({reason})"
    data = {"cameras": [asdict(c) for c in cams], "microphones": [m.name for m in mics], "portaudio": not no_portaudio}
    advice = []
    if no_portaudio:
        advice.append(PORTAUDIO_FIX.get(opts.platform[:3], PORTAUDIO_FIX["lin"]))
    if not cams:
        advice.append("plug in a webcam and close other programs using it (a video file works as a source too)")
    if advice:
        return Check("devices", WARN, f"{cam_text}; {mic_text}", "; ".join(advice), data)
    return Check("devices", OK, f"{cam_text}; {mic_text}", data=data)


# what makes `sounddevice` find PortAudio (its Windows and macOS wheels carry their own)
PORTAUDIO_FIX = {
    "lin": "for microphones install PortAudio: sudo apt install libportaudio2 (Fedora: sudo dnf install portaudio)",
    "dar": f"for microphones reinstall the packages: {INSTALL} --force",
    "win": f"for microphones reinstall the packages: {INSTALL} --force",
}


def obs_executable(platform: str) -> str | None:
    if platform.startswith("win"):
        for base in (os.environ.get("ProgramFiles", r"C:\Program Files"), os.environ.get("ProgramFiles(x86)", "")):
            exe = Path(base) / "obs-studio" / "bin" / "64bit" / "obs64.exe"
            if base and exe.is_file():
                return str(exe)
        return None
    if platform == "darwin":
        app = Path("/Applications/OBS.app")
        return str(app) if app.exists() else None
    found = shutil.which("obs")
    if found:
        return found
    flatpak = shutil.which("flatpak")
    if flatpak and Path("/var/lib/flatpak/app/com.obsproject.Studio").exists():
        return "flatpak run com.obsproject.Studio"
    return None


def _obs_dir(opts: DoctorOptions) -> Path:
    from worker.setup.obs_registration import find_config_dir

    return find_config_dir(opts.obs_config, opts.platform)


def check_obs(opts: DoctorOptions) -> Check:
    exe = obs_executable(opts.platform)
    try:
        cfg = _obs_dir(opts)
    except UserError as e:
        if exe:
            return Check(
                "obs",
                FAIL,
                f"OBS installed ({exe}) but it has no configuration yet",
                "start OBS once and close it, then run `stream-animator obs-setup`",
                {"executable": exe},
            )
        return Check("obs", FAIL, str(e).split(":")[0], "install OBS Studio 28 or newer from https://obsproject.com")
    data = {"executable": exe, "config_dir": str(cfg)}
    if not exe:
        return Check(
            "obs",
            WARN,
            f"configuration at {cfg}, but the OBS program was not found",
            "install OBS Studio 28 or newer from https://obsproject.com",
            data,
        )
    version = obs_version(cfg)
    data["version"] = version
    shown = f"OBS {version} ({exe})" if version else exe
    return Check("obs", OK, f"{shown}; configuration {cfg}", data=data)


def obs_version(config_dir: Path) -> str | None:
    """The version OBS wrote at the top of its newest log ("OBS 29.0.2-1 (linux)"), if any."""
    logs = sorted((config_dir / "logs").glob("*.txt"), key=lambda p: p.stat().st_mtime)
    for log in reversed(logs[-3:]):
        try:
            with open(log, encoding="utf-8", errors="replace") as f:
                head = f.read(4096)
        except OSError:
            continue
        m = re.search(r"\bOBS (\d+\.\d+[^\s]*)", head)
        if m:
            return m.group(1)
    return None


def check_script(opts: DoctorOptions) -> Check:
    from worker.setup import obs_config

    try:
        cfg = _obs_dir(opts)
    except UserError:
        return Check("obs script", FAIL, "no OBS configuration", "install and start OBS once, then obs-setup")
    try:
        current = obs_config.find_collection(cfg, None)
    except UserError:
        current = None
    registered, problems = [], []
    for coll in obs_config.collections(cfg):
        data = json.loads(obs_config.read_text(coll.path))
        for entry in obs_config.script_entries(data):
            registered.append(coll.name)
            py = (entry.get("settings") or {}).get(obs_config.WORKER_PYTHON_KEY, "")
            if not Path(entry.get("path", "")).is_file():
                problems.append(f"'{coll.name}' points at a missing script {entry.get('path')}")
            elif py and not Path(py).is_file():
                problems.append(f"'{coll.name}' uses a missing worker Python {py}")
    data = {"collections": registered, "current": current.name if current else None}
    damaged = obs_config.damaged_collections(cfg)
    if damaged and not registered:  # the registration may be in the damaged file: that is the cause
        data["damaged"] = [str(p) for p in damaged]
        return Check(
            "obs script",
            FAIL,
            f"scene collection {damaged[0]} is damaged (not valid JSON, cut short?)",
            obs_config.repair_advice(damaged[0]),
            data,
        )
    if problems:
        return Check("obs script", FAIL, "; ".join(problems), "close OBS and run `stream-animator obs-setup`", data)
    if not registered:
        return Check(
            "obs script",
            FAIL,
            "not registered in any scene collection",
            "close OBS and run `stream-animator obs-setup`",
            data,
        )
    if current is not None and current.name not in registered:
        return Check(
            "obs script",
            WARN,
            f"registered in {', '.join(registered)} but not in the current collection '{current.name}'",
            f'close OBS and run `stream-animator obs-setup --collection "{current.name}"`',
            data,
        )
    return Check("obs script", OK, f"registered in {', '.join(repr(r) for r in registered)}", data=data)


def check_obs_python(opts: DoctorOptions) -> Check:
    from worker.setup import obs_config, obs_paths

    kind = obs_paths.os_kind(opts.platform)
    if kind == "linux":
        found = [str(p) for p in Path("/usr/lib").glob("*/obs-scripting/obspython.py")] + [
            str(p) for p in Path("/usr/lib/obs-scripting").glob("obspython.py")
        ]
        if found:
            return Check("obs python", OK, f"OBS's Python scripting is installed ({found[0]})", data={"found": found})
        return Check(
            "obs python",
            WARN,
            "OBS's Python scripting module (obspython) was not found in /usr/lib",
            "use your distribution's obs-studio package or the Flatpak, both include Python scripting",
        )
    try:
        ini = obs_config.user_ini(_obs_dir(opts))
        current = obs_config.ini_get(obs_config.read_text(ini), obs_paths.PYTHON_SECTION, obs_paths.PYTHON_KEY) or ""
    except (UserError, OSError):
        return Check("obs python", FAIL, "no OBS configuration", "install and start OBS once, then obs-setup")
    version = obs_paths.python_obs_would_load(opts.platform, current, os.path.exists)
    if version:
        return Check("obs python", OK, f"{current} (Python {version})", data={"path": current, "version": version})
    what = f"{current!r} has no Python OBS can load" if current else "not set"
    return Check(
        "obs python",
        FAIL,
        f"OBS's Python: {what}",
        "close OBS and run `stream-animator obs-setup` (it picks one or says what to install)",
    )


def _nvidia_gpus() -> list[str]:
    smi = shutil.which("nvidia-smi")
    if not smi:
        return []
    try:
        out = subprocess.run(
            [smi, "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=15
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [x.strip() for x in out.stdout.splitlines() if x.strip()] if out.returncode == 0 else []


def check_gpu(opts: DoctorOptions) -> Check:
    from worker.setup.onnx_probe import probe_providers

    probed = {k: v for k, v in probe_providers().items() if k != "AzureExecutionProvider"}
    working = [p.replace("ExecutionProvider", "") for p, r in probed.items() if r == "ok"]
    broken = {p.replace("ExecutionProvider", ""): r for p, r in probed.items() if r != "ok"}
    gpus = _nvidia_gpus()
    data = {"providers": probed, "nvidia": gpus}
    text = f"GPU {', '.join(gpus) or 'none found'}; ONNX Runtime providers working: {', '.join(working) or 'none'}"
    if broken:
        text += "; failing: " + "; ".join(f"{k} ({v})" for k, v in broken.items())
    if "CPU" not in working:
        return Check("gpu", FAIL, text, f"run {INSTALL} --force", data)
    if gpus and "CUDA" not in working:
        return Check("gpu", FAIL, text, f"update the NVIDIA driver, then run {INSTALL} --gpu cuda --force", data)
    if broken:
        return Check("gpu", WARN, text, f"run {INSTALL} --force (or --gpu cpu to stop using that build)", data)
    return Check("gpu", OK, text, data=data)


def check_models(opts: DoctorOptions) -> Check:
    from worker.paths import repo_root

    root = repo_root() or Path.cwd()
    manifest = opts.manifest or root / "models" / "manifest.json"
    folder = opts.models_dir or manifest.parent
    from worker.render.liveportrait import weights

    try:  # the manifest's one parser and one file check, shared with `models` and the renderer
        entries = [e for e in weights.load_entries(manifest, prefix="") if not e.optional]  # the animal set is optional
    except UserError as e:
        return Check("models", FAIL, str(e), "restore models/manifest.json")
    missing, bad, good, unverified = [], [], [], []
    for st in (weights.check(e, folder) for e in entries):
        if st.state in ("missing", "partial"):
            missing.append(st.path)
        elif st.state == "mismatch":
            bad.append(f"{st.path} ({'SHA-256 mismatch' if st.detail.startswith('SHA-256') else st.detail})")
        elif st.state == "unverifiable":
            unverified.append(st.path)
        else:
            good.append(st.path)
    try:
        renderer = _worker_config(opts).renderer.name
    except UserError:
        renderer = "meshwarp"
    data = {
        "folder": str(folder),
        "verified": good,
        "missing": missing,
        "bad": bad,
        "unverified": unverified,
        "renderer": renderer,
    }
    fix = f"run {INSTALL} --models (downloads and verifies them)"
    if bad:
        return Check("models", FAIL, f"damaged: {', '.join(bad)}", f"delete them and {fix}", data)
    if missing and (good or unverified or renderer == "liveportrait"):
        return Check(
            "models",
            FAIL,
            f"{len(missing)} of {len(entries)} weight files missing in {folder} "
            f"({', '.join(missing[:3])}{'...' if len(missing) > 3 else ''})",
            fix,
            data,
        )
    if missing:
        return Check(
            "models",
            WARN,
            f"no LivePortrait weights in {folder} (optional: renderer auto then uses meshwarp, which needs none)",
            f"only for the liveportrait renderer: {fix}",
            data,
        )
    if unverified:
        return Check(
            "models",
            WARN,
            f"{len(unverified)} weight files present but not verifiable (no sha256 in {manifest.name})",
            "fill in the published hashes (models/README.md)",
            data,
        )
    return Check("models", OK, f"{len(good)} weight files present and verified in {folder}", data=data)


def _folder_size(folder: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(folder):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(dirpath, f))
            except OSError:
                pass
    return total


def _file_in_the_way(folder: Path) -> Path | None:
    """The first part of `folder` (itself or a parent) that exists as something other than a folder."""
    for part in [*reversed(folder.parents), folder]:
        if part.exists() and not part.is_dir():
            return part
    return None


def check_cache(opts: DoctorOptions) -> Check:
    from worker.paths import default_cache_dir

    folder = opts.cache_dir
    if folder is None:
        try:
            folder = Path(_worker_config(opts).cache_dir or default_cache_dir())
        except UserError:
            folder = default_cache_dir()
    blocker = _file_in_the_way(folder)
    if blocker is not None:
        where = "the cache folder" if blocker == folder else f"a folder of the cache path {folder}"
        return Check(
            "cache",
            FAIL,
            f"{blocker} is a file, where {where} should be",
            "move that file away, or set STREAM_ANIMATOR_CACHE (or cache_dir in the config) to a folder you own",
            {"folder": str(folder), "blocker": str(blocker)},
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".doctor-", dir=folder)
        os.write(fd, b"ok")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        existing = next((p for p in (folder, *folder.parents) if p.is_dir()), folder)
        reason = e.strerror or str(e)
        if existing == folder:
            detail = f"{folder} is not writable ({reason})"
        else:  # the folder could not be made: the place it goes is what to fix
            detail = f"the cache folder {folder} cannot be made in {existing} ({reason})"
        fix = f"make {existing} writable, or set STREAM_ANIMATOR_CACHE (or cache_dir in the config) to a folder you own"
        return Check("cache", FAIL, detail, fix, {"folder": str(folder)})
    size = _folder_size(folder)
    return Check("cache", OK, f"{folder} writable, {size / 1e6:.1f} MB", data={"folder": str(folder), "bytes": size})


def _configured_ports(opts: DoctorOptions) -> dict[str, int]:
    from worker.control import protocol as P

    cfg = _worker_config(opts)
    ports = {}
    if cfg.control.port:
        ports["control"] = cfg.control.port
    for i, out in enumerate(cfg.outputs):
        if out.get("port"):
            ports[f"outputs[{i}] {out.get('type')}"] = int(out["port"])
    for label, env in (("control (env)", P.ENV_CONTROL_PORT), ("frames (env)", P.ENV_FRAME_PORT)):
        if os.environ.get(env, "").isdigit():
            ports[label] = int(os.environ[env])
    return ports


def _port_free(port: int) -> str | None:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError as e:
            return e.strerror or str(e)
    return None


def check_ports(opts: DoctorOptions) -> Check:
    try:
        ports = _configured_ports(opts)
    except UserError as e:
        return Check("ports", FAIL, str(e), "fix the config file")
    if not ports:
        free = _port_free(0)
        if free:
            return Check(
                "ports",
                FAIL,
                f"cannot open a loopback port ({free})",
                "allow local connections on 127.0.0.1 in the firewall",
            )
        return Check("ports", OK, "control and frame ports are chosen free at start (none fixed in the config)")
    busy = {label: (port, why) for label, port in ports.items() if (why := _port_free(port))}
    data = {"ports": ports, "busy": {k: v[0] for k, v in busy.items()}}
    if busy:
        text = ", ".join(f"{label} port {port} is in use ({why})" for label, (port, why) in busy.items())
        return Check("ports", FAIL, text, "close the program using it or choose another port (0 = any free port)", data)
    return Check("ports", OK, "free: " + ", ".join(f"{k} {v}" for k, v in ports.items()), data=data)


def check_selftest(opts: DoctorOptions) -> Check:
    """The real worker for a few seconds: bundled clip -> tracking -> renderer -> the OBS frame channel."""
    from worker.control import protocol as P
    from worker.paths import SAMPLE_DRIVER

    token = P.make_token()
    env = dict(os.environ, **{P.ENV_TOKEN: token})
    env.pop(P.ENV_CONTROL_PORT, None)
    env.pop(P.ENV_FRAME_PORT, None)
    if opts.cache_dir is not None:
        env["STREAM_ANIMATOR_CACHE"] = str(opts.cache_dir)
    secs = opts.selftest_seconds
    cmd = [
        sys.executable,
        "-m",
        "worker",
        "run",
        "--source",
        str(SAMPLE_DRIVER),
        "--output",
        "obs:0",
        "--control-port",
        "0",
        "--duration",
        str(secs + 30),
        "--ready-json",
    ]
    t0 = time.monotonic()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env, text=True
    )
    rx = None
    lines: queue.Queue = queue.Queue()
    stdout = proc.stdout
    assert stdout is not None  # stdout=PIPE
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        try:
            line = lines.get(timeout=STARTUP_TIMEOUT)
        except queue.Empty:
            return Check(
                "selftest",
                FAIL,
                f"the worker did not get ready within {STARTUP_TIMEOUT:.0f} s",
                "run `stream-animator demo` to see where it hangs",
            )
        if not line:
            err = (proc.stderr.read() if proc.stderr else "").strip().splitlines()
            return Check(
                "selftest",
                FAIL,
                f"the worker did not start ({err[-1] if err else 'no output'})",
                "run `stream-animator demo` to see the full error",
            )
        ready = json.loads(line)
        startup = time.monotonic() - t0
        rx = P.FrameReceiver(int(ready["frame_port"]), token).connect()
        frames, alpha_ok = 0, True
        first: float | None = None
        last: float | None = None
        deadline = time.monotonic() + secs + 15  # the first frame may wait for the character to prepare
        while time.monotonic() < deadline and (first is None or time.monotonic() - first < secs):
            f = rx.poll(0.2)
            if f is None:
                continue
            now = time.monotonic()
            first = first or now
            last = now
            frames += 1 + rx.skipped
            rx.skipped = 0
            if frames <= 3 or frames % 30 == 0:
                import numpy as np

                a = np.frombuffer(bytes(f.data), np.uint8)[3::4]
                alpha_ok = alpha_ok and int(a.max()) == 255 and int(a.min()) < 128
        span = (last - first) if first is not None and last is not None else 0.0
        fps = (frames - 1) / span if frames > 1 and span > 0 else 0.0
        data = {"frames": frames, "fps": round(fps, 1), "startup_s": round(startup, 2), "alpha": alpha_ok}
        if frames == 0:
            return Check(
                "selftest",
                FAIL,
                f"the worker started but sent no frame in {secs + 15:.0f} s",
                "run `stream-animator demo` and look at its log",
                data,
            )
        if not alpha_ok:
            return Check("selftest", FAIL, f"{frames} frames but the transparency is lost", "report this bug", data)
        text = f"{frames} frames with alpha in {secs:.0f} s: {fps:.1f} FPS (worker ready in {startup:.1f} s)"
        if fps < 15:
            return Check("selftest", WARN, text, "close other heavy programs, or lower the output size", data)
        return Check("selftest", OK, text, data=data)
    finally:
        if rx is not None:
            rx.close()
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


CHECKS: tuple[Callable[[DoctorOptions], Check], ...] = (
    check_python,
    check_packages,
    check_devices,
    check_obs,
    check_script,
    check_obs_python,
    check_gpu,
    check_models,
    check_cache,
    check_ports,
    check_selftest,
)


def run_checks(
    opts: DoctorOptions, on_result: Callable[[Check], None] | None = None, only: set[str] | None = None
) -> list[Check]:
    results = []
    for fn in CHECKS:
        name = fn.__name__.removeprefix("check_")
        if only and name not in only:
            continue
        try:
            r = fn(opts)
        except (ImportError, OSError) as e:  # a broken package: name it and its fix (the packages check too)
            from worker.paths import PACKAGE_DIR

            line = import_hints.explain(import_hints.culprit(e, str(PACKAGE_DIR)) or "a package", str(e))
            detail, _, fix = line.partition(" -> ")
            r = Check(name, FAIL, f"cannot run: {detail}", fix)
        except Exception as e:  # noqa: BLE001 - a crashing check is a failed check, not a traceback
            r = Check(name, FAIL, f"the check itself failed: {type(e).__name__}: {e}", "report this bug")
        results.append(r)
        if on_result:
            on_result(r)
    return results
