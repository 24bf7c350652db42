"""`bench --recovery`: start-up and crash recovery as a streamer sees them, in a real OBS.

A headless OBS (Xvfb) loads the script, which starts the worker in a realistic setting: three
cached characters at 512x512 and a 720p clip as the camera. Measured, with OBS's own screenshots
of the "Animated Character" source taken back to back:

- OBS start -> first visible frame (the source shows a picture with alpha);
- worker killed (SIGKILL) -> the picture moves again: until then OBS keeps the last frame, frozen.
  A screenshot counts as moved when it differs from the one taken 0.3 s after the kill.
  Screenshots are taken once the script's status file shows the first push (each costs OBS a
  render and a PNG, CPU that a restarting worker needs on a busy machine); the script writes
  that file twice a second, so a time measured may be up to 0.5 s late, never early.

Beside each, where the time went: the restarted worker's own start-up marks from its log
(`worker.live.startup`: imports, outputs listening, character loaded, camera open, first frame
sent, tracker ready, first frame tracked) and the script's push times from its status file.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from worker.errors import UserError
from worker.live.startup import parse_log
from worker.paths import SAMPLE_CHARACTER, SAMPLE_DRIVER, shared_testdata

SOURCE = "Animated Character"  # the script's source
FROZEN_TARGET_S = 2.0  # issue 26.18: the picture frozen under 2 s after a worker crash
SETTLE_S = 0.3  # after the kill, before the frozen picture is taken
# A crash after a healthy run: the OBS script restarts after 0.2 s once its worker has been up this long
# (obs_script/stream_animator_lib/backoff.py, Backoff.healthy_after); a worker killed sooner counts as a
# crash loop and waits 1, 2, 4 ... s, which is the back-off at work, not recovery as a streamer sees it
HEALTHY_S = 20.0
MOVED_LEVEL = 1.0  # mean |difference| (0-255) between screenshots that counts as a moving picture


def make_camera_clip(src: Path, dst: Path, width: int = 1280, height: int = 720) -> Path:
    """`src` centred on a `width`x`height` canvas, H.264 at the source's rate: a 720p "webcam"."""
    import av
    import cv2

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        rate = vin.average_rate or Fraction(30, 1)
        vout = out.add_stream("libx264", rate=rate)
        vout.width, vout.height, vout.pix_fmt = width, height, "yuv420p"
        vout.options = {"preset": "veryfast", "crf": "20"}
        canvas = np.zeros((height, width, 3), np.uint8)
        for frame in inp.decode(vin):
            img = frame.to_ndarray(format="rgb24")
            scale = min(width / img.shape[1], height / img.shape[0])
            img = cv2.resize(img, (round(img.shape[1] * scale), round(img.shape[0] * scale)))
            y, x = (height - img.shape[0]) // 2, (width - img.shape[1]) // 2
            canvas[:] = 0
            canvas[y : y + img.shape[0], x : x + img.shape[1]] = img
            for p in vout.encode(av.VideoFrame.from_ndarray(canvas, format="rgb24")):
                out.mux(p)
        for p in vout.encode():
            out.mux(p)
    return dst


def _inputs(root: Path, clip: Path | None, characters: list[Path] | None) -> tuple[Path, Path]:
    """(the 720p camera clip, a folder of three characters) under `root`."""
    td = shared_testdata()
    if clip is None:
        clip = td / "footage" / "driving" / "d3.mp4" if td is not None else SAMPLE_DRIVER
    if characters is None:
        characters = [SAMPLE_CHARACTER]
        if td is not None:
            characters += [td / "footage" / "portraits" / n for n in ("s6.jpg", "s7.jpg")]
    folder = root / "characters"
    folder.mkdir()
    for c in characters:
        if not c.is_file():
            raise UserError(f"{c}: character image not found")
        shutil.copy(c, folder / c.name)
    return make_camera_clip(clip, root / "camera-720p.mp4"), folder


def _shot(run, width: int) -> tuple[np.ndarray | None, float]:
    img = run.screenshot(SOURCE, width=width)
    return img, time.time()


def _differs(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None or a.shape != b.shape:
        return a is not b
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean()) > MOVED_LEVEL


def _wait_visible(run, t0: float, timeout: float, width: int) -> tuple[float, list[float]]:
    """Seconds from `t0` to the first screenshot showing a picture with alpha; the gaps between shots."""
    deadline, last = time.monotonic() + timeout, None
    gaps: list[float] = []
    while time.monotonic() < deadline and not (run.status().get("frames") or {}).get("first_frame_wall"):
        if run.proc.poll() is not None:
            break
        time.sleep(0.02)  # nothing to see before the script's first push; screenshots cost OBS CPU
    while time.monotonic() < deadline:
        img, t = _shot(run, width)
        if last is not None:
            gaps.append(t - last)
        last = t
        if img is not None and int(img[..., 3].max()) == 255:
            return t - t0, gaps
        if run.proc.poll() is not None:
            break
    raise RuntimeError(f"no picture in OBS within {timeout:.0f} s; status: {run.status()}")


