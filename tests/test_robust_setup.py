"""Install, doctor and setup when something is broken (issue 26): a broken package leaves the
rescue commands working, every setup failure is one line naming the thing and a fix that works,
a failed step puts back what it wrote, and the user's files keep their bytes and their modes.

Read-only folders are made read-only for root too (`chattr +i`; CI runs as root), so the
permission cases are real, not assumed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from test_fuzz_paths import CHATTER
from test_obs_setup import FRESH_INI, make_obs_config

from worker.characters.face_marks import default_marks, sidecar_path
from worker.commands import ctl
from worker.commands.run import character_overrides
from worker.control import endpoints
from worker.errors import UserError
from worker.paths import ASSETS_DIR, SAMPLE_DRIVER
from worker.setup import checks as setup_checks
from worker.setup import obs_config, obs_registration
from worker.studio.mark_page import MarkServer

REPO = Path(__file__).resolve().parents[1]
FOX = ASSETS_DIR / "mascots" / "fox.png"


def cli(*args: str, cwd: Path, env: dict | None = None, path: list[Path] = (), timeout: float = 180):
    """`python -m worker ARGS` as a user runs it; `path` goes first on PYTHONPATH (shadow modules)."""
    e = {**os.environ, "STREAM_ANIMATOR_LOGS": str(cwd / "logs"), **(env or {})}
    e["PYTHONPATH"] = os.pathsep.join([*map(str, path), str(REPO)])
    for k in ("DISPLAY", "STREAM_ANIMATOR_TOKEN", "STREAM_ANIMATOR_CONTROL_PORT"):
        e.pop(k, None)
    return subprocess.run(
        [sys.executable, "-m", "worker", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=e,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def ours(r: subprocess.CompletedProcess) -> list[str]:
    return [x for x in (r.stdout + r.stderr).splitlines() if not CHATTER.match(x)]


def one_error(r: subprocess.CompletedProcess, *named: str) -> str:
    """The shape of every failure: non-zero exit, no traceback, one `error:` line naming each of
    `named`, and that line last on stderr."""
    text = r.stdout + r.stderr
    assert r.returncode != 0 and "Traceback" not in text, text[-2000:]
    errors = [x for x in ours(r) if x.startswith("error:")]
    assert len(errors) == 1, text[-2000:]
    assert [x for x in r.stderr.splitlines() if x.strip()][-1] == errors[0], r.stderr[-2000:]
    for n in named:
        assert n in errors[0], errors[0]
    return errors[0]


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def tree(d: Path) -> dict[str, str]:
    return {str(p.relative_to(d)): sha(p) if p.is_file() else "dir" for p in sorted(d.rglob("*"))}


@contextlib.contextmanager
def read_only(folder: Path):
    """`folder` cannot be written, for root too (immutable) - the check below proves it."""
    folder.chmod(0o555)
    immutable = os.geteuid() == 0 and subprocess.run(["chattr", "+i", str(folder)]).returncode == 0
    try:
        with pytest.raises(OSError):
            (folder / ".probe").write_bytes(b"x")
        yield folder
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o755)


def shadow(tmp_path: Path, module: str, error: str) -> Path:
    """A folder holding a package `module` whose import fails like a broken install's."""
    d = tmp_path / f"broken-{module}"
    (d / module).mkdir(parents=True)
    (d / module / "__init__.py").write_text(f"raise {error}\n")
    return d


# --- 2: one broken package ----------------------------------------------------------------------


