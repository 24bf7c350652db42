"""Benchmarks behind `stream-animator bench`: tracking cost and what the character cache saves."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from worker.capture.video import VideoFileSource
from worker.characters.cache import CharacterCache
from worker.characters.face_finder import StillFaceFinder
from worker.characters.library import CharacterLibrary
from worker.characters.preprocess import PreprocessSettings, preprocess_image


def stats_ms(seconds: list[float]) -> dict:
    """Median and p95 in milliseconds, rounded for reports."""
    if not seconds:
        return {"median": None, "p95": None, "n": 0}
    a = np.asarray(seconds) * 1000.0
    return {"median": round(float(np.median(a)), 3), "p95": round(float(np.percentile(a, 95)), 3), "n": len(a)}


def bench_tracking(clip: Path, max_frames: int = 600) -> dict:
    """Face tracking ms per frame (mesh + pose + features + smoothing), and capture ms per frame."""
    from worker.track.mediapipe_tracker import FaceTracker

    cap_t, track_t, found = [], [], 0
    with VideoFileSource(clip) as src, FaceTracker() as tracker:
        while len(track_t) < max_frames:
            t0 = time.perf_counter()
            frame = src.read()
            t1 = time.perf_counter()
            if frame is None:
                break
            state = tracker.process(frame.image, frame.timestamp)
            t2 = time.perf_counter()
            cap_t.append(t1 - t0)
            track_t.append(t2 - t1)
            found += state.found
    # the first frames include graph warm-up: leave them out of the steady-state numbers
    return {
        "clip": clip.name,
        "frames": len(track_t),
        "frames_with_face": found,
        "capture_ms": stats_ms(cap_t[5:]),
        "track_ms": stats_ms(track_t[5:]),
    }


def bench_characters(images: list[Path], settings: PreprocessSettings | None = None, repeats: int = 5) -> dict:
    """Per character: cold preprocessing vs loading the cached result from disk and from memory."""
    settings = settings or PreprocessSettings()
    t0 = time.perf_counter()
    finder = StillFaceFinder()
    preprocess_image(images[0], settings, finder)  # build and warm the graphs once, counted apart
    model_init = time.perf_counter() - t0
    root = Path(tempfile.mkdtemp(prefix="sa-bench-cache-"))
    rows = []
    try:
        for img in images:
            cold = []
            for _ in range(max(1, repeats // 2)):
                t = time.perf_counter()
                preprocess_image(img, settings, finder)
                cold.append(time.perf_counter() - t)
            lib = CharacterLibrary(img.parent, CharacterCache(root), settings, finder)
            assert lib.load(img).status in ("built", "disk")
            disk, mem = [], []
            for _ in range(repeats):
                fresh = CharacterLibrary(img.parent, CharacterCache(root), settings, finder)
                t = time.perf_counter()
                r = fresh.load(img)
                np.asarray(r.assets.image).sum()  # touch the pixels: a mapped file costs at first use
                disk.append(time.perf_counter() - t)
                t = time.perf_counter()
                r = fresh.load(img)
                mem.append(time.perf_counter() - t)
                assert r.status == "memory"
            c, d, m = (float(np.median(x)) for x in (cold, disk, mem))
            rows.append({
                "character": img.name,
                "cold_ms": round(c * 1000, 2),
                "disk_ms": round(d * 1000, 2),
                "memory_ms": round(m * 1000, 4),
                "cold_over_disk": round(c / d, 1),
                "cold_over_memory": round(c / m, 0),
            })
    finally:
        shutil.rmtree(root, ignore_errors=True)
        finder.close()
    return {"model_init_ms": round(model_init * 1000, 1), "characters": rows}


def bench_stages(clip: Path, character: Path, max_frames: int = 600, size: int = 512) -> dict:
    """Per-stage costs of the offline chain: capture, track, retarget, render, encode (mp4 in memory)."""
    import io

    import av

    from worker.animator import Animator
    from worker.output.base import composite
    from worker.track.mediapipe_tracker import FaceTracker

    assets = preprocess_image(character, PreprocessSettings(size=size))
    animator = Animator("meshwarp", size=size)
    animator.set_character(assets)
    times: dict[str, list[float]] = {k: [] for k in ("capture", "track", "retarget", "render", "encode")}
    buf = io.BytesIO()
    with VideoFileSource(clip) as src, FaceTracker() as tracker, av.open(buf, "w", format="mp4") as mux:
        stream = mux.add_stream("libx264", rate=round(src.fps))
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "veryfast"}
        while len(times["track"]) < max_frames:
            t0 = time.perf_counter()
            frame = src.read()
            t1 = time.perf_counter()
            if frame is None:
                break
            face = tracker.process(frame.image, frame.timestamp)
            t2 = time.perf_counter()
            rgba = animator.animate(face, tracker.neutral)
            t3 = time.perf_counter()
            vf = av.VideoFrame.from_ndarray(composite(rgba, (0, 177, 64)), format="rgb24")
            for pkt in stream.encode(vf):
                mux.mux(pkt)
            t4 = time.perf_counter()
            times["capture"].append(t1 - t0)
            times["track"].append(t2 - t1)
            times["retarget"].append(animator.last_ms["retarget"] / 1000)
            times["render"].append(animator.last_ms["render"] / 1000)
            times["encode"].append(t4 - t3)
        for pkt in stream.encode(None):
            mux.mux(pkt)
    per_frame = {k: stats_ms(v[5:]) for k, v in times.items()}
    live = sum(per_frame[k]["median"] for k in ("track", "retarget", "render"))
    # The same frames with the character recomputed each time instead of taken from the cache.
    redo = []
    finder = StillFaceFinder()
    try:
        for _ in range(5):
            t = time.perf_counter()
            preprocess_image(character, PreprocessSettings(size=size), finder)
            redo.append(time.perf_counter() - t)
    finally:
        finder.close()
        animator.close()
    redo_ms = float(np.median(redo)) * 1000
    return {
        "clip": clip.name,
        "character": character.name,
        "frames": len(times["track"]),
        "stages_ms": per_frame,
        "track_retarget_render_ms": round(live, 3),
        "track_retarget_render_fps": round(1000.0 / live, 1) if live else None,
        "uncached_frame_ms": round(live + redo_ms, 1),
        "cache_saves_ratio": round((live + redo_ms) / live, 1) if live else None,
    }