def _wait_moving(run, timeout: float, width: int) -> float:
    """Block until two screenshots 0.2 s apart differ (frames are flowing); returns the time."""
    deadline = time.monotonic() + timeout
    prev, _ = _shot(run, width)
    while time.monotonic() < deadline:
        time.sleep(0.2)
        img, t = _shot(run, width)
        if img is not None and prev is not None and _differs(img, prev):
            return t
        prev = img
    raise RuntimeError(f"the picture in OBS did not move within {timeout:.0f} s")


def _wait_healthy(run) -> None:
    """Until the worker has streamed for HEALTHY_S (at least 1 s more), so that its kill is a one-off crash."""
    import psutil

    up = time.time() - psutil.Process(run.status()["worker_pid"]).create_time()
    time.sleep(max(1.0, HEALTHY_S + 0.5 - up))


def _kill_and_watch(run, width: int, timeout: float, log_path: Path) -> dict[str, Any]:
    """SIGKILL the worker; seconds until the picture moves again, and where the time went."""
    import psutil

    st = run.status()
    old_pid = st["worker_pid"]
    t_kill = time.time()
    os.kill(old_pid, signal.SIGKILL)
    # frames already on their way are shown 1-3 frames later; after that OBS keeps the last one, frozen
    # (no restart is back this soon: the script waits 0.2 s before it starts the worker again)
    time.sleep(SETTLE_S)
    frozen, _ = _shot(run, width)
    deadline, gaps, last, new_pid, spawned = time.monotonic() + timeout, [], None, None, None
    # until the script pushes the new worker's first frame, read only its status file: a
    # screenshot costs OBS a render and a PNG, CPU the restarting worker needs on a busy machine
    while time.monotonic() < deadline:
        st = run.status()
        pid = st.get("worker_pid")
        if new_pid is None and pid not in (None, old_pid):
            new_pid = pid
            try:
                spawned = psutil.Process(pid).create_time() - t_kill
            except psutil.Error:
                spawned = None
        if new_pid is not None and ((st.get("frames") or {}).get("first_frame_wall") or 0) > t_kill:
            break
        time.sleep(0.02)
    moved_at = None
    while time.monotonic() < deadline:  # then OBS's own screenshots: when the picture really moves
        img, t = _shot(run, width)
        if last is not None:
            gaps.append(t - last)
        last = t
        if img is not None and _differs(img, frozen):
            moved_at = t - t_kill
            break
    if moved_at is None:
        raise RuntimeError(f"the picture stayed frozen for {timeout:.0f} s after the kill; status: {run.status()}")
    st = _status_after(run, t_kill, 10.0)
    new_pid = new_pid or st.get("worker_pid")
    pushed = (st.get("frames") or {}).get("first_frame_wall")
    marks = {}
    if log_path.is_file() and new_pid:
        marks = parse_log(log_path.read_text(errors="replace"), pid=new_pid)
    return {
        "frozen_s": round(moved_at, 3),
        "first_frame_pushed_s": None if pushed is None else round(pushed - t_kill, 3),
        "worker_spawned_s": None if spawned is None else round(spawned, 3),
        "worker_marks_s": marks,  # seconds from the new worker's process start
        "screenshot_gap_ms_median": round(1000 * float(np.median(gaps)), 1) if gaps else None,
    }


