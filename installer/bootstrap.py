"""The installer's steps: virtual environment, packages, import check, models, next steps.

Each step is a function of the shared `Context`; `run()` calls them in order. A step that cannot
go on raises `InstallError` with one line for the user; `main()` prints it last, after pip's own
output, and exits non-zero. pip's full output goes to `<venv>/install.log`, which errors name.

Re-running is cheap: after a successful install a stamp file in the venv records what was
installed (a hash of pyproject.toml, the options, the Python); when nothing changed pip is not
run at all, but the imports are still checked.
"""

from __future__ import annotations

import argparse
import codecs
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath

import gpu_detect
import model_download
import pip_errors

REPO = Path(__file__).resolve().parent.parent
STAMP_NAME = "stream-animator-install.json"
STAMP_VERSION = 1  # bump when the install steps change in a way old venvs must redo
LOG_NAME = "install.log"
# what the first install downloads (measured: fresh venv, empty cache, `pip download` with the
# constraints, Linux x86-64, Python 3.11; README "Install" has the command and the numbers)
FIRST_DOWNLOAD_MB = {"user": 380, "dev": 520}
LOG_MAX_BYTES = 10_000_000
# pip learned editable installs from pyproject.toml alone (PEP 660) in 21.3; every supported
# Python's bundled pip is newer, so this upgrade (which needs the network) normally never runs.
MIN_PIP = (21, 3)
DEFAULT_INDEX = "https://pypi.org/simple"
# Imported in the venv to prove the install works; cv2 before mediapipe so that a missing system
# library is blamed on the module that needs it.
VERIFY_MODULES = ("numpy", "cv2", "mediapipe", "onnxruntime", "worker")
# Imported too, but the install works without them: what is missing is said next to "Ready".
OPTIONAL_MODULES = ("sounddevice",)
# the README's test command (and .ci/run's): the suite on two cores, each test file on one of them
TEST_ARGS = "pytest -q -n 2 --dist loadfile"
# Upper bounds that spare pip its backtracking through releases that need numpy 2 (see the file)
CONSTRAINTS = "installer/constraints.txt"
CONSOLE_SCRIPT = "stream-animator"


class InstallError(Exception):
    """A step failed; the message is the one line the user sees."""


@dataclass
class Context:
    repo: Path
    venv: Path
    dev: bool
    gpu_choice: str
    models: bool
    manifest: Path
    models_dir: Path
    force: bool
    windows: bool = os.name == "nt"
    runtime: str = "cpu"  # a key of gpu_detect.RUNTIMES, decided by choose_runtime()
    obs: bool = False  # register the OBS script afterwards (obs-setup)
    collection: str | None = None
    model_entries: list = field(default_factory=list)
    log_path: Path | None = None
    pip_ran: bool = False
    versions: dict = field(default_factory=dict)

    @property
    def python(self) -> Path:
        return venv_python(self.venv, self.windows)


# ---------------------------------------------------------------- paths and output


def venv_python(venv: Path, windows: bool | None = None) -> Path:
    """The venv's interpreter: `Scripts\\python.exe` on Windows, `bin/python` elsewhere."""
    windows = os.name == "nt" if windows is None else windows
    return venv / "Scripts" / "python.exe" if windows else venv / "bin" / "python"


def venv_script(venv: Path, name: str, windows: bool | None = None) -> Path:
    """A console script installed into the venv (`stream-animator`)."""
    windows = os.name == "nt" if windows is None else windows
    return venv / "Scripts" / f"{name}.exe" if windows else venv / "bin" / name


def shown(path: Path, windows: bool) -> str:
    """A path as the user should type it: relative when under the current folder."""
    try:
        rel = path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return str(path)
    if not rel.parts:
        return "."
    return str(PureWindowsPath(*rel.parts)) if windows else rel.as_posix()


def say(text: str) -> None:
    print(text, flush=True)


def _echo(text: str) -> None:
    """Pass pip's output through, even to a console that cannot show its progress-bar glyphs."""
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    sys.stdout.write(text.encode(encoding, "replace").decode(encoding, "replace"))
    sys.stdout.flush()