def test_a_broken_opencv_leaves_help_doctor_microphones_and_undo_working(tmp_path):
    """OpenCV's import failing as on a machine without libGL: the rescue commands run and name
    the package and the fix; a command that needs OpenCV says the same in one line."""
    broken = shadow(tmp_path, "cv2", 'ImportError("libGL.so.1: cannot open shared object file: No such file")')
    obs = make_obs_config(tmp_path / "home")
    runs = {
        "help": ["--help"],
        "doctor": ["doctor", "--only", "packages", "--only", "devices", "--only", "obs"],
        "microphones": ["microphones"],
        "undo": ["obs-setup", "--undo", "--obs-config", str(obs)],
        "check": ["check", str(FOX)],
    }
    for name in runs:
        (tmp_path / name).mkdir()
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = pool.map(lambda n: cli(*runs[n], cwd=tmp_path / n, path=[broken]), runs)
        done = dict(zip(runs, results, strict=True))
    for name, r in done.items():
        assert "Traceback" not in r.stdout + r.stderr, (name, r.stderr[-2000:])
    fix = "sudo apt install libgl1"
    h = done["help"]
    assert h.returncode == 0 and "demo" in h.stdout and "doctor" in h.stdout, h.stdout
    assert "cannot run now: " in h.stdout and "cannot import cv2" in h.stdout.replace("\n", " "), h.stdout
    assert fix in " ".join(h.stdout.split())
    d = [x for x in ours(done["doctor"]) if x.startswith(("FAIL", "WARN", "OK"))]
    assert (
        d[0].startswith("FAIL  packages: cannot import cv2 (package opencv-contrib-python): libGL.so.1") and fix in d[0]
    )
    assert d[1].startswith("FAIL  devices: cannot run: cannot import cv2") and fix in d[1]
    assert done["doctor"].returncode == 1
    assert done["microphones"].returncode == 0 and ours(done["microphones"]), done["microphones"].stderr
    assert done["undo"].returncode == 0 and "Nothing to undo" in done["undo"].stdout
    one_error(done["check"], "cannot import cv2", "libGL.so.1", fix)


# --- 5: an existing file is a path --------------------------------------------------------------


def test_a_file_in_the_current_folder_is_a_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(FOX, tmp_path / "blue.png")
    want = {"characters.folder": str(tmp_path), "characters.current": "blue.png"}
    assert character_overrides("./blue.png", None) == want
    assert character_overrides("blue.png", None) == want
    assert character_overrides("fox", None) == {"characters.current": "fox"}  # no such file here: a name
    lib = tmp_path / "lib"
    lib.mkdir()
    shutil.copy(FOX, lib / "blue.png")  # in the folder named by --characters: that one
    assert character_overrides("blue.png", str(lib)) == {"characters.current": "blue.png"}


# --- 7 and 8: the mark page keeps modes and names a read-only folder -----------------------------


def _post(url: str, body: dict) -> tuple[int, dict]:
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_mark_page_save_keeps_the_mode_and_a_read_only_folder_is_one_line(tmp_path):
    pic = tmp_path / "pics" / "fox.png"
    pic.parent.mkdir()
    shutil.copy(FOX, pic)
    server = MarkServer(pic)
    try:
        marks = default_marks(server.width, server.height).to_json()
        assert _post(server.api("save"), marks)[0] == 200
        side = sidecar_path(pic)
        umask = os.umask(0)
        os.umask(umask)
        assert side.stat().st_mode & 0o777 == 0o666 & ~umask  # a new file: as any new file (not 0600)
        side.chmod(0o644)
        assert _post(server.api("save"), marks)[0] == 200
        assert side.stat().st_mode & 0o777 == 0o644  # an existing one keeps its mode
        before = tree(pic.parent)
        with read_only(pic.parent):
            code, reply = _post(server.api("save"), marks)
        assert code == 400 and "\n" not in reply["error"], reply
        assert reply["error"].startswith(f"{pic.parent}: cannot write fox.face.json there ("), reply
        assert tree(pic.parent) == before  # nothing lost, no temporary file left
    finally:
        server.close()


