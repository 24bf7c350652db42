"""`stream-animator bench --obs`: recovery and start times in a real OBS Studio (headless, Xvfb).

One OBS runs our script in direct mode (meshwarp, 256², a clip as the camera). Per round the
worker is killed (SIGKILL) and the time until the script pushes frames from a new worker is
taken; then OBS is stopped and started again from what it saved, and the time from its launch
to the first frame pushed (characters cached) is taken. The first start (empty cache) is
reported apart. Targets (issue 16): frames again within 2 s of a killed worker, the first frame
within 3 s of an OBS start with cached characters. These are judged here, with numbers; the
OBS tests only keep bounds that a busy machine holds.
"""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from worker.tools.obs_run import ObsRun, missing_requirements

KILL_TARGET_S = 2.0
CACHED_START_TARGET_S = 3.0


def _running(st: dict) -> bool:
    return st.get("state") == "running" and (st.get("frames") or {}).get("frames", 0) > 0


def _settings(characters: Path, clip: Path) -> dict:
    return {
        "worker_python": sys.executable,
        "characters_dir": str(characters),
        "camera": "file",
        "video_file": str(clip),
        "size": 256,
        "renderer": "meshwarp",
        "output_mode": "direct",
        "autostart": True,
    }


def bench_obs(clip: Path, character: Path, rounds: int = 3, say: Callable[[str], None] = lambda s: None) -> dict:
    """Start, kill-recovery and cached-restart times over `rounds`, with medians and the targets."""
    reason = missing_requirements()
    if reason:
        from worker.errors import UserError

        raise UserError(f"--obs: {reason}")
    root = Path(tempfile.mkdtemp(prefix="sma-obs-bench-"))
    chars = root / "characters"
    chars.mkdir()
    shutil.copy(character, chars / character.name)
    run = ObsRun(root / "obs", _settings(chars, clip), env={"STREAM_ANIMATOR_CACHE": str(root / "cache")})
    kills: list[float] = []
    starts: list[float] = []
    try:
        run.start()
        st = run.wait_status(_running, 120, "the first frame (cold cache)")
        cold = st["frames"]["first_frame_wall"] - run.started_at
        say(f"OBS start -> first frame, empty cache: {cold:.2f} s")
        for i in range(rounds):
            old = st["worker_pid"]
            t_kill = time.time()
            os.kill(old, signal.SIGKILL)
            st = run.wait_status(
                lambda s, old=old, t=t_kill: (
                    s.get("worker_pid") not in (None, old)
                    and _running(s)
                    and (s["frames"].get("last_push_wall") or 0) > t + 0.2
                ),
                60,
                "frames from a restarted worker",
            )
            kills.append(st["frames"]["first_frame_wall"] - t_kill)
            run.stop()
            run.kill_leftovers()
            run.start(fresh_config=False)
            st = run.wait_status(_running, 120, "the first frame after an OBS restart")
            starts.append(st["frames"]["first_frame_wall"] - run.started_at)
            say(
                f"round {i + 1}/{rounds}: killed worker -> frames {kills[-1]:.2f} s; "
                f"OBS restart -> first frame (cached) {starts[-1]:.2f} s"
            )
    finally:
        run.stop()
        run.kill_leftovers()
        shutil.rmtree(root, ignore_errors=True)
    kill_med, start_med = statistics.median(kills), statistics.median(starts)
    return {
        "rounds": rounds,
        "clip": clip.name,
        "character": character.name,
        "size": 256,
        "start_cold_cache_s": round(cold, 2),
        "worker_kill_to_frames_s": [round(x, 2) for x in kills],
        "worker_kill_to_frames_median_s": round(kill_med, 2),
        "start_cached_s": [round(x, 2) for x in starts],
        "start_cached_median_s": round(start_med, 2),
        "targets_s": {"worker_kill_to_frames": KILL_TARGET_S, "start_cached": CACHED_START_TARGET_S},
        "targets_met": kill_med <= KILL_TARGET_S and start_med <= CACHED_START_TARGET_S,
    }
