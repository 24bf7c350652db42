"""The one-command installer: a real install into a temporary venv, its failure lines, the model
downloader against a local HTTP server, GPU detection, and README/CI agreement.

The real install runs once per session (about a minute from the local pip cache); every other
test either reuses that venv or fails before pip starts.
"""

from __future__ import annotations

import hashlib
import http.server
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
INSTALLER = REPO / "installer"
INSTALL_PY = INSTALLER / "install.py"


def _load(name: str):
    """Import an installer module by path (the installer is scripts, not a package)."""
    if str(INSTALLER) not in sys.path:
        sys.path.insert(0, str(INSTALLER))
    spec = importlib.util.spec_from_file_location(f"_installer_{name}", INSTALLER / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


install = _load("install")
bootstrap = _load("bootstrap")
model_download = _load("model_download")
gpu_detect = _load("gpu_detect")
pip_errors = _load("pip_errors")


def run_installer(*args: str, env: dict | None = None, python: str = sys.executable, timeout: float = 900):
    return subprocess.run(
        [python, str(INSTALL_PY), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        cwd=REPO,
    )


def assert_one_line_failure(proc: subprocess.CompletedProcess, *needles: str) -> str:
    """Non-zero exit, exactly one line on stderr, no traceback; returns that line."""
    assert proc.returncode != 0, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    line = lines[0]
    assert line.startswith("install.py: error: "), line
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in line, line
    return line


def isolated_pip_env(**extra: str) -> dict:
    """The environment with this machine's pip configuration (mirrors, wheel folders) removed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", **extra)
    return env


# ---------------------------------------------------------------- local HTTP servers


class _Files(http.server.BaseHTTPRequestHandler):
    """Serves `server.files` with optional Range support and an optional cut-off mid-body."""

    def log_message(self, *args):  # keep test output clean
        pass

    def do_HEAD(self):  # noqa: N802 - http.server's naming
        self._respond(body=False)

    def do_GET(self):  # noqa: N802
        self._respond(body=True)

    def _respond(self, body: bool) -> None:
        srv = self.server
        srv.requests.append((self.command, self.path, self.headers.get("Range")))
        if srv.simple_index:  # an empty PEP 503 index: every project exists with no files
            page = b"<!DOCTYPE html><html><body></body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            if body:
                self.wfile.write(page)
            return
        data = srv.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start = 0
        rng = self.headers.get("Range")
        if rng and srv.honor_range:
            m = re.fullmatch(r"bytes=(\d+)-", rng)
            start = int(m.group(1))
            if start >= len(data):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.send_header("Accept-Ranges", "bytes" if srv.honor_range else "none")
        self.end_headers()
        if not body:
            return
        payload = data[start:]
        if srv.cut_after is not None:
            payload, srv.cut_after = payload[: srv.cut_after], None  # only the first response is cut
            self.wfile.write(payload)
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(payload)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that stops reading (the downloader refusing a size, pip giving up) is expected.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@pytest.fixture
def http_server():
    srv = _Server(("127.0.0.1", 0), _Files)
    srv.files, srv.requests = {}, []
    srv.honor_range, srv.cut_after, srv.simple_index = True, None, False
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    yield srv
    srv.shutdown()
    srv.server_close()


PAYLOAD = os.urandom(3 * 1024 * 1024 + 123)
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


def _entry(srv, path="lp/model.onnx", size=None, sha=PAYLOAD_SHA):
    srv.files["/files/model.onnx"] = PAYLOAD
    size = len(PAYLOAD) if size is None else size
    return model_download.ModelEntry(path=path, url=srv.url + "/files/model.onnx", size=size, sha256=sha)


# ---------------------------------------------------------------- Python version


@pytest.mark.parametrize("version", [(3, 10, 0), (3, 11, 7), (3, 12, 9)])
def test_supported_pythons_pass(version):
    assert install.python_version_problem(version) is None


@pytest.mark.parametrize(
    ("version", "needle"),
    [((2, 7, 18), "2.7.18 is too old"), ((3, 9, 18), "3.9.18 is too old"), ((3, 13, 0), "3.13.0 is too new")],
)
def test_unsupported_pythons_named(version, needle):
    problem = install.python_version_problem(version)
    assert needle in problem and "3.10, 3.11 or 3.12" in problem
    assert "\n" not in problem


def _pyenv_python(version: str) -> str | None:
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found = sorted(root.glob(f"{version}*/bin/python{version}")) if root.is_dir() else []
    return str(found[0]) if found else shutil.which(f"python{version}")


@pytest.mark.parametrize("version", ["2.7", "3.9", "3.13"])
def test_real_unsupported_interpreter_gets_one_line(version, tmp_path):
    python = _pyenv_python(version)
    if python is None:
        pytest.skip(f"no Python {version} on this machine (the version check itself is tested above)")
    proc = run_installer("--venv", str(tmp_path / "v"), python=python, timeout=60)
    assert_one_line_failure(proc, f"Python {version}.", "needs Python 3.10, 3.11 or 3.12")
    assert proc.returncode == 2
    assert not (tmp_path / "v").exists()


# ---------------------------------------------------------------- venv problems (no pip involved)


def test_missing_ensurepip_names_the_debian_package(tmp_path):
    # sys.modules[name] = None is how the import system marks a module as absent: find_spec()
    # then reports it missing exactly as on Debian without python3.X-venv.
    code = (
        "import runpy, sys; sys.modules['ensurepip'] = None; "
        f"sys.argv = ['install.py', '--venv', {str(tmp_path / 'v')!r}]; "
        f"runpy.run_path({str(INSTALL_PY)!r}, run_name='__main__')"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    ver = f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert_one_line_failure(proc, "lacks the 'ensurepip' module", f"sudo apt install python{ver}-venv")
    assert not (tmp_path / "v").exists()


def test_folder_that_is_not_a_venv_is_left_alone(tmp_path):
    target = tmp_path / "notavenv"
    target.mkdir()
    (target / "precious.txt").write_text("keep me")
    proc = run_installer("--venv", str(target), timeout=120)
    assert_one_line_failure(proc, "is not a virtual environment")
    assert (target / "precious.txt").read_text() == "keep me"


def test_venv_of_unsupported_python_is_refused(tmp_path):
    python = _pyenv_python("3.13")
    if python is None:
        pytest.skip("no Python 3.13 on this machine to build such a venv")
    subprocess.run([python, "-m", "venv", "--without-pip", str(tmp_path / "v")], check=True, timeout=120)
    proc = run_installer("--venv", str(tmp_path / "v"), timeout=120)
    assert_one_line_failure(proc, "was made with Python 3.13", "delete that folder")


# ---------------------------------------------------------------- pip failures (real pip)


@pytest.fixture(scope="module")
def bare_venv(tmp_path_factory):
    """A venv with only pip: the installer adopts it and runs pip, which fails in these tests."""
    venv = tmp_path_factory.mktemp("bare") / "v"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300, stdin=subprocess.DEVNULL)
    return venv


def test_unreachable_index_with_retries_reports_network(bare_venv):
    # One retry makes pip print urllib3's connection error inside the build-dependency output.
    env = isolated_pip_env(PIP_INDEX_URL="http://127.0.0.1:9/simple", PIP_RETRIES="1", PIP_TIMEOUT="5")
    proc = run_installer("--venv", str(bare_venv), env=env, timeout=300)
    line = assert_one_line_failure(proc, "cannot reach the package index http://127.0.0.1:9/simple", "install.log")
    assert "Connection refused" in line
    assert "Installing build dependencies" in proc.stdout  # pip's own progress was shown
    log = (bare_venv / "install.log").read_text()
    assert "No matching distribution found for setuptools" in log


def test_unreachable_index_without_retries_is_found_by_probing(bare_venv):
    # Without retries pip says only "from versions: none"; the installer asks the index itself.
    env = isolated_pip_env(PIP_INDEX_URL="http://127.0.0.1:9/simple", PIP_RETRIES="0", PIP_TIMEOUT="5")
    proc = run_installer("--venv", str(bare_venv), env=env, timeout=300)
    assert "NewConnectionError" not in proc.stdout  # the signature really is absent here
    assert_one_line_failure(proc, "cannot reach the package index", "Connection refused")


def test_package_that_cannot_be_installed_is_named(bare_venv, http_server):
    # A reachable index that has no files at all: the first thing pip needs (the build backend)
    # cannot be installed, and the line names it.
    http_server.simple_index = True
    env = isolated_pip_env(PIP_INDEX_URL=http_server.url + "/simple", PIP_RETRIES="0")
    proc = run_installer("--venv", str(bare_venv), env=env, timeout=300)
    assert_one_line_failure(proc, "pip could not install setuptools>=68", "no version of it is available")
    assert any(path.startswith("/simple/setuptools") for _, path, _ in http_server.requests)


@pytest.mark.parametrize(
    ("output", "needle"),
    [
        (
            "  Building wheel for dlib (pyproject.toml) did not run successfully.\nERROR: Failed building wheel "
            "for dlib\nERROR: Could not build wheels for dlib, which is required to install",
            "could not build dlib",
        ),
        (
            "ERROR: Cannot install mediapipe==0.10.21 and numpy==2.1 because these package versions have "
            "conflicting dependencies.\nERROR: ResolutionImpossible",
            "mediapipe==0.10.21 and numpy==2.1",
        ),
        (
            "ERROR: Could not install packages due to an OSError: [Errno 28] No space left on device",
            "No space left on device",
        ),
        (
            "ERROR: Ignored the following versions that require a different python version: 0.10.21 Requires-Python "
            ">=3.9,<3.13\nERROR: Could not find a version that satisfies the requirement mediapipe==0.10.21 "
            "(from versions: none)",
            "mediapipe==0.10.21",
        ),
    ],
)
def test_pip_output_is_explained_in_one_line(output, needle):
    line = pip_errors.explain(output, "https://pypi.org/simple")
    assert needle in line and "\n" not in line


# ---------------------------------------------------------------- the real install (once)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """One real install into a temporary venv, with this machine's normal pip configuration."""
    venv = tmp_path_factory.mktemp("install") / ".venv"
    start = time.monotonic()
    proc = run_installer("--venv", str(venv))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    return venv, proc, time.monotonic() - start


def _site_packages_snapshot(venv: Path) -> dict[str, int]:
    site = next((venv / "lib").glob("python3.*/site-packages"))
    return {p.name: p.stat().st_mtime_ns for p in site.iterdir()}


@pytest.mark.slow
def test_real_install_works(installed):
    venv, proc, _ = installed
    assert "Installing the project with pip" in proc.stdout
    # "Ready (without microphone support ...):" where PortAudio is missing (this CI machine has none)
    assert re.search(r"^Ready( \(without microphone support[^)]*\))?: ", proc.stdout, re.M), proc.stdout
    assert "mediapipe 0.10.21" in proc.stdout
    assert f"{venv}/bin/stream-animator demo" in proc.stdout  # the next step is printed
    stamp = json.loads((venv / bootstrap.STAMP_NAME).read_text())
    assert stamp["runtime"] == "cpu" and stamp["dev"] is False and stamp["repo"] == str(REPO)
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-I", "-c", "import worker, cv2, mediapipe; print(worker.__file__)"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=venv,
    )
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip()).resolve().is_relative_to(REPO)  # editable: this checkout