def test_mark_port_in_use_or_out_of_range_is_one_line(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        used = cli("mark", str(FOX), "--no-browser", "--port", str(port), cwd=tmp_path)
    one_error(used, f"--port {port}", "in use", "leave --port out")
    with pytest.raises(UserError, match=r"^--port 99999: not a port number \(0-65535; 0 = any free port\)$"):
        MarkServer(FOX, port=99999)


def test_render_out_that_is_a_folder_fails_before_rendering(tmp_path):
    (tmp_path / "X.mp4").mkdir()
    r = cli("render", "--text", "hello there", "--out", "X.mp4", "--size", "128", cwd=tmp_path)
    one_error(r, "--out X.mp4", "is a folder")
    assert "rendering" not in r.stderr and list((tmp_path / "X.mp4").iterdir()) == []


# --- 10: the real error is the last line ---------------------------------------------------------


def test_a_bad_face_json_is_the_last_line_not_mediapipe_noise(tmp_path):
    pic = tmp_path / "b.png"
    shutil.copy(FOX, pic)
    sidecar_path(pic).write_text('{"points": {"nose": [1, 2]}\n')
    before = tree(tmp_path)
    r = cli("demo", "--character", str(pic), "--out", "o.mp4", "--size", "128", "--max-frames", "3", cwd=tmp_path)
    one_error(r, "b.face.json: malformed JSON")  # and last on stderr
    assert not any(x.startswith(("W0000", "I0000", "WARNING: All log")) for x in r.stderr.splitlines()), r.stderr
    assert {k: v for k, v in tree(tmp_path).items() if not k.startswith("logs")} == before


# --- 7, 8, 14: obs-setup ------------------------------------------------------------------------


def test_obs_setup_that_cannot_write_undoes_itself(tmp_path):
    """The scenes folder (the collection is written after its backup) or OBS's folder itself (the
    backup folder goes there) cannot be written: one line naming it, and OBS's files as they were
    - no backup left without its record."""
    cfg = make_obs_config(tmp_path / "home")
    before = tree(cfg)
    with read_only(cfg / "basic" / "scenes") as scenes:
        r = cli("obs-setup", "--obs-config", str(cfg), cwd=tmp_path)
    line = one_error(r, f"{scenes}: cannot write Untitled.json there (", "OBS's configuration is as it was before")
    assert "internal error" not in line and "run obs-setup again" in line
    assert tree(cfg) == before, "obs-setup left a change behind"
    with read_only(cfg), pytest.raises(UserError) as e:
        obs_registration.apply(cfg, REPO, sys.executable, check_running=False)
    assert str(e.value).startswith(f"{cfg}: cannot make the folder stream-animator-setup there (")
    assert tree(cfg) == before


def test_a_current_collection_without_its_file_is_not_replaced_by_another(tmp_path):
    ini = FRESH_INI.replace("SceneCollectionFile=Untitled", "SceneCollectionFile=Gone")
    cfg = make_obs_config(tmp_path / "home", ini=ini)
    before = tree(cfg)
    r = cli("obs-setup", "--obs-config", str(cfg), cwd=tmp_path)
    one_error(r, "'Gone' has no file", "Gone.json", "--collection", "'Untitled'")
    assert tree(cfg) == before
    assert obs_registration.apply(cfg, REPO, sys.executable, "Untitled", check_running=False).ok
    assert obs_config.script_entries(json.loads((cfg / "basic/scenes/Untitled.json").read_text()))


def test_a_truncated_collection_is_named_and_the_advised_fix_works(tmp_path):
    cfg = make_obs_config(tmp_path / "home")
    coll = cfg / "basic" / "scenes" / "Untitled.json"
    shutil.copy(coll, coll.with_name("Untitled.json.bak"))  # OBS keeps the previous save beside it
    coll.write_text(coll.read_text()[:60])  # cut short, as after a crash mid-save
    script = setup_checks.check_script(setup_checks.DoctorOptions(obs_config=str(cfg)))
    assert (
        script.status == setup_checks.FAIL
        and script.detail == f"scene collection {coll} is damaged (not valid JSON, cut short?)"
    )
    assert script.advice.startswith("close OBS, copy OBS's backup Untitled.json.bak over Untitled.json")
    setup = cli("obs-setup", "--obs-config", str(cfg), cwd=tmp_path)
    one_error(setup, str(coll), "damaged scene collection", "Untitled.json.bak over Untitled.json")
    shutil.copy(coll.with_name("Untitled.json.bak"), coll)  # what both said to do
    assert obs_registration.apply(cfg, REPO, sys.executable, check_running=False).ok
    script = setup_checks.check_script(setup_checks.DoctorOptions(obs_config=str(cfg)))
    assert script.status == setup_checks.OK and script.detail == "registered in 'Untitled'", script.line()


def _copy_of_the_checkout(root: Path) -> Path:
    """Another copy's OBS script file: all a registration points at."""
    script = root / "obs_script" / obs_config.SCRIPT_FILE
    script.parent.mkdir(parents=True)
    shutil.copy(REPO / "obs_script" / obs_config.SCRIPT_FILE, script)
    (root / "pyproject.toml").write_text("[project]\nname = 'copy'\n")
    return root


def test_uninstalling_a_second_copy_keeps_the_first_copys_registration(tmp_path):
    home = tmp_path / "home"
    cfg = make_obs_config(home / ".config")
    first = _copy_of_the_checkout(tmp_path / "first")
    obs_registration.apply(cfg, first, "/first/.venv/bin/python", check_running=False)
    registered = tree(cfg)
    # a venv of this checkout (the second copy), light: the dev environment's packages via a .pth
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = next((venv / "lib").glob("python3.*/site-packages"))
    dev_site = next(p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir())
    (site / "dev.pth").write_text(f"{dev_site}\n{REPO}\n")
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_CONFIG_HOME", "PYTHONPATH")}
    env.update(HOME=str(home), STREAM_ANIMATOR_CACHE=str(tmp_path / "my cache"))
    proc = subprocess.run(
        [sys.executable, str(REPO / "installer" / "install.py"), "--uninstall", "--venv", str(venv)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        stdin=subprocess.DEVNULL,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"belongs to another copy of Stream Motion Animator ({first.resolve()}" in proc.stdout, proc.stdout
    assert tree(cfg) == registered and not venv.exists()
    assert f"and the cache ({tmp_path / 'my cache'})" in proc.stdout  # the real cache folder, named
    # the first copy's own undo still removes it
    rep = obs_registration.undo(cfg, check_running=False, repo=first)
    assert rep.ok and obs_config.script_entries(json.loads((cfg / "basic/scenes/Untitled.json").read_text())) == []
    assert not (cfg / obs_config.LEDGER_DIR).exists()


def test_config_example_and_uninstaller_name_the_real_cache_folder():
    text = (REPO / "config.example.yaml").read_text()
    assert "cache/ in this folder" not in text and "user cache folder" in text
    assert 'ctx.repo / "cache"' not in (REPO / "installer" / "bootstrap.py").read_text()


# --- 12: the doctor names the real cause --------------------------------------------------------


def test_doctor_names_missing_portaudio_and_a_file_in_the_cache_path(tmp_path):
    no_portaudio = shadow(tmp_path, "sounddevice", 'OSError("PortAudio library not found")')
    dev = cli("doctor", "--only", "devices", cwd=tmp_path, path=[no_portaudio])
    (line,) = [x for x in ours(dev) if x.startswith(("WARN", "FAIL", "OK"))]
    assert line.startswith("WARN  devices: ") and "no microphone support (the PortAudio library is missing)" in line
    assert "sudo apt install libportaudio2" in line and "Traceback" not in dev.stderr
    blocker = tmp_path / "a_file"
    blocker.write_text("a file where the cache folder should be\n")
    for folder, where in (
        (blocker, "the cache folder"),
        (blocker / "c", f"a folder of the cache path {blocker / 'c'}"),
    ):
        c = setup_checks.check_cache(setup_checks.DoctorOptions(cache_dir=folder))
        assert c.status == setup_checks.FAIL and c.detail == f"{blocker} is a file, where {where} should be", c.line()
        assert "move that file away" in c.advice and "STREAM_ANIMATOR_CACHE" in c.advice
    assert blocker.read_text() == "a file where the cache folder should be\n"
    ro = tmp_path / "ro"
    ro.mkdir()
    with read_only(ro):  # the folder cannot be made: the place it goes is named, not the folder
        c = setup_checks.check_cache(setup_checks.DoctorOptions(cache_dir=ro / "cache"))
    assert c.status == setup_checks.FAIL
    assert c.detail.startswith(f"the cache folder {ro / 'cache'} cannot be made in {ro} (")
    assert c.advice.startswith(f"make {ro} writable")


def test_installer_warns_about_portaudio_before_ready(tmp_path, monkeypatch, capsys):
    """The installer's import check on a venv whose PortAudio is missing: "Ready" comes with the
    warning that names it and its fix, not alone."""
    import test_installer as T

    no_portaudio = shadow(tmp_path, "sounddevice", 'OSError("PortAudio library not found")')
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = next((venv / "lib").glob("python3.*/site-packages"))
    dev_site = next(p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir())
    (site / "dev.pth").write_text(f"{no_portaudio}\n{dev_site}\n{REPO}\n")
    (venv / "bin" / "stream-animator").write_text("#!/bin/sh\n")
    ctx = T.bootstrap.Context(REPO, venv, False, "cpu", False, REPO / "models/manifest.json", REPO / "models", False)
    ctx.log_path = tmp_path / "install.log"
    ctx.versions = T.bootstrap.verify(ctx)
    T.bootstrap.report(ctx)
    out = capsys.readouterr().out
    warning = next(x for x in out.splitlines() if x.startswith("Warning: microphones"))
    assert "cannot import sounddevice: PortAudio library not found" in warning
    assert "sudo apt install libportaudio2" in warning
    assert "Ready (without microphone support, see the warning above): " in out
    assert out.index("Warning: microphones") < out.index("Ready")


# --- 13: ctl finds the running worker -----------------------------------------------------------


def ours_port(control: Path, pid: int) -> int:
    return json.loads((control / f"{pid}.json").read_text())["port"]


def test_ctl_finds_the_running_worker_and_says_which_when_there_are_two(tmp_path, monkeypatch):
    logs = tmp_path / "logs"
    env = dict(os.environ, STREAM_ANIMATOR_LOGS=str(logs), PYTHONPATH=str(REPO))
    for k in ("STREAM_ANIMATOR_TOKEN", "STREAM_ANIMATOR_CONTROL_PORT", "DISPLAY"):
        env.pop(k, None)
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "worker",
            "run",
            "--source",
            str(SAMPLE_DRIVER),
            "--output",
            "obs:0",
            "--duration",
            "90",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        control = logs / "control"
        deadline = time.monotonic() + 120
        while not list(control.glob("*.json")) and worker.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert list(control.glob("*.json")), worker.stderr.read() if worker.poll() is not None else "never ready"
        # a second worker's record (a live process), and a dead one's left by a kill -9
        started = endpoints._started(other.pid)
        (control / f"{other.pid}.json").write_text(
            json.dumps({"port": 9, "token": "t", "pid": other.pid, "started": started})
        )
        (control / "999999.json").write_text(json.dumps({"port": 8, "token": "t", "pid": 999999, "started": 1.0}))
        monkeypatch.setenv("STREAM_ANIMATOR_LOGS", str(logs))
        with pytest.raises(UserError) as e:
            ctl._running_worker(None, None)
        assert str(e.value) == (
            f"2 workers are running (pid {worker.pid} on port {ours_port(control, worker.pid)}, "
            f"pid {other.pid} on port 9): choose one with --port"
        )
        assert not (control / "999999.json").exists()  # a dead worker's record is cleared
        assert ctl._running_worker(9, None) == (9, "t")  # --port chooses; its token comes along
        other.kill()
        other.wait()
        r = cli("ctl", "status", "--json", cwd=tmp_path)  # the logs in tmp_path/logs, as the worker's
        assert r.returncode == 0 and json.loads(r.stdout)["running"] is True, r.stdout + r.stderr
        worker.terminate()
        worker.wait(60)
        assert list(control.glob("*.json")) == []  # a worker that stops removes its record
        with pytest.raises(UserError, match="^no running worker found .*pass --port and --token"):
            ctl._running_worker(None, None)
    finally:
        for p in (worker, other):
            if p.poll() is None:
                p.kill()
                p.wait()


# --- 16: the install resolves without backtracking ----------------------------------------------


def test_constraints_are_what_resolves_and_the_readme_states_the_measured_download():
    """Each bound in installer/constraints.txt is the release this environment resolved to (the
    installer's own install, Python 3.11+): a bound below would hold packages back, one above
    would let pip backtrack again. The README's sizes are the installer's."""
    import importlib.metadata as md

    import test_installer as T

    bounds = {}
    for line in (REPO / "installer" / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("<=")
            bounds[name.strip()] = version.strip()
    assert set(bounds) == {"jax", "jaxlib", "opencv-contrib-python", "ml-dtypes", "selenium"}
    if sys.version_info >= (3, 11):
        assert {n: md.version(n) for n in bounds} == bounds
    readme = " ".join((REPO / "README.md").read_text().split())
    mb = T.bootstrap.FIRST_DOWNLOAD_MB
    assert f"downloads about {mb['user']} MB, {mb['dev']} MB with `--dev`" in readme
