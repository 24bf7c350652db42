"""`stream-animator doctor`: every check on this machine (--json), and a broken piece making
exactly its own check fail, with its advice."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from test_obs_setup import make_obs_config

from worker.setup import checks as setup_checks
from worker.setup import obs_registration

REPO = Path(__file__).resolve().parents[1]
ALL = [
    "python",
    "packages",
    "devices",
    "obs",
    "obs script",
    "obs python",
    "gpu",
    "models",
    "cache",
    "ports",
    "selftest",
]
FAST = {"python", "packages", "obs", "script", "obs_python", "gpu", "models", "cache", "ports"}


@pytest.fixture
def machine(tmp_path):
    """A HOME whose OBS configuration (as OBS 29 writes it) has been through obs-setup."""
    home = tmp_path / "home"
    cfg = make_obs_config(home / ".config")
    obs_registration.apply(cfg, REPO, sys.executable, check_running=False)
    return {"home": home, "cfg": cfg, "cache": tmp_path / "cache"}


def test_doctor_json_on_this_machine(machine):
    env = {k: v for k, v in os.environ.items() if k != "XDG_CONFIG_HOME"}
    env.update(HOME=str(machine["home"]), STREAM_ANIMATOR_CACHE=str(machine["cache"]))
    proc = subprocess.run(
        [sys.executable, "-m", "worker", "doctor", "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    for c in report["checks"]:
        print(f"[doctor] {c['status']:4} {c['name']}: {c['detail']}" + (f" -> {c['advice']}" if c["advice"] else ""))
    checks = {c["name"]: c for c in report["checks"]}
    assert list(checks) == ALL
    for c in checks.values():
        assert c["status"] in ("ok", "warn", "fail") and c["detail"]
        assert c["status"] == "ok" or c["advice"], c
    failed = [n for n, c in checks.items() if c["status"] == "fail"]
    assert report["failed"] == failed and (proc.returncode != 0) == bool(failed), proc.stderr
    # what this machine has: the venv, every package, OBS with the script, a working CPU provider
    for name in ("python", "packages", "obs", "obs script", "obs python", "cache", "ports"):
        assert checks[name]["status"] == "ok", checks[name]
    assert checks["selftest"]["status"] in ("ok", "warn"), checks["selftest"]  # warn: below 15 FPS (a busy CPU)
    assert checks["obs script"]["data"]["collections"] == ["Untitled"]
    assert checks["gpu"]["data"]["providers"]["CPUExecutionProvider"] == "ok"
    st = checks["selftest"]["data"]
    # measured here: 18-26 FPS with ~6 other jobs on 2 cores (the clip plays in real time, 30 FPS at
    # most); the rate depends on the machine's moment, so only frames arriving with alpha is judged
    assert st["alpha"] is True and st["frames"] >= 3 and st["fps"] > 0, st
    assert proc.returncode == 0


def _statuses(opts: setup_checks.DoctorOptions) -> dict[str, setup_checks.Check]:
    return {c.name: c for c in setup_checks.run_checks(opts, only=FAST)}


def _only_change(base: dict, broken: dict, name: str) -> setup_checks.Check:
    changed = [n for n in base if base[n].status != broken[n].status]
    assert changed == [name], {n: (base[n].line(), broken[n].line()) for n in changed}
    assert broken[name].status == setup_checks.FAIL and broken[name].advice
    return broken[name]


def _manifest(tmp_path: Path, files: dict[str, bytes]) -> Path:
    entries = [
        {"path": p, "url": "https://example.invalid/" + p, "size": len(b), "sha256": hashlib.sha256(b).hexdigest()}
        for p, b in files.items()
    ]
    path = tmp_path / "models" / "manifest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"format": 1, "models": entries}))
    return path


def test_each_broken_piece_fails_exactly_its_check(machine, tmp_path):
    weights = {"lp/a.onnx": b"a" * 100, "lp/b.onnx": b"b" * 50}
    manifest = _manifest(tmp_path, weights)
    for rel, data in weights.items():
        (manifest.parent / rel).parent.mkdir(parents=True, exist_ok=True)
        (manifest.parent / rel).write_bytes(data)
    config = tmp_path / "worker.yaml"
    config.write_text("control: {port: 0}\n")
    good = dict(obs_config=str(machine["cfg"]), cache_dir=machine["cache"], manifest=manifest, config=str(config))
    base = _statuses(setup_checks.DoctorOptions(**good))
    assert base["models"].status == setup_checks.OK and "2 weight files present and verified" in base["models"].detail
    assert all(c.status != setup_checks.FAIL for c in base.values()), [c.line() for c in base.values()]

    # the cache folder cannot be written (a file stands where its parent folder should be)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    c = _only_change(base, _statuses(setup_checks.DoctorOptions(**{**good, "cache_dir": blocker / "cache"})), "cache")
    assert f"{blocker} is a file, where a folder of the cache path" in c.detail and "STREAM_ANIMATOR_CACHE" in c.advice

    # a weight file is missing
    (manifest.parent / "lp" / "b.onnx").unlink()
    c = _only_change(base, _statuses(setup_checks.DoctorOptions(**good)), "models")
    assert "1 of 2 weight files missing" in c.detail and "lp/b.onnx" in c.detail and "--models" in c.advice
    # ... or damaged
    (manifest.parent / "lp" / "b.onnx").write_bytes(b"x" * 50)
    c = _only_change(base, _statuses(setup_checks.DoctorOptions(**good)), "models")
    assert "lp/b.onnx (SHA-256 mismatch)" in c.detail
    (manifest.parent / "lp" / "b.onnx").write_bytes(weights["lp/b.onnx"])

    # the configured control port is taken by another program
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config.write_text(f"control: {{port: {port}}}\n")
        c = _only_change(base, _statuses(setup_checks.DoctorOptions(**good)), "ports")
    assert f"control port {port} is in use" in c.detail and "another port" in c.advice

    # the script's registration is gone
    config.write_text("control: {port: 0}\n")
    obs_registration.undo(machine["cfg"], check_running=False)
    c = _only_change(base, _statuses(setup_checks.DoctorOptions(**good)), "obs script")
    assert "not registered" in c.detail and "obs-setup" in c.advice


def test_doctor_text_output_is_one_line_per_check(machine):
    env = {k: v for k, v in os.environ.items() if k != "XDG_CONFIG_HOME"}
    env.update(HOME=str(machine["home"]))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "worker",
            "doctor",
            "--only",
            "python",
            "--only",
            "cache",
            "--cache",
            str(machine["home"] / "cache"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
    )
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 0 and len(lines) == 3, proc.stdout + proc.stderr
    assert lines[0].startswith("OK    python: Python 3.") and lines[1].startswith("OK    cache: ")
    assert lines[2] == "2 of 2 checks passed"


def test_tiny_onnx_model_runs_on_the_cpu_provider():
    from worker.setup.onnx_probe import probe_providers

    assert probe_providers()["CPUExecutionProvider"] == "ok"