@pytest.mark.slow
def test_second_run_changes_nothing(installed):
    venv, _, first_seconds = installed
    before = _site_packages_snapshot(venv)
    stamp_before = (venv / bootstrap.STAMP_NAME).read_bytes()
    start = time.monotonic()
    proc = run_installer("--venv", str(venv), timeout=300)
    seconds = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr
    assert "Nothing to do" in proc.stdout
    assert "Looking in indexes" not in proc.stdout and "Collecting" not in proc.stdout  # pip never ran
    assert _site_packages_snapshot(venv) == before
    assert (venv / bootstrap.STAMP_NAME).read_bytes() == stamp_before
    assert seconds < max(30.0, first_seconds / 2), (seconds, first_seconds)


@pytest.mark.slow
def test_models_step_downloads_into_place(installed, http_server, tmp_path):
    venv, _, _ = installed
    entry = _entry(http_server)
    manifest = tmp_path / "manifest.json"
    manifest.write_text(
        json.dumps(
            {
                "format": 1,
                "models": [{"path": entry.path, "url": entry.url, "size": entry.size, "sha256": entry.sha256}],
            }
        )
    )
    models = tmp_path / "models"
    args = ("--venv", str(venv), "--models", "--manifest", str(manifest), "--models-dir", str(models))
    proc = run_installer(*args, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (models / "lp" / "model.onnx").read_bytes() == PAYLOAD
    assert "lp/model.onnx" in proc.stdout and "100%" in proc.stdout  # progress was shown
    again = run_installer(*args, timeout=300)
    assert again.returncode == 0 and "already present and verified" in again.stdout


# ---------------------------------------------------------------- model downloader


def test_download_then_present(http_server, tmp_path):
    entry = _entry(http_server)
    assert model_download.download(entry, tmp_path, io.StringIO()) == "downloaded"
    assert (tmp_path / "lp" / "model.onnx").read_bytes() == PAYLOAD
    assert not (tmp_path / "lp" / "model.onnx.part").exists()
    n = len(http_server.requests)
    assert model_download.download(entry, tmp_path, io.StringIO()) == "present"
    assert len(http_server.requests) == n  # verified locally, nothing fetched


def test_interrupted_download_resumes_with_range(http_server, tmp_path):
    entry = _entry(http_server)
    http_server.cut_after = 1024 * 1024 + 7  # the server hangs up after ~1 MB
    with pytest.raises(model_download.DownloadError, match="run again to resume") as err:
        model_download.download(entry, tmp_path, io.StringIO())
    assert "\n" not in str(err.value)
    part = tmp_path / "lp" / "model.onnx.part"
    assert part.stat().st_size == 1024 * 1024 + 7 and not (tmp_path / "lp" / "model.onnx").exists()
    assert model_download.download(entry, tmp_path, io.StringIO()) == "resumed"
    assert http_server.requests[-1][2] == f"bytes={1024 * 1024 + 7}-"
    assert (tmp_path / "lp" / "model.onnx").read_bytes() == PAYLOAD and not part.exists()


def test_server_without_range_support_starts_over(http_server, tmp_path):
    entry = _entry(http_server)
    http_server.honor_range = False
    part = tmp_path / "lp" / "model.onnx.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"stale bytes from some other file")
    assert model_download.download(entry, tmp_path, io.StringIO()) == "downloaded"
    assert (tmp_path / "lp" / "model.onnx").read_bytes() == PAYLOAD


def test_hash_mismatch_discards_the_download(http_server, tmp_path):
    entry = _entry(http_server, sha="0" * 64)
    with pytest.raises(model_download.DownloadError, match="SHA-256 mismatch") as err:
        model_download.download(entry, tmp_path, io.StringIO())
    assert PAYLOAD_SHA in str(err.value) and "\n" not in str(err.value)
    assert not list((tmp_path / "lp").iterdir())  # neither the file nor a .part is left


def test_size_mismatch_is_refused_before_downloading(http_server, tmp_path):
    entry = _entry(http_server, size=len(PAYLOAD) + 1)
    with pytest.raises(model_download.DownloadError, match="manifest expects"):
        model_download.download(entry, tmp_path, io.StringIO())
    assert not (tmp_path / "lp" / "model.onnx").exists()


def test_http_error_is_one_line(http_server, tmp_path):
    entry = model_download.ModelEntry("x.onnx", http_server.url + "/missing.onnx", 10, "a" * 64)
    with pytest.raises(model_download.DownloadError, match="HTTP 404"):
        model_download.download(entry, tmp_path, io.StringIO())


def test_repository_manifest_is_valid_but_refused_without_hashes(tmp_path):
    manifest = REPO / "models" / "manifest.json"
    entries = [e for e in model_download.load_manifest(manifest) if not e.optional]
    assert {e.path for e in entries} >= {"liveportrait/motion_extractor.onnx", "liveportrait/warping_spade.onnx"}
    assert all(e.url.startswith("https://github.com/visomaster/visomaster-assets/releases/") for e in entries)
    if all(e.sha256 for e in entries):
        return  # hashes were filled in: nothing to refuse
    proc = run_installer("--models", "--venv", str(tmp_path / "v"), timeout=60)
    assert_one_line_failure(proc, "has no sha256", "refusing to download")
    assert not (tmp_path / "v").exists()  # refused before any work


@pytest.mark.parametrize(
    ("item", "needle"),
    [
        ({"path": "../evil.onnx", "url": "https://x/y", "size": 1, "sha256": None}, "relative path"),
        ({"path": "a.onnx", "url": "file:///etc/passwd", "size": 1, "sha256": None}, "'url' must be"),
        ({"path": "a.onnx", "url": "https://x/y", "size": -3, "sha256": None}, "'size' must be"),
        ({"path": "a.onnx", "url": "https://x/y", "size": 1, "sha256": "ABC"}, "'sha256' must be"),
    ],
)
def test_bad_manifest_entries_are_named(tmp_path, item, needle):
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"format": 1, "models": [item]}))
    with pytest.raises(model_download.DownloadError, match=re.escape(needle)):
        model_download.load_manifest(manifest)