def log(ctx: Context, text: str) -> None:
    if ctx.log_path is not None:
        with ctx.log_path.open("a", encoding="utf-8", errors="replace") as f:
            f.write(text if text.endswith("\n") else text + "\n")


def _open_log(ctx: Context) -> None:
    """Start this run's section of the log (inside the venv once it exists)."""
    path = ctx.venv / LOG_NAME
    if path.is_file() and path.stat().st_size > LOG_MAX_BYTES:
        path.unlink()
    ctx.log_path = path
    log(
        ctx,
        f"\n===== install.py {time.strftime('%Y-%m-%d %H:%M:%S')} argv={sys.argv[1:]} python={sys.executable} =====",
    )


# ---------------------------------------------------------------- steps


def plan(ctx: Context) -> None:
    """Everything that can be checked before doing any work: options, manifest, GPU."""
    if ctx.models:
        try:
            entries = model_download.load_manifest(ctx.manifest)
            model_download.require_verifiable(entries, ctx.manifest)
            ctx.model_entries = model_download.downloadable(entries)
            skipped = [e.path for e in entries if e not in ctx.model_entries]
            if skipped:
                say(f"Skipping {len(skipped)} optional model files with no published SHA-256 yet ({skipped[0]}, ...)")
        except model_download.DownloadError as exc:
            raise InstallError(str(exc)) from None
    gpu = gpu_detect.detect_gpu()
    try:
        choice = gpu_detect.choose_runtime(ctx.gpu_choice, gpu)
    except gpu_detect.ChoiceError as exc:
        raise InstallError(str(exc)) from None
    ctx.runtime = choice.runtime
    say(f"ONNX Runtime build: {choice.package} ({choice.why})")


def venv_support_problem() -> str | None:
    """Why this Python cannot create a venv with pip (Debian/Ubuntu split `venv` off), or None."""
    missing = [m for m in ("venv", "ensurepip") if importlib.util.find_spec(m) is None]
    if not missing:
        return None
    ver = f"{sys.version_info[0]}.{sys.version_info[1]}"
    return (
        f"this Python ({sys.executable}) lacks the '{missing[-1]}' module needed to create a virtual "
        f"environment; on Debian/Ubuntu install it with: sudo apt install python{ver}-venv"
    )