def _status_after(run, t_kill: float, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    st: dict = {}
    while time.monotonic() < deadline:
        st = run.status()
        fr = st.get("frames") or {}
        if st.get("state") == "running" and (fr.get("first_frame_wall") or 0) > t_kill:
            return st
        time.sleep(0.05)
    return st


def _one_obs(
    root: Path, clip: Path, folder: Path, cache: Path, size: int, kills: int, width: int, script: Path | None
) -> dict[str, Any]:
    from worker.tools.obs_run import SCRIPT, ObsRun

    settings = {
        "worker_python": sys.executable,
        "characters_dir": str(folder),
        "camera": "file",
        "video_file": str(clip),
        "size": size,
        "renderer": "meshwarp",
        "output_mode": "direct",
        "autostart": True,
    }
    run = ObsRun(root, settings, scenes=["Scene A"], env={"STREAM_ANIMATOR_CACHE": str(cache)}, script=script or SCRIPT)
    try:
        run.start()
        visible, gaps = _wait_visible(run, run.started_at, 90.0, width)
        st = _status_after(run, run.started_at, 30.0)
        pushed = (st.get("frames") or {}).get("first_frame_wall")
        result: dict[str, Any] = {
            "obs_start_to_visible_s": round(visible, 3),
            "obs_start_to_first_push_s": None if pushed is None else round(pushed - run.started_at, 3),
            "screenshot_gap_ms_median": round(1000 * float(np.median(gaps)), 1) if gaps else None,
            "kills": [],
        }
        logs = [p for p in sorted(run.state_dir.glob("worker-*.log")) if not p.name.endswith("-stderr.log")]
        log_path = logs[0] if logs else run.state_dir / "missing.log"
        for _ in range(kills):
            _wait_moving(run, 30.0, width)
            _wait_healthy(run)
            result["kills"].append(_kill_and_watch(run, width, 30.0, log_path))
        return result
    finally:
        run.stop()
        run.kill_leftovers()


def bench_recovery(
    runs: int = 3,
    kills: int = 2,
    size: int = 512,
    clip: Path | None = None,
    characters: list[Path] | None = None,
    shot_width: int = 160,
    script: Path | None = None,
    say=lambda msg: None,
) -> dict[str, Any]:
    """`runs` OBS starts, each followed by `kills` worker kills; medians and every sample.

    `script`: another checkout's obs_script/stream_animator.py (its worker runs from that checkout),
    to measure a before/after on the same machine in one go.
    """
    from worker.tools.obs_run import missing_requirements

    reason = missing_requirements()
    if reason:
        raise UserError(f"--recovery needs a real OBS: {reason}")
    root = Path(tempfile.mkdtemp(prefix="bench-recovery-"))
    try:
        say("making the 720p camera clip and caching the characters ...")
        cam, folder = _inputs(root, clip, characters)
        cache = root / "cache"
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "worker",
                "preprocess",
                str(folder),
                "--cache",
                str(cache),
                "--size",
                str(size),
                "--renderer",
                "meshwarp",
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if r.returncode != 0:
            raise UserError(f"caching the characters failed: {r.stderr.strip().splitlines()[-1:]}")
        samples = []
        for i in range(runs):
            say(f"OBS run {i + 1}/{runs}: start, then {kills} worker kill(s) ...")
            samples.append(_one_obs(root / f"obs{i}", cam, folder, cache, size, kills, shot_width, script))
            k = samples[-1]["kills"]
            say(
                f"  start -> visible {samples[-1]['obs_start_to_visible_s']:.2f} s; frozen after kill: "
                + ", ".join(f"{x['frozen_s']:.2f} s" for x in k)
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    frozen = [k["frozen_s"] for s in samples for k in s["kills"]]
    starts = [s["obs_start_to_visible_s"] for s in samples]
    marks: dict[str, list[float]] = {}
    for s in samples:
        for k in s["kills"]:
            for name, at in k["worker_marks_s"].items():
                marks.setdefault(name, []).append(at)
    return {
        "setting": {
            "size": size,
            "characters": 3 if characters is None else len(characters),
            "camera": "720p clip (file)",
            "renderer": "meshwarp",
            "cached": True,
        },
        "obs_start_to_visible_s": {"median": _med(starts), "samples": starts},
        "kill_to_moving_s": {
            "median": _med(frozen),
            "max": max(frozen) if frozen else None,
            "samples": frozen,
            "target": FROZEN_TARGET_S,
            "met": bool(frozen) and float(np.median(frozen)) < FROZEN_TARGET_S,
        },
        "kill_to_first_push_s": {
            "median": _med(
                [
                    k["first_frame_pushed_s"]
                    for s in samples
                    for k in s["kills"]
                    if k["first_frame_pushed_s"] is not None
                ]
            )
        },
        "kill_to_worker_spawned_s": {
            "median": _med(
                [k["worker_spawned_s"] for s in samples for k in s["kills"] if k["worker_spawned_s"] is not None]
            )
        },
        "restarted_worker_marks_s": {
            name: _med(v) for name, v in sorted(marks.items(), key=lambda kv: float(np.median(kv[1])))
        },
        "load_avg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "runs": samples,
    }


def _med(values: list[float]) -> float | None:
    return round(float(np.median(values)), 3) if values else None


def format_report(r: dict[str, Any]) -> str:
    s, k = r["setting"], r["kill_to_moving_s"]
    lines = [
        f"setting: {s['size']}x{s['size']}, {s['characters']} cached characters, {s['camera']}, {s['renderer']}",
        f"OBS start -> first visible frame: {r['obs_start_to_visible_s']['median']:.2f} s median "
        f"({', '.join(f'{x:.2f}' for x in r['obs_start_to_visible_s']['samples'])})",
        f"worker killed -> picture moving again: {k['median']:.2f} s median, {k['max']:.2f} max "
        f"({', '.join(f'{x:.2f}' for x in k['samples'])}); target < {k['target']:g} s: "
        f"{'met' if k['met'] else 'NOT met'}",
        f"  kill -> new worker process {r['kill_to_worker_spawned_s']['median']} s, "
        f"-> first frame pushed into OBS {r['kill_to_first_push_s']['median']} s",
        "  the restarted worker, seconds from its process start (medians):",
    ]
    lines += [f"    {name:<24}{at:6.2f}" for name, at in r["restarted_worker_marks_s"].items()]
    lines.append(f"load average (1 min) at the end: {r['load_avg_1m']}")
    return "\n".join(lines)