# ---------------------------------------------------------------- GPU detection, platform paths


def _fake_smi(folder: Path, script: str) -> str:
    smi = folder / "nvidia-smi"
    smi.write_text("#!/bin/sh\n" + script)
    smi.chmod(0o755)
    return str(folder)


@pytest.mark.skipif(os.name == "nt", reason="uses a shell script as nvidia-smi")
def test_gpu_detection(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    none = gpu_detect.detect_gpu(search_path=str(empty))
    assert not none.found and "nvidia-smi not found" in none.reason
    assert gpu_detect.choose_runtime("auto", none, "linux").runtime == "cpu"

    ok = tmp_path / "ok"
    ok.mkdir()
    found = gpu_detect.detect_gpu(search_path=_fake_smi(ok, 'echo "NVIDIA GeForce RTX 3060, 550.54.14"\n'))
    assert found.names == ("NVIDIA GeForce RTX 3060",) and found.driver == "550.54.14"
    assert gpu_detect.choose_runtime("auto", found, "linux").runtime == "cuda"
    assert gpu_detect.runtime_package("cuda") == "onnxruntime-gpu[cuda,cudnn]"
    assert gpu_detect.choose_runtime("cpu", found, "linux").runtime == "cpu"

    broken = tmp_path / "broken"
    broken.mkdir()
    script = 'echo "NVIDIA-SMI has failed because it couldn\'t communicate with the NVIDIA driver."; exit 9\n'
    failed = gpu_detect.detect_gpu(search_path=_fake_smi(broken, script))
    assert not failed.found and "couldn't communicate" in failed.reason


NVIDIA = gpu_detect.GpuInfo(names=("NVIDIA GeForce RTX 4070",), driver="560.94", adapters=("NVIDIA GeForce RTX 4070",))
AMD = gpu_detect.GpuInfo(reason="nvidia-smi not found (no NVIDIA driver)", adapters=("AMD Radeon RX 7800 XT",))
INTEL = gpu_detect.GpuInfo(reason="nvidia-smi not found (no NVIDIA driver)", adapters=("Intel(R) Arc(TM) A770",))
NONE = gpu_detect.GpuInfo(reason="nvidia-smi not found (no NVIDIA driver)")
APPLE = gpu_detect.GpuInfo(reason="macOS has no CUDA", adapters=("Apple silicon",))


@pytest.mark.parametrize(
    ("gpu", "plat", "runtime", "package", "why"),
    [
        (NVIDIA, "win32", "cuda", "onnxruntime-gpu[cuda,cudnn]", "NVIDIA GPU NVIDIA GeForce RTX 4070 (driver 560.94)"),
        (NVIDIA, "linux", "cuda", "onnxruntime-gpu[cuda,cudnn]", "NVIDIA GPU"),
        (AMD, "win32", "dml", "onnxruntime-directml", "AMD Radeon RX 7800 XT: DirectML"),
        (INTEL, "win32", "dml", "onnxruntime-directml", "Intel(R) Arc(TM) A770: DirectML"),
        (AMD, "linux", "cpu", "onnxruntime", "no accelerated ONNX Runtime build for it on Linux"),
        (NONE, "win32", "cpu", "onnxruntime", "no GPU to use (nvidia-smi not found"),
        (NONE, "linux", "cpu", "onnxruntime", "no GPU to use"),
        (APPLE, "darwin", "coreml", "onnxruntime", "CoreML"),
        (NVIDIA, "darwin", "coreml", "onnxruntime", "CoreML"),  # an eGPU on an old Mac: still no CUDA
    ],
)
def test_runtime_choice_per_vendor_and_os(gpu, plat, runtime, package, why):
    choice = gpu_detect.choose_runtime("auto", gpu, plat)
    assert (choice.runtime, choice.package) == (runtime, package)
    assert why in choice.why


@pytest.mark.parametrize(
    ("choice", "plat", "needle"),
    [
        ("cuda", "darwin", "CUDA is not available on macOS"),
        ("dml", "linux", "DirectML exists only on Windows"),
        ("coreml", "win32", "CoreML exists only on macOS"),
        ("rocm", "linux", "--gpu must be one of"),
    ],
)
def test_impossible_gpu_override_is_one_line(choice, plat, needle):
    with pytest.raises(gpu_detect.ChoiceError, match=needle):
        gpu_detect.choose_runtime(choice, NONE, plat)


def test_gpu_override_and_one_build_only():
    assert gpu_detect.choose_runtime("cpu", NVIDIA, "win32").runtime == "cpu"
    forced = gpu_detect.choose_runtime("cuda", NONE, "linux")
    assert forced.runtime == "cuda" and "no NVIDIA GPU was detected" in forced.why
    assert gpu_detect.choose_runtime("dml", NVIDIA, "win32").package == "onnxruntime-directml"
    # never two builds side by side: everything but the chosen build goes first
    assert gpu_detect.builds_to_remove("cuda", ["onnxruntime", "onnxruntime-gpu"]) == ["onnxruntime"]
    assert gpu_detect.builds_to_remove("dml", ["onnxruntime", "onnxruntime-gpu"]) == ["onnxruntime", "onnxruntime-gpu"]
    assert gpu_detect.builds_to_remove("cpu", ["onnxruntime", "onnxruntime-directml"]) == ["onnxruntime-directml"]
    assert gpu_detect.builds_to_remove("coreml", ["onnxruntime"]) == []
    assert [
        gpu_detect.vendor_of(n)
        for n in (
            "NVIDIA GeForce GTX 1060",
            "AMD Radeon(TM) Graphics",
            "Intel(R) UHD Graphics 630",
            "Microsoft Basic Display Adapter",
        )
    ] == ["nvidia", "amd", "intel", ""]


def test_windows_paths_and_next_steps(monkeypatch, tmp_path):
    assert bootstrap.venv_python(Path("C:/w/.venv"), windows=True) == Path("C:/w/.venv/Scripts/python.exe")
    assert bootstrap.venv_script(Path("/w/.venv"), "stream-animator", windows=False) == Path(
        "/w/.venv/bin/stream-animator"
    )
    monkeypatch.chdir(tmp_path)
    ctx = bootstrap.Context(
        repo=tmp_path,
        venv=tmp_path / ".venv",
        dev=True,
        gpu_choice="auto",
        models=False,
        manifest=tmp_path / "m.json",
        models_dir=tmp_path,
        force=False,
        windows=True,
    )
    steps = "\n".join(bootstrap.next_steps(ctx))
    assert ".venv\\Scripts\\stream-animator demo" in steps
    assert ".venv\\Scripts\\python.exe -m pytest -q -n 2 --dist loadfile" in steps
    ctx.windows = False
    assert ".venv/bin/stream-animator demo" in "\n".join(bootstrap.next_steps(ctx))


# ---------------------------------------------------------------- README and CI agree


def test_ci_runs_exactly_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    commands = re.findall(r"^(python3 installer/install\.py.*)$", readme, re.MULTILINE)
    assert "python3 installer/install.py && .venv/bin/stream-animator demo" in commands
    test_command = "python3 installer/install.py --dev && .venv/bin/python -m pytest -q -n 2 --dist loadfile"
    assert test_command in commands
    ci = (REPO / ".ci" / "run").read_text()
    assert ci.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in ci
    assert [line.strip() for line in ci.splitlines() if "pytest" in line and not line.lstrip().startswith("#")] == [
        test_command
    ]
    assert os.access(REPO / ".ci" / "run", os.X_OK)
    subprocess.run(["bash", "-n", str(REPO / ".ci" / "run")], check=True, timeout=30)


# ---------------------------------------------------------------- --obs, re-runs, --uninstall


def _obs_home(tmp_path: Path) -> tuple[dict, Path]:
    """A HOME holding OBS 29's first-run configuration, and the environment pointing at it."""
    from test_obs_setup import make_obs_config

    home = tmp_path / "home"
    cfg = make_obs_config(home / ".config")
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_CONFIG_HOME", "PYTHONPATH")}
    env["HOME"] = str(home)
    return env, cfg / "basic" / "scenes" / "Untitled.json"


@pytest.mark.slow
def test_obs_option_registers_and_a_rerun_keeps_everything(installed, tmp_path):
    venv, _, _ = installed
    env, collection = _obs_home(tmp_path)
    before = collection.read_bytes()
    proc = run_installer("--venv", str(venv), "--obs", env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Adding the script to OBS" in proc.stdout and "registered" in proc.stdout
    entry = json.loads(collection.read_text())["modules"]["scripts-tool"][0]
    assert entry["settings"]["worker_python"] == str(venv / "bin" / "python")
    registered = collection.read_bytes()
    site = _site_packages_snapshot(venv)
    again = run_installer("--venv", str(venv), "--obs", env=env, timeout=300)  # an upgrade with nothing new
    assert again.returncode == 0 and "already registered" in again.stdout, again.stdout + again.stderr
    assert collection.read_bytes() == registered and _site_packages_snapshot(venv) == site
    # the registration made by that venv is removed by --uninstall of any venv of this checkout (below);
    # here: undo it through the installed venv's own command
    undo = subprocess.run(
        [str(venv / "bin" / "stream-animator"), "obs-setup", "--undo"],
        env=env,
        text=True,
        capture_output=True,
        timeout=120,
    )
    assert undo.returncode == 0 and collection.read_bytes() == before, undo.stdout + undo.stderr


def test_uninstall_removes_the_registration_and_the_venv_only(tmp_path):
    """--uninstall on a venv of this checkout (a light one: the dev environment's packages via a .pth)."""
    env, collection = _obs_home(tmp_path)
    before = collection.read_bytes()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = next((venv / "lib").glob("python3.*/site-packages"))
    dev_site = next(p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir())
    (site / "dev.pth").write_text(f"{dev_site}\n{REPO}\n")
    setup = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "worker", "obs-setup"],
        env=env,
        text=True,
        capture_output=True,
        timeout=120,
        cwd=REPO,
    )
    assert setup.returncode == 0, setup.stdout + setup.stderr
    characters = tmp_path / "characters"
    characters.mkdir()
    (characters / "fox.png").write_bytes(b"\x89PNG keep me")
    proc = run_installer("--uninstall", "--venv", str(venv), env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "restored exactly as it was before setup" in proc.stdout and "Kept: your characters" in proc.stdout
    assert collection.read_bytes() == before and not venv.exists()
    assert (characters / "fox.png").read_bytes() == b"\x89PNG keep me"
    again = run_installer("--uninstall", "--venv", str(venv), env=env, timeout=120)
    assert again.returncode == 0 and "nothing to remove" in again.stdout


def test_uninstall_refuses_a_folder_that_is_not_a_venv(tmp_path):
    target = tmp_path / "stuff"
    target.mkdir()
    (target / "precious.txt").write_text("keep")
    proc = run_installer("--uninstall", "--venv", str(target), timeout=60)
    assert_one_line_failure(proc, "is not a virtual environment (no pyvenv.cfg); not removing it")
    assert (target / "precious.txt").read_text() == "keep"


def test_launchers_find_python_then_install_with_obs_then_doctor():
    """The double-click launchers: right interpreter range, --obs, then doctor; the macOS one parses."""
    command = INSTALLER / "install.command"
    assert os.access(command, os.X_OK)
    subprocess.run(["bash", "-n", str(command)], check=True, timeout=30)
    text = command.read_text()
    assert "for v in 3.12 3.11 3.10" in text and "(3, 10) <= v < (3, 13)" in text
    assert '"$PY" installer/install.py --obs "$@"' in text and ".venv/bin/stream-animator doctor" in text
    assert "https://www.python.org/downloads/macos/" in text
    ps1 = (INSTALLER / "Install.ps1").read_text()
    assert "@('3.10', '3.11', '3.12')" in ps1 and "WindowsApps" in ps1 and "'--obs'" in ps1
    assert 'stream-animator.exe" doctor' in ps1 and "https://www.python.org/downloads/windows/" in ps1
    bat = (INSTALLER / "install.bat").read_bytes()
    assert b'-ExecutionPolicy Bypass -File "%~dp0Install.ps1" %*' in bat
