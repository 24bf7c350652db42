"""Benchmarks behind `stream-animator bench`: tracking, rendering, the offline chain per stage,
what the character cache saves, and the live worker as OBS runs it.

The per-frame ones run through the shared offline loop (`offline`), so `demo`, `bench` and the
fidelity table time the same stages the same way.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from worker.capture.video import VideoFileSource
from worker.characters.assets import CharacterAssets
from worker.characters.cache import CharacterCache
from worker.characters.face_finder import StillFaceFinder
from worker.characters.library import CharacterLibrary
from worker.characters.preprocess import PreprocessSettings, preprocess_image
from worker.render import FrameInput, Renderer, create_renderer
from worker.stats import stats_ms
from worker.tools.offline import StageTimes, animate, source_frames, track_frames

WARMUP_FRAMES = 5  # graph start-up and first detection, left out of the steady-state numbers


def bench_tracking(path: str | Path, max_frames: int = 600) -> dict:
    """Milliseconds per frame of tracking a video file (decoding not counted).

    `mesh_ms` is MediaPipe alone (with the BGR->RGB conversion); `post_ms` is head pose,
    features, One Euro smoothing and neutral/lost handling; `track_ms` is the two together.
    """
    from worker.track.mediapipe_tracker import FaceTracker

    times, found = StageTimes(), 0
    with VideoFileSource(path) as src, FaceTracker() as tracker:
        for f in track_frames(source_frames(src, max_frames), tracker, times, detail=True):
            found += f.face is not None and f.face.found
        size = src.size
    n = len(times.seconds.get("track", []))
    w = WARMUP_FRAMES if n > 2 * WARMUP_FRAMES else 0
    s = times.stats_ms(skip=w)
    return {
        "clip": Path(path).name,
        "size": list(size),
        "frames": n,
        "frames_with_face": found,
        "track_ms": s["track"],
        "mesh_ms": s["mesh"],
        "post_ms": s["post"],
    }


def bench_render(
    assets: CharacterAssets, frames: int = 300, renderer: Renderer | None = None, threads: int = 1
) -> dict:
    """Render (and retarget) times in ms over a sweep of poses: head turns, mouth, blinks.

    Pins OpenCV to `threads` threads while timing (start Python with OMP_NUM_THREADS=1 and
    OPENBLAS_NUM_THREADS=1 for a strict one-core figure). Reports wall-clock medians/p95 and the
    thread's CPU time (the honest figure on a machine that is busy with other work).
    """
    from worker.retarget.retargeter import Retargeter, RetargetOptions
    from worker.tools.sweep import driver_from_character, sweep_faces

    renderer = renderer or create_renderer("meshwarp", size=assets.size)
    rt = Retargeter(assets, RetargetOptions(idle=False))
    neutral = driver_from_character(assets)
    faces = sweep_faces(assets, frames)
    prev = cv2.getNumThreads()
    cv2.setNumThreads(threads)
    wall, cpu, rwall = [], [], []
    try:
        poses = []
        for f in faces:
            t0 = time.perf_counter()
            poses.append(rt.retarget(f, neutral))
            rwall.append((time.perf_counter() - t0) * 1000.0)
        for p in poses[:10]:
            renderer.draw(assets, FrameInput.of_pose(p))
        for p in poses:
            t0, c0 = time.perf_counter(), time.thread_time()
            renderer.draw(assets, FrameInput.of_pose(p))
            cpu.append((time.thread_time() - c0) * 1000.0)
            wall.append((time.perf_counter() - t0) * 1000.0)
    finally:
        cv2.setNumThreads(prev)
    w, c, r = np.array(wall), np.array(cpu), np.array(rwall)
    return {
        "renderer": renderer.name,
        "frames": len(w),
        "size": renderer.size,
        "threads": threads,
        "median_ms": round(float(np.median(w)), 3),
        "p95_ms": round(float(np.percentile(w, 95)), 3),
        "max_ms": round(float(w.max()), 3),
        "cpu_median_ms": round(float(np.median(c)), 3),
        "cpu_p95_ms": round(float(np.percentile(c, 95)), 3),
        "retarget_median_ms": round(float(np.median(r)), 3),
    }


def bench_characters(
    images: list[Path], settings: PreprocessSettings | None = None, repeats: int = 5, renderer: str = "meshwarp"
) -> dict:
    """Per character: cold preprocessing (+ the renderer's `prepare`) vs loading both from the
    cache on disk and from memory."""
    settings = settings or PreprocessSettings()
    t0 = time.perf_counter()
    finder = StillFaceFinder()
    preprocess_image(images[0], settings, finder)  # build and warm the graphs once, counted apart
    model_init = time.perf_counter() - t0
    preparer = create_renderer(renderer, size=settings.size)
    root = Path(tempfile.mkdtemp(prefix="sa-bench-cache-"))
    rows = []
    try:
        for img in images:
            cold = []
            for _ in range(max(1, repeats // 2)):
                t = time.perf_counter()
                preparer.prepare(preprocess_image(img, settings, finder).cutout)
                cold.append(time.perf_counter() - t)
            lib = CharacterLibrary(img.parent, CharacterCache(root), settings, finder, preparer)
            assert lib.load(img).status in ("built", "disk")
            disk, mem = [], []
            for _ in range(repeats):
                fresh = CharacterLibrary(img.parent, CharacterCache(root), settings, finder, preparer)
                t = time.perf_counter()
                r = fresh.load(img)
                assert r.assets is not None, r.error
                np.asarray(r.assets.image).sum()  # touch the pixels: a mapped file costs at first use
                disk.append(time.perf_counter() - t)
                t = time.perf_counter()
                r = fresh.load(img)
                mem.append(time.perf_counter() - t)
                assert r.status == "memory"
            c, d, m = (float(np.median(x)) for x in (cold, disk, mem))
            rows.append(
                {
                    "character": img.name,
                    "cold_ms": round(c * 1000, 2),
                    "disk_ms": round(d * 1000, 2),
                    "memory_ms": round(m * 1000, 4),
                    "cold_over_disk": round(c / d, 1),
                    "cold_over_memory": round(c / m, 0),
                }
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)
        finder.close()
        preparer.close()
    return {"model_init_ms": round(model_init * 1000, 1), "renderer": renderer, "characters": rows}


def bench_stages(clip: Path, character: Path, max_frames: int = 600, size: int = 512) -> dict:
    """Per-stage costs of the offline chain: capture, track, retarget, render, encode (mp4 in memory)."""
    import io

    import av

    from worker.output.base import composite
    from worker.track.mediapipe_tracker import FaceTracker

    assets = preprocess_image(character, PreprocessSettings(size=size))
    renderer = create_renderer("meshwarp", size=size)
    times = StageTimes()
    frames = 0
    buf = io.BytesIO()
    with VideoFileSource(clip) as src, FaceTracker() as tracker, av.open(buf, "w", format="mp4") as mux:
        stream = mux.add_stream("libx264", rate=round(src.fps))
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "veryfast"}
        for f in animate(track_frames(source_frames(src, max_frames), tracker, times), assets, renderer, times):
            assert f.rgba is not None  # animate renders every frame
            with times.stage("encode"):
                vf = av.VideoFrame.from_ndarray(composite(f.rgba, (0, 177, 64)), format="rgb24")
                for pkt in stream.encode(vf):
                    mux.mux(pkt)
            frames += 1
        for pkt in stream.encode(None):
            mux.mux(pkt)
    per_frame = times.stats_ms(skip=5)
    live = sum(per_frame[k]["median"] for k in ("track", "retarget", "render"))
    # The same frames with the character recomputed each time instead of taken from the cache.
    redo = []
    finder = StillFaceFinder()
    try:
        for _ in range(5):
            t = time.perf_counter()
            renderer.prepare(preprocess_image(character, PreprocessSettings(size=size), finder).cutout)
            redo.append(time.perf_counter() - t)
    finally:
        finder.close()
        renderer.close()
    redo_ms = float(np.median(redo)) * 1000
    return {
        "clip": clip.name,
        "character": character.name,
        "frames": frames,
        "stages_ms": per_frame,
        "track_retarget_render_ms": round(live, 3),
        "track_retarget_render_fps": round(1000.0 / live, 1) if live else None,
        "uncached_frame_ms": round(live + redo_ms, 1),
        "cache_saves_ratio": round((live + redo_ms) / live, 1) if live else None,
    }


LIVE_CPU_BUDGET_MS = 33.3  # CPU ms per delivered frame: 30 FPS on at most one core (issue 16)


def _cpu_s(ps) -> float | None:  # noqa: ANN001 - a psutil.Process
    import psutil

    try:
        t = ps.cpu_times()
    except psutil.Error:
        return None
    return float(t.user + t.system)


def bench_live(clip: Path, seconds: float, characters: Path | None = None, performance: str | None = None) -> dict:
    """The live worker as OBS would run it: a separate process reading a clip in real time, with the
    `obs` and `nut` outputs on and a reader on each (this process, like OBS). Samples the worker's
    memory every few seconds to show drift, and its own CPU time (user + system, all its threads):
    CPU ms per delivered frame and cores used from the first frame delivered with the face tracker
    running on (start-up apart; the run lasts `seconds` from there),
    against `LIVE_CPU_BUDGET_MS`."""
    import json
    import os
    import socket
    import subprocess
    import sys
    import threading

    import av
    import psutil

    from worker.control import protocol as P

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        nut_port = s.getsockname()[1]
    nut: dict[str, Any] = {"frames": 0}

    def nut_reader() -> None:  # OBS's Media Source: listen, decode, show
        try:
            with av.open(f"tcp://127.0.0.1:{nut_port}?listen=1", format="nut", timeout=60) as c:
                for _ in c.decode(video=0):
                    nut["frames"] += 1
        except Exception as e:  # noqa: BLE001 - the worker hanging up ends the stream
            nut["end"] = type(e).__name__

    threading.Thread(target=nut_reader, daemon=True).start()
    token = P.make_token()
    cmd = [
        sys.executable,
        "-m",
        "worker",
        "run",
        "--source",
        str(clip),
        "--output",
        "obs",
        "--output",
        f"nut:{nut_port}",
        "--duration",
        str(seconds + 120),
        "--json",
        "--ready-json",
    ]
    # stopped (SIGTERM: it prints its summary) `seconds` after its face tracker runs
    if characters is not None:
        cmd += ["--characters", str(characters)]
    cfg_dir = None
    if performance is not None:
        cfg_dir = tempfile.mkdtemp(prefix="bench-live-")
        cfg_path = Path(cfg_dir) / "config.yaml"
        cfg_path.write_text(f"performance: {performance}\n")
        cmd += ["--config", str(cfg_path)]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=dict(os.environ, **{P.ENV_TOKEN: token})
    )
    assert proc.stdout is not None  # stdout=PIPE
    ready = json.loads(proc.stdout.readline())
    rx = P.FrameReceiver(ready["frame_port"], token).connect()
    ctl = P.ControlClient(ready["control_port"], token, timeout=5.0).connect()
    tracking, next_ask = False, 0.0  # the CPU window opens once MediaPipe has loaded (the character idles before)
    ps = psutil.Process(proc.pid)
    rss: list[tuple[float, float]] = []
    shown = 0
    lat: list[float] = []
    t0 = time.monotonic()
    next_sample = t0
    cpu_first: tuple[float, float] | None = None  # (worker CPU s, monotonic) at the first frame shown
    cpu_last: tuple[float, float, int] | None = None  # (CPU s, monotonic, frames shown) at the last sample
    t_stop = float("inf")
    while proc.poll() is None:
        if time.monotonic() >= t_stop:
            proc.terminate()  # the worker stops and prints its summary
            t_stop = float("inf")
        try:
            f = rx.poll(0.05)
        except ConnectionError:
            break
        if f is not None:
            shown += 1
            lat.append(f.latency)
        now = time.monotonic()
        if not tracking and now >= next_ask:
            try:
                tracking = ctl.request("status").get("tracking") != "starting"
                if tracking:  # the measured run: `seconds` from here (MediaPipe loads after the start)
                    t_stop = now + seconds
            except (OSError, TimeoutError, P.ProtocolError, P.RemoteError):
                pass
            next_ask = now + 0.25
        c = _cpu_s(ps)
        if c is not None and shown and tracking:
            if cpu_first is None:
                cpu_first, shown_first = (c, now), shown
            cpu_last = (c, now, shown)
        if now >= next_sample:
            try:
                rss.append((now - t0, ps.memory_info().rss / 2**20))
            except psutil.Error:
                pass
            next_sample = now + max(1.0, seconds / 60)
    ctl.close()
    out, _ = proc.communicate(timeout=120)
    if cfg_dir is not None:
        shutil.rmtree(cfg_dir, ignore_errors=True)
    summary = json.loads(out.strip().splitlines()[-1])
    cpu = None
    if cpu_first is not None and cpu_last is not None and cpu_last[2] > shown_first:
        used, wall, frames = cpu_last[0] - cpu_first[0], cpu_last[1] - cpu_first[1], cpu_last[2] - shown_first
        per_frame = 1000 * used / frames
        cpu = {
            "cpu_s": round(used, 2),
            "wall_s": round(wall, 2),
            "frames": frames,
            "ms_per_frame": round(per_frame, 2),
            "cores": round(used / max(wall, 1e-6), 3),
            "budget_ms_per_frame": LIVE_CPU_BUDGET_MS,
            "within_budget": per_frame <= LIVE_CPU_BUDGET_MS,
            "load_avg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        }
    warm = [r for r in rss if r[0] > min(30.0, seconds / 3)]  # after start-up allocations settle
    slope = float(np.polyfit([r[0] for r in warm], [r[1] for r in warm], 1)[0]) * 60 if len(warm) > 3 else None
    return {
        "clip": clip.name,
        "seconds": seconds,
        "performance": performance or "config default",
        "worker": summary,
        "cpu": cpu,
        "obs_client": {"frames": shown, "fps": round(shown / seconds, 2), "latency_ms": stats_ms(lat[30:])},
        "nut_client_frames": nut["frames"],
        "rss_mb": {
            "start": round(warm[0][1], 1) if warm else None,
            "end": round(rss[-1][1], 1) if rss else None,
            "slope_mb_per_min": None if slope is None else round(slope, 3),
        },
    }


def bench_meshwarp_clip(clip: Path, character: Path, max_frames: int = 120, size: int = 512) -> dict:
    """meshwarp on a real clip through the offline loop: render (and retarget) ms per frame, to
    stand beside liveportrait's numbers on the same frames."""
    from worker.track.mediapipe_tracker import FaceTracker

    assets = preprocess_image(character, PreprocessSettings(size=size))
    renderer = create_renderer("meshwarp", size=size)
    times = StageTimes()
    try:
        with VideoFileSource(clip) as src, FaceTracker() as tracker:
            for _ in animate(track_frames(source_frames(src, max_frames), tracker, times), assets, renderer, times):
                pass
    finally:
        renderer.close()
    s = times.stats_ms(skip=WARMUP_FRAMES)
    frames = len(times.seconds.get("render", []))
    return {
        "renderer": "meshwarp",
        "clip": clip.name,
        "character": character.name,
        "frames": frames,
        "size": size,
        "render_ms": s["render"],
        "retarget_ms": s["retarget"],
        "fps_render_only": round(1000.0 / s["render"]["median"], 1) if s["render"]["median"] else None,
    }


def bench_liveportrait(
    clip: Path,
    character: Path,
    max_frames: int = 120,
    size: int = 512,
    models_dir: Path | None = None,
    standin: bool = False,
    device: str = "auto",
    **renderer_opts,
) -> dict:
    """liveportrait on a real clip (worker.tools.liveportrait_overhead): per-network ms, our own
    code's cost around the networks with every frame through W+G (render cache off), and the
    render cache's hit rate with it on. The graphs: `models_dir`, else the tests' stand-in
    variable, else the installed weights; `standin` with none of these builds the stand-ins.
    `weights` says what ran (verified / real architecture with random weights / stand-ins)."""
    from worker.render.liveportrait.weights import default_models_dir, standin_dir
    from worker.tools.liveportrait_overhead import measure

    models = Path(models_dir) if models_dir else standin_dir()
    if models is None and not standin:
        models = default_models_dir()
    if models is not None and standin:
        renderer_opts.setdefault("unverified", True)  # --standin: whatever graphs were given, labelled
    own = measure(clip, character, max_frames, models, size=size, cache=False, device=device, **renderer_opts)
    cached = measure(clip, character, max_frames, models, size=size, cache=True, device=device, **renderer_opts)
    label = own["weights"]
    if "verified" not in label or "unverified" in label:
        label += ": network ms and hit rate are NOT LivePortrait's published networks'"
    return {
        "renderer": "liveportrait",
        "weights": label,
        "clip": clip.name,
        "character": character.name,
        "frames": own["frames"],
        "size": size,
        "providers": own["providers"],
        "network_ms": own["network_ms"],
        "own_code_ms": {
            "wall": own["own_ms"],
            "wall_total": own["own_ms_total"],
            "cpu": own["own_cpu_ms"],
            "cpu_total": own["own_cpu_ms_total"],
            "note": "driver crop, motion maths + smoothing, paste-back; every frame through W+G",
        },
        "wall_ms_per_frame_no_cache": own["wall_ms_per_frame"],
        "render_cache": cached["cache"],
        "wall_ms_per_frame_with_cache": cached["wall_ms_per_frame"],
    }