def _probe_python(python: Path) -> tuple[int, int, int]:
    try:
        proc = subprocess.run(
            [str(python), "-I", "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InstallError(f"{python} does not start ({exc}); delete the venv folder and run again") from None
    if proc.returncode != 0:
        first = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise InstallError(f"{python} does not start ({first}); delete the venv folder and run again")
    return tuple(int(p) for p in proc.stdout.strip().split("."))  # type: ignore[return-value]


def ensure_venv(ctx: Context) -> None:
    """Use the venv if it is healthy; create it if it does not exist."""
    python = ctx.python
    if python.exists():
        version = _probe_python(python)
        if not ((3, 10) <= version[:2] < (3, 13)):
            raise InstallError(
                f"{ctx.venv} was made with Python {'.'.join(map(str, version))}, which is not supported; "
                "delete that folder and run the installer with Python 3.10-3.12"
            )
        _open_log(ctx)
        say(f"Using the virtual environment {shown(ctx.venv, ctx.windows)} (Python {'.'.join(map(str, version))})")
        return
    if ctx.venv.exists() and (not ctx.venv.is_dir() or any(ctx.venv.iterdir())):
        raise InstallError(
            f"{ctx.venv} exists but is not a virtual environment (no {python.relative_to(ctx.venv)}); "
            "move it away or pass --venv with another folder"
        )
    problem = venv_support_problem()
    if problem:
        raise InstallError(problem)
    say(f"Creating the virtual environment {shown(ctx.venv, ctx.windows)} (Python {sys.version.split()[0]})...")
    import venv  # imported here: venv_support_problem() has just checked that it exists

    created_dir = not ctx.venv.exists()
    try:
        venv.EnvBuilder(with_pip=True, symlinks=not ctx.windows).create(str(ctx.venv))
    except (subprocess.CalledProcessError, OSError) as exc:
        detail = getattr(exc, "output", None) or b""
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        fallback = Path(tempfile.gettempdir()) / "stream-animator-install.log"
        fallback.write_text(f"{exc}\n{detail}\n{traceback.format_exc()}", encoding="utf-8")
        if created_dir:
            shutil.rmtree(ctx.venv, ignore_errors=True)
        hint = ""
        if os.path.exists("/etc/debian_version"):
            hint = f"; on Debian/Ubuntu: sudo apt install python{sys.version_info[0]}.{sys.version_info[1]}-venv"
        raise InstallError(
            f"could not create the virtual environment {ctx.venv} ({exc.__class__.__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else 'no message'}){hint}; details in {fallback}"
        ) from None
    if not ctx.python.exists():
        raise InstallError(f"creating {ctx.venv} did not produce {ctx.python}")
    _open_log(ctx)


def _pip_version(ctx: Context) -> tuple[int, ...] | None:
    proc = subprocess.run(
        [str(ctx.python), "-m", "pip", "--version"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    m = re.match(r"pip (\d+)\.(\d+)", proc.stdout)
    return tuple(int(x) for x in m.groups()) if proc.returncode == 0 and m else None


def ensure_pip(ctx: Context) -> None:
    """Make sure the venv has a pip new enough for our install; upgrade only when it is not."""
    version = _pip_version(ctx)
    if version is None:
        say("The venv has no pip; adding it with ensurepip...")
        run_pip(ctx, [str(ctx.python), "-m", "ensurepip", "--upgrade", "--default-pip"], what="ensurepip")
        version = _pip_version(ctx)
        if version is None:
            raise InstallError(f"pip does not run in {ctx.venv} even after ensurepip; see {ctx.log_path}")
    if version < MIN_PIP:
        say(f"Upgrading pip {'.'.join(map(str, version))} (need >= {'.'.join(map(str, MIN_PIP))})...")
        run_pip(ctx, pip_cmd(ctx, "install", "--upgrade", "pip"))


def pip_cmd(ctx: Context, *args: str) -> list[str]:
    return [str(ctx.python), "-m", "pip", args[0], "--no-input", "--disable-pip-version-check", *args[1:]]


def run_pip(ctx: Context, cmd: list[str], what: str = "pip") -> str:
    """Run pip, showing its output live and copying it to the log; raise one line on failure."""
    ctx.pip_ran = True
    log(ctx, "$ " + " ".join(cmd))
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8", PIP_NO_INPUT="1")
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=ctx.repo
    )
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    parts: list[str] = []
    assert proc.stdout is not None
    assert ctx.log_path is not None
    with ctx.log_path.open("ab") as logf:
        while True:
            data = proc.stdout.read1(65536)
            if not data:
                break
            logf.write(data)
            text = decoder.decode(data)
            parts.append(text)
            _echo(text)
    code = proc.wait()
    output = "".join(parts) + decoder.decode(b"", final=True)
    if code != 0:
        log(ctx, f"[{what} exited with {code}]")
        m = re.search(r"Looking in indexes: ([^\s,]+)", output)
        index = m.group(1) if m else os.environ.get("PIP_INDEX_URL", DEFAULT_INDEX)
        unreachable = pip_errors.probe_index(index)
        log(ctx, f"[probe {index}: {unreachable or 'reachable'}]")
        raise InstallError(f"{pip_errors.explain(output, index, unreachable)} (pip's full output: {ctx.log_path})")
    return output


def _stamp(ctx: Context) -> dict:
    pyproject = ctx.repo / "pyproject.toml"
    return {
        "stamp": STAMP_VERSION,
        "pyproject_sha256": hashlib.sha256(pyproject.read_bytes()).hexdigest(),
        "constraints_sha256": hashlib.sha256((ctx.repo / CONSTRAINTS).read_bytes()).hexdigest(),
        "repo": str(ctx.repo),
        "dev": ctx.dev,
        "runtime": ctx.runtime,
        "python": ".".join(map(str, _probe_python(ctx.python))),
    }


def _stamp_path(ctx: Context) -> Path:
    return ctx.venv / STAMP_NAME


def packages_up_to_date(ctx: Context) -> bool:
    if ctx.force:
        return False
    try:
        return json.loads(_stamp_path(ctx).read_text(encoding="utf-8")) == _stamp(ctx)
    except (OSError, ValueError):
        return False


def write_stamp(ctx: Context) -> None:
    tmp = _stamp_path(ctx).with_suffix(".tmp")
    tmp.write_text(json.dumps(_stamp(ctx), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, _stamp_path(ctx))


def _installed(ctx: Context, dist: str) -> bool:
    code = (
        f"import importlib.metadata as m\ntry: m.version({dist!r})\nexcept m.PackageNotFoundError: raise SystemExit(1)"
    )
    return subprocess.run([str(ctx.python), "-I", "-c", code], stdin=subprocess.DEVNULL).returncode == 0


def installed_builds(ctx: Context) -> list[str]:
    return [d for d in gpu_detect.ALL_BUILDS if _installed(ctx, d)]


def install_packages(ctx: Context) -> None:
    """pip install -e the checkout (with [dev]), then leave exactly one ONNX Runtime build: the chosen one."""
    target = f"{ctx.repo}[dev]" if ctx.dev else str(ctx.repo)
    say(
        f"Installing {'the project and its dev tools' if ctx.dev else 'the project'} with pip "
        f"(the first time downloads about {FIRST_DOWNLOAD_MB['dev' if ctx.dev else 'user']} MB)..."
    )
    run_pip(ctx, pip_cmd(ctx, "install", "-c", str(ctx.repo / CONSTRAINTS), "-e", target))
    # Every build provides the `onnxruntime` module; two side by side overwrite each other's files
    # and the GPU goes silently unused. The project depends on `onnxruntime`, so pip has just
    # (re)installed the CPU build: remove every other build first, then install the chosen one.
    keep = gpu_detect.RUNTIMES[ctx.runtime][1]
    had_kept = _installed(ctx, keep)
    remove = gpu_detect.builds_to_remove(ctx.runtime, installed_builds(ctx))
    if remove:
        say(f"Removing {', '.join(remove)} (only one ONNX Runtime build may be installed)")
        run_pip(ctx, pip_cmd(ctx, "uninstall", "-y", *remove))
    if keep != "onnxruntime":
        run_pip(
            ctx, pip_cmd(ctx, "install", "-c", str(ctx.repo / CONSTRAINTS), gpu_detect.runtime_package(ctx.runtime))
        )
    if had_kept and remove:
        # uninstalling the other build deleted files the two share: put the kept build's back
        run_pip(ctx, pip_cmd(ctx, "install", "--force-reinstall", "--no-deps", keep))


_PROBE = r"""
import importlib, json, sys
result = {"python": "%d.%d.%d" % sys.version_info[:3], "ok": {}, "failed": {}}
for name in sys.argv[1:]:
    try:
        mod = importlib.import_module(name)
        result["ok"][name] = str(getattr(mod, "__version__", "") or "")
    except BaseException as exc:
        result["failed"][name] = "%s: %s" % (type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
import importlib.metadata as md
result["builds"] = []
for dist in ("onnxruntime", "onnxruntime-gpu", "onnxruntime-directml"):
    try:
        md.version(dist)
        result["builds"].append(dist)
    except md.PackageNotFoundError:
        pass
if "onnxruntime" in result["ok"]:
    result["providers"] = importlib.import_module("onnxruntime").get_available_providers()
if "worker" in result["ok"]:
    result["worker_file"] = importlib.import_module("worker").__file__
print("PROBE-RESULT " + json.dumps(result))
"""


def _import_hints(ctx: Context):
    """The worker's table of import failures and their fixes (stdlib only), loaded by path: the
    installer runs before the worker is importable, and one table serves both."""
    path = ctx.repo / "worker" / "setup" / "import_hints.py"
    spec = importlib.util.spec_from_file_location("_stream_animator_import_hints", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def verify(ctx: Context) -> dict:
    """Import the key modules in the venv's Python (a fresh process, isolated from this folder)."""
    try:
        proc = subprocess.run(
            [str(ctx.python), "-I", "-c", _PROBE, *VERIFY_MODULES, *OPTIONAL_MODULES],
            capture_output=True,
            text=True,
            timeout=600,
            stdin=subprocess.DEVNULL,
            cwd=ctx.venv,
        )
    except subprocess.TimeoutExpired:
        raise InstallError(f"importing {', '.join(VERIFY_MODULES)} in {ctx.python} took over 10 minutes") from None
    log(ctx, f"[verify] exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    line = next((x for x in proc.stdout.splitlines() if x.startswith("PROBE-RESULT ")), None)
    if line is None:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise InstallError(f"the venv's Python crashed while importing the packages ({last}); see {ctx.log_path}")
    result = json.loads(line[len("PROBE-RESULT ") :])
    hints = _import_hints(ctx)
    result["optional_failed"] = {m: result["failed"].pop(m) for m in OPTIONAL_MODULES if m in result["failed"]}
    if result["failed"]:
        name, error = next(iter(result["failed"].items()))
        hint = hints.hint(error) or f"see {ctx.log_path}"
        raise _VerifyFailed(f"installed, but the venv's Python cannot import {name} ({error}); {hint}")
    worker_file = Path(result.get("worker_file", ""))
    if ctx.repo.resolve() not in worker_file.resolve().parents:
        raise _VerifyFailed(
            f"the venv's `worker` package comes from {worker_file}, not this checkout ({ctx.repo}); "
            "run with --force to reinstall it from here"
        )
    keep, provider = gpu_detect.RUNTIMES[ctx.runtime][1:]
    if result.get("builds") != [keep]:
        raise _VerifyFailed(
            f"ONNX Runtime builds installed: {', '.join(result.get('builds') or ['none'])}; exactly {keep} "
            "should be (two side by side leave the GPU unused); run with --force"
        )
    if provider not in result.get("providers", []) and ctx.runtime == "coreml":
        say("note: this ONNX Runtime build offers no CoreML provider on this Mac; the CPU is used")
    elif provider not in result.get("providers", []):
        raise _VerifyFailed(
            f"{keep} is installed but offers no {provider} "
            f"(providers: {', '.join(result.get('providers', []))}); update the GPU driver or use --gpu cpu"
        )
    script = venv_script(ctx.venv, CONSOLE_SCRIPT, ctx.windows)
    if not script.exists():
        raise _VerifyFailed(f"the `{CONSOLE_SCRIPT}` command was not installed ({script} is missing)")
    return result


class _VerifyFailed(InstallError):
    pass


def install_and_verify(ctx: Context) -> None:
    if packages_up_to_date(ctx):
        try:
            ctx.versions = verify(ctx)
        except _VerifyFailed as exc:
            # Something was removed or broken since the last install: repair it once.
            say(f"The last install looks damaged ({exc}); reinstalling...")
        else:
            say("Nothing to do: the packages are up to date (pyproject.toml and options unchanged); imports verified.")
            return
    ensure_pip(ctx)
    install_packages(ctx)
    say("Checking that everything imports...")
    ctx.versions = verify(ctx)
    write_stamp(ctx)


def download_models(ctx: Context) -> None:
    if not ctx.models:
        return
    total = sum(e.size or 0 for e in ctx.model_entries)
    say(
        f"Downloading {len(ctx.model_entries)} model files ({total / 1e6:.0f} MB) into "
        f"{shown(ctx.models_dir, ctx.windows)}..."
    )
    try:
        model_download.download_all(ctx.model_entries, ctx.models_dir)
    except model_download.DownloadError as exc:
        raise InstallError(str(exc)) from None


def next_steps(ctx: Context) -> list[str]:
    """The commands to run next, spelled for this platform and venv location."""
    cli = shown(venv_script(ctx.venv, CONSOLE_SCRIPT, ctx.windows), ctx.windows)
    if cli.endswith(".exe"):
        cli = cli[: -len(".exe")]
    python = shown(ctx.python, ctx.windows)
    launcher = "py" if ctx.windows else "python3"
    installer = "installer\\install.py" if ctx.windows else "installer/install.py"
    lines = [f"  animate the sample character:  {cli} demo"]
    if not ctx.obs:
        lines.append(f"  add it to OBS (close OBS):     {cli} obs-setup")
    lines.append(f"  check the whole setup:         {cli} doctor")
    if ctx.dev:
        lines.append(f"  run the tests:                 {python} -m {TEST_ARGS}")
    else:
        lines.append(f"  run the tests:                 {launcher} {installer} --dev && {python} -m {TEST_ARGS}")
    lines.append(f"  all commands:                  {cli} --help")
    return lines


def report(ctx: Context) -> None:
    v = ctx.versions
    ok = v.get("ok", {})
    labels = {"numpy": "numpy", "cv2": "opencv", "mediapipe": "mediapipe", "onnxruntime": "onnxruntime"}
    parts = [f"{label} {ok[name]}" for name, label in labels.items() if ok.get(name)]
    providers = [p.replace("ExecutionProvider", "") for p in v.get("providers", [])]
    for name, error in v.get("optional_failed", {}).items():
        line = _import_hints(ctx).explain(name, error.partition(": ")[2] or error)
        what = "microphones (lip sync from your voice) will not work" if name == "sounddevice" else f"{name} is missing"
        say(f"Warning: {what}: {line}")
    missing = " (without microphone support, see the warning above)" if v.get("optional_failed") else ""
    say(
        f"Ready{missing}: {shown(ctx.venv, ctx.windows)} (Python {v.get('python', '?')}; {', '.join(parts)}; "
        f"ONNX Runtime providers: {', '.join(providers)})"
    )
    say("Next:")
    for line in next_steps(ctx):
        say(line)


def _run_worker(ctx: Context, *args: str) -> subprocess.CompletedProcess:
    """`<venv python> -m worker ARGS` from the checkout, output shown and logged."""
    cmd = [str(ctx.python), "-m", "worker", *args]
    log(ctx, "$ " + " ".join(cmd))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    proc = subprocess.run(
        cmd, capture_output=True, text=True, cwd=ctx.repo, env=env, stdin=subprocess.DEVNULL, timeout=600
    )
    log(ctx, proc.stdout + proc.stderr)
    for line in proc.stdout.splitlines():
        say("  " + line)
    return proc


def setup_obs(ctx: Context) -> None:
    """--obs: register the OBS script in OBS's scene collection (stream-animator obs-setup)."""
    if not ctx.obs:
        return
    say("Adding the script to OBS (obs-setup)...")
    args = ["obs-setup"] + (["--collection", ctx.collection] if ctx.collection else [])
    proc = _run_worker(ctx, *args)
    if proc.returncode != 0:
        line = (proc.stderr.strip().splitlines() or ["no message"])[-1].removeprefix("error: ")
        cli = shown(venv_script(ctx.venv, CONSOLE_SCRIPT, ctx.windows), ctx.windows)
        raise InstallError(f"installed, but OBS was not set up: {line} (then run `{cli} obs-setup`)")


STEPS = (plan, ensure_venv, install_and_verify, download_models, setup_obs, report)


def run(ctx: Context) -> None:
    for step in STEPS:
        step(ctx)


def _cache_folder(ctx: Context) -> str:
    """The folder the worker keeps prepared characters in (the user cache folder, or
    $STREAM_ANIMATOR_CACHE), as this venv's worker computes it."""
    code = "from worker.paths import default_cache_dir; print(default_cache_dir())"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    try:
        proc = subprocess.run(
            [str(ctx.python), "-c", code], capture_output=True, text=True, cwd=ctx.repo, env=env, timeout=120
        )
    except (OSError, subprocess.TimeoutExpired):
        proc = None
    if proc is not None and proc.returncode == 0 and proc.stdout.strip():
        return proc.stdout.strip()
    return "your user cache folder, `stream-animator cache` shows it"


def uninstall(ctx: Context) -> None:
    """Remove the OBS registration (obs-setup --undo) and the venv; characters, cache and config stay."""
    if not (ctx.venv / "pyvenv.cfg").is_file():
        if ctx.venv.exists():
            raise InstallError(f"{ctx.venv} is not a virtual environment (no pyvenv.cfg); not removing it")
        say(
            f"No virtual environment at {shown(ctx.venv, ctx.windows)}: nothing to remove "
            "(if OBS still lists the script, remove it in Tools -> Scripts)"
        )
        return
    _open_log(ctx)
    cache = _cache_folder(ctx)  # asked before the venv (and platformdirs in it) goes
    say("Removing the script from OBS (obs-setup --undo)...")
    proc = _run_worker(ctx, "obs-setup", "--undo")
    if proc.returncode != 0:
        line = (proc.stderr.strip().splitlines() or ["no message"])[-1].removeprefix("error: ")
        if "OBS's configuration was not found" not in line:
            raise InstallError(f"OBS was left as it is and nothing was removed: {line}")
        say("  OBS is not set up on this machine: nothing to undo there")
    say(f"Removing {shown(ctx.venv, ctx.windows)}...")
    ctx.log_path = None  # the log lives in the venv
    shutil.rmtree(ctx.venv)
    say(f"Removed. Kept: your characters, the settings in OBS's other collections, and the cache ({cache})")


# ---------------------------------------------------------------- command line


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="install.py",
        description="Install Stream Motion Animator into a virtual environment (idempotent).",
    )
    p.add_argument("--venv", type=Path, default=REPO / ".venv", help="where to create the venv (default: .venv)")
    p.add_argument("--dev", action="store_true", help="also install the test and lint tools ([dev] extra)")
    p.add_argument(
        "--gpu",
        choices=gpu_detect.GPU_CHOICES,
        default="auto",
        help="ONNX Runtime build: auto (NVIDIA: cuda; Windows AMD/Intel: dml; macOS: coreml; else cpu), or force one",
    )
    p.add_argument("--obs", action="store_true", help="also add the script to OBS (close OBS first)")
    p.add_argument("--collection", help="with --obs: the OBS scene collection (default: the current one)")
    p.add_argument(
        "--uninstall", action="store_true", help="remove the OBS registration and the venv (keeps your characters)"
    )
    p.add_argument(
        "--models", action="store_true", help="also download the model weights listed in models/manifest.json"
    )
    p.add_argument("--manifest", type=Path, default=REPO / "models" / "manifest.json", help=argparse.SUPPRESS)
    p.add_argument("--models-dir", type=Path, default=REPO / "models", help=argparse.SUPPRESS)
    p.add_argument("--force", action="store_true", help="run pip even if nothing changed since the last install")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    ctx = Context(
        repo=REPO,
        venv=args.venv.expanduser().absolute(),
        dev=args.dev,
        gpu_choice=args.gpu,
        models=args.models,
        manifest=args.manifest.expanduser().absolute(),
        models_dir=args.models_dir.expanduser().absolute(),
        force=args.force,
        obs=args.obs,
        collection=args.collection,
    )
    try:
        if args.uninstall:
            uninstall(ctx)
        else:
            run(ctx)
    except InstallError as exc:
        return _fail(str(exc), 1)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except Exception as exc:  # a bug in the installer: one line here, the traceback in the log
        where = ctx.log_path or Path(tempfile.gettempdir()) / "stream-animator-install.log"
        with where.open("a", encoding="utf-8") as f:
            f.write(traceback.format_exc())
        return _fail(f"unexpected {type(exc).__name__}: {exc} (traceback in {where})", 1)
    return 0


def _fail(message: str, code: int) -> int:
    sys.stdout.flush()
    sys.stderr.write(f"install.py: error: {message}\n")
    sys.stderr.flush()
    return code
