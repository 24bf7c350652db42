"""`stream-animator bench` runs and reports every section (numbers themselves go in the notes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from worker.paths import SAMPLE_CHARACTER


def test_bench_json(tmp_path, testdata):
    clip = testdata / "footage" / "driving" / "d12.mp4"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "worker",
            "bench",
            "--clip",
            str(clip),
            "--frames",
            "40",
            "--characters",
            str(SAMPLE_CHARACTER),
            str(testdata / "footage" / "portraits" / "s9.jpg"),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env=dict(os.environ, STREAM_ANIMATOR_LOGS=str(tmp_path / "logs")),
    )
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout.strip().splitlines()[-1])
    t = res["tracking"]
    assert t["frames"] == 40 and t["frames_with_face"] == 40 and t["track_ms"]["median"] > 0
    s = res["stages"]
    assert set(s["stages_ms"]) == {"capture", "track", "retarget", "render", "encode"}
    assert s["cache_saves_ratio"] > 1
    rows = res["characters"]["characters"]
    assert [row["character"] for row in rows] == ["astronaut.png", "s9.jpg"]
    for row in rows:
        # what the cache is for: a cached character loads far faster than it preprocesses
        assert row["cold_ms"] > row["disk_ms"] > row["memory_ms"]
        assert row["cold_over_memory"] > 100


def test_bench_live_cpu_per_frame_within_budget(tmp_path):
    """The live worker's own CPU time per delivered frame (all its threads: decode, face mesh,
    render, outputs) stays within the budget of issue 16: 30 FPS on at most one core. The bench
    itself fails (exit 1) when it does not; measured 13-15 ms per frame here, budget 33.3. The budget
    is the benchmark's to prove; this test checks that the bench judges it right, with a bound that
    a busy machine keeps."""
    r = subprocess.run(
        [sys.executable, "-m", "worker", "bench", "--live", "8", "--performance", "balanced", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=dict(os.environ, STREAM_ANIMATOR_LOGS=str(tmp_path / "logs")),
    )
    res = json.loads(r.stdout.strip().splitlines()[-1])
    cpu = res["cpu"]
    assert res["performance"] == "balanced" and cpu["frames"] > 20  # ~200 in 8 s here; fewer on a busy box
    assert "CPU budget:" in r.stderr and f"against {cpu['budget_ms_per_frame']:.1f} ms" in r.stderr
    assert cpu["budget_ms_per_frame"] == 33.3
    assert cpu["within_budget"] == (cpu["ms_per_frame"] <= 33.3), cpu
    assert r.returncode == (0 if cpu["within_budget"] else 1), r.stderr
    assert 0 < cpu["ms_per_frame"] <= 3 * 33.3 and 0 < cpu["cores"] < 3.0, cpu


def test_bench_obs_refuses_zero_rounds_in_one_line(tmp_path, capsys):
    """`bench --obs` judges its targets in a real OBS (minutes, not run here); a bad round count is
    one line naming the option, before anything starts."""
    from worker import cli

    assert cli.main(["bench", "--obs", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "error: --obs 0: the number of rounds must be at least 1", err
