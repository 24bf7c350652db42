"""The liveportrait renderer in the product, end to end on the CPU provider: the live worker
(character switching, the character cache, calibrate, status), `run`, `demo` and `bench`.

No weights exist here: the graphs are the stand-ins (worker/render/liveportrait/standin.py, the
real networks' signatures), reached through the test-only $STREAM_ANIMATOR_STANDIN_MODELS. Every
count below (F runs, cache hits, frames) is what the real weights would give too; the pictures
and the networks' milliseconds are not LivePortrait's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest

from worker.config import load_settings
from worker.control import protocol as P
from worker.live.worker import LiveWorker
from worker.paths import SAMPLE_CHARACTER
from worker.render.liveportrait.standin import build_models
from worker.render.liveportrait.weights import STANDIN_ENV


@pytest.fixture(scope="module")
def standin(tmp_path_factory) -> Path:
    return build_models(tmp_path_factory.mktemp("standin"))


@pytest.fixture(scope="module")
def characters(tmp_path_factory, testdata) -> Path:
    d = tmp_path_factory.mktemp("characters")
    shutil.copy(SAMPLE_CHARACTER, d / "astronaut.png")
    shutil.copy(testdata / "footage" / "portraits" / "s9.jpg", d / "s9.jpg")
    return d


def wait_for(pred, timeout: float, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return None


def _all_ready(c: P.ControlClient) -> bool:
    return all(r["state"] == "ready" for r in c.request("list_characters")["characters"])


def test_live_worker_draws_with_liveportrait_and_runs_F_once_per_character(
    standin, characters, tmp_path, testdata, monkeypatch
):
    monkeypatch.setenv(STANDIN_ENV, str(standin))
    cfg = load_settings(None, {
        "characters.folder": str(characters), "characters.size": 256, "cache_dir": str(tmp_path / "cache"),
        "camera.source": str(testdata / "footage" / "driving" / "d3.mp4"), "outputs": [{"type": "obs"}],
        "renderer.name": "liveportrait",
    })  # fmt: skip
    token = P.make_token()
    w = LiveWorker(cfg, token).start()
    try:
        r = w.animator.renderer
        assert r.name == "liveportrait" and not r.uses_pose
        with P.ControlClient(w.control_port, token, timeout=5).connect() as c:
            assert wait_for(lambda: c.request("status")["frames"]["rendered"] > 5, 60)
            assert wait_for(lambda: _all_ready(c), 60)
            assert r.nets["F"].runs == 2  # one per character, prepared by the character cache
            st = c.request("status")
            assert st["renderer"] == "liveportrait"
            assert st["renderer_reason"].startswith("liveportrait: chosen by name; liveportrait (STAND-IN graphs")
            assert "on cpu" in st["renderer_reason"] and "too slow for live" in st["renderer_reason"]
            start = st["character"]
            other = next(cid for cid in ("astronaut.png", "s9.jpg") if cid != start)
            for cid in (other, start):  # switch and back: F is not run again
                c.request("set_character", character=cid)
                assert wait_for(lambda cid=cid: c.request("status")["character"] == cid, 30)
                n = c.request("status")["frames"]["rendered"]
                assert wait_for(lambda n=n: c.request("status")["frames"]["rendered"] > n + 2, 30)
            assert r.nets["F"].runs == 2
            assert r.nets["W"].runs > 0 and r.frames > 5  # frames drawn by liveportrait itself
            # calibrate resets the renderer's own neutral too (from the next frame with a face)
            before = r.neutral
            assert before is not None
            c.request("calibrate")
            assert wait_for(lambda: r.neutral is not before, 30)
            # motion settings reach the renderer
            c.request("set_options", options={"motion.expression_strength": 0.5, "motion.mirror": True})
            assert wait_for(lambda: r.expression_strength == 0.5 and r.mirror, 10)
    finally:
        w.stop()

    # a second start on the same cache: the prepared arrays come from disk, F never runs
    w = LiveWorker(cfg, token).start()
    try:
        r = w.animator.renderer
        with P.ControlClient(w.control_port, token, timeout=5).connect() as c:
            assert wait_for(lambda: c.request("status")["frames"]["rendered"] > 3, 60)
            assert wait_for(lambda: _all_ready(c), 60)
            c.request("set_character", step=1)
            n = c.request("status")["frames"]["rendered"]
            assert wait_for(lambda: c.request("status")["frames"]["rendered"] > n + 2, 30)
        assert r.nets["F"].runs == 0 and r.nets["M"].runs > 0
    finally:
        w.stop()


def _env(tmp_path: Path, **extra: str) -> dict:
    env = dict(os.environ, STREAM_ANIMATOR_LOGS=str(tmp_path / "logs"), STREAM_ANIMATOR_CACHE=str(tmp_path / "cache"))
    env.pop(STANDIN_ENV, None)
    env.update(extra)
    return env


def _worker(tmp_path: Path, env: dict, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "worker", *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=tmp_path
    )


def test_without_weights_demo_run_and_bench_say_so_in_one_line(tmp_path, characters):
    env = _env(tmp_path, STREAM_ANIMATOR_MODELS=str(tmp_path / "no-weights"))
    for args in (("demo", "--renderer", "liveportrait"),
                 ("run", "--renderer", "liveportrait", "--characters", str(characters), "--source", "x.mp4"),
                 ("bench", "--renderer", "liveportrait", "--clip", str(SAMPLE_CHARACTER))):  # fmt: skip
        r = _worker(tmp_path, env, *args)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1, (args, r.stderr)
        assert "liveportrait" in lines[0] and "models --download" in lines[0] and "Traceback" not in r.stderr
    assert "--standin" in lines[0]  # bench says how to measure without weights


def test_run_and_demo_end_to_end_on_the_cpu(standin, characters, tmp_path, testdata):
    env = _env(tmp_path, **{STANDIN_ENV: str(standin)})
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"characters: {{size: 256}}\ncache_dir: {tmp_path / 'cache'}\n")
    out = tmp_path / "run.mov"
    r = _worker(
        tmp_path,
        env,
        "run",
        "--config",
        str(cfg),
        "--source",
        str(testdata / "footage/driving/d3.mp4"),
        "--characters",
        str(characters),
        "--renderer",
        "liveportrait",
        "--output",
        f"file:{out}",
        "--duration",
        "8",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout.strip().splitlines()[-1])
    assert s["renderer"] == "liveportrait" and "STAND-IN" in s["renderer_reason"]
    assert s["frames_rendered"] >= 5 and s["frames_with_face"] >= 5
    log = (tmp_path / "logs" / "stream-animator.log").read_text()
    assert "renderer: liveportrait: chosen by name" in log  # the one line at start
    with av.open(str(out)) as c:
        frames = [f.to_ndarray(format="rgba") for f in c.decode(video=0)]
    assert len(frames) >= 5 and frames[-1].shape == (256, 256, 4)
    assert frames[-1][..., 3].min() == 0 and frames[-1][..., 3].max() == 255  # the character's alpha

    r = _worker(
        tmp_path,
        env,
        "demo",
        "--renderer",
        "liveportrait",
        "--size",
        "256",
        "--max-frames",
        "10",
        "--driver",
        str(testdata / "footage/driving/d0.mp4"),
        "--out",
        "demo.webm",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout.strip().splitlines()[-1])
    assert d["frames_out"] == 10 and d["frames_with_face"] == 10 and d["renderer"] == "liveportrait"
    assert "on cpu" in d["renderer_reason"] and "too slow for live" in d["renderer_reason"]
    assert d["stages_ms"]["render"]["median"] > 0

    # auto on this CPU-only machine: meshwarp, and it says why
    r = _worker(tmp_path, env, "demo", "--size", "256", "--max-frames", "3", "--out", "auto.webm", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout.strip().splitlines()[-1])
    assert d["renderer"] == "meshwarp" and d["renderer_reason"].startswith("auto chose meshwarp")
    assert "no GPU provider works" in d["renderer_reason"]


def test_bench_liveportrait_on_standin_graphs_beside_meshwarp(tmp_path, testdata):
    env = _env(tmp_path, STREAM_ANIMATOR_MODELS=str(tmp_path / "no-weights"))
    r = _worker(
        tmp_path,
        env,
        "bench",
        "--renderer",
        "liveportrait",
        "--standin",
        "--frames",
        "8",
        "--json",
        "--clip",
        str(testdata / "footage/driving/d12.mp4"),
    )
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout.strip().splitlines()[-1])
    lp, mw = res["liveportrait"], res["meshwarp"]
    assert lp["weights"].startswith("STAND-IN graphs") and "NOT LivePortrait's" in lp["weights"]
    assert lp["frames"] == 8 and set(lp["network_ms"]) == {
        "appearance",
        "motion",
        "warp+generator",
        "stitching",
        "eye",
        "lip",
    }
    assert all(v > 0 for v in lp["network_ms"].values())
    own = lp["own_code_ms"]
    assert set(own["cpu"]) == {"crop", "motion", "paste"} and 0 < own["cpu_total"] < 20
    assert lp["render_cache"]["frames"] == 8 and 0.0 <= lp["render_cache"]["hit_rate"] <= 1.0
    assert mw["frames"] == 8 and mw["render_ms"]["median"] > 0
    assert np.isfinite(lp["wall_ms_per_frame_with_cache"])


def test_bench_labels_graphs_reached_through_the_test_variable_as_stand_ins(standin, tmp_path, testdata):
    env = _env(tmp_path, **{STANDIN_ENV: str(standin)})
    r = _worker(tmp_path, env, "bench", "--renderer", "liveportrait", "--frames", "3", "--json",
                "--clip", str(testdata / "footage/driving/d0.mp4"))  # fmt: skip
    assert r.returncode == 0, r.stderr
    lp = json.loads(r.stdout.strip().splitlines()[-1])["liveportrait"]
    assert lp["weights"].startswith("STAND-IN graphs") and lp["frames"] == 3


def test_auto_picks_liveportrait_only_with_ready_weights_and_a_working_gpu(standin, tmp_path, monkeypatch):
    """The decision itself (no GPU exists here: the provider choice a CUDA machine would make is
    handed in, as `providers.choose` makes it there)."""
    from worker.render import registry
    from worker.render.liveportrait import providers

    monkeypatch.delenv(STANDIN_ENV, raising=False)
    monkeypatch.setenv("STREAM_ANIMATOR_MODELS", str(tmp_path / "no-weights"))
    name, why = registry.pick_auto()
    assert name == "meshwarp" and "models --download" in why
    monkeypatch.setenv(STANDIN_ENV, str(standin))
    name, why = registry.pick_auto()  # weights ready, this CPU-only build
    assert name == "meshwarp" and "no GPU provider works" in why and "too slow for live" in why
    cuda = providers.ProviderChoice("cuda", ["CUDAExecutionProvider", "CPUExecutionProvider"], "auto")
    monkeypatch.setattr(providers, "choose", lambda device="auto": cuda)
    assert registry.pick_auto() == (
        "liveportrait",
        "auto chose liveportrait: STAND-IN graphs (tests only), GPU provider cuda works",
    )
