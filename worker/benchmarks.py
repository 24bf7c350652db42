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
from worker.stats import stats_ms


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

    from worker.live.animator import Animator
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


def bench_live(clip: Path, seconds: float, characters: Path | None = None) -> dict:
    """The live worker as OBS would run it: a separate process reading a clip in real time, with the
    `obs` and `nut` outputs on and a reader on each (this process, like OBS). Samples the worker's
    memory every few seconds to show drift."""
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
    nut = {"frames": 0}

    def nut_reader() -> None:  # OBS's Media Source: listen, decode, show
        try:
            with av.open(f"tcp://127.0.0.1:{nut_port}?listen=1", format="nut", timeout=60) as c:
                for _ in c.decode(video=0):
                    nut["frames"] += 1
        except Exception as e:  # noqa: BLE001 - the worker hanging up ends the stream
            nut["end"] = type(e).__name__

    threading.Thread(target=nut_reader, daemon=True).start()
    token = P.make_token()
    cmd = [sys.executable, "-m", "worker", "run", "--source", str(clip), "--output", "obs",
           "--output", f"nut:{nut_port}", "--duration", str(seconds), "--json", "--ready-json"]
    if characters is not None:
        cmd += ["--characters", str(characters)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=dict(os.environ, **{P.ENV_TOKEN: token}))
    ready = json.loads(proc.stdout.readline())
    rx = P.FrameReceiver(ready["frame_port"], token).connect()
    ps = psutil.Process(proc.pid)
    rss: list[tuple[float, float]] = []
    shown = 0
    lat: list[float] = []
    t0 = time.monotonic()
    next_sample = t0
    while proc.poll() is None:
        try:
            f = rx.poll(0.05)
        except ConnectionError:
            break
        if f is not None:
            shown += 1
            lat.append(f.latency)
        now = time.monotonic()
        if now >= next_sample:
            try:
                rss.append((now - t0, ps.memory_info().rss / 2**20))
            except psutil.Error:
                pass
            next_sample = now + max(1.0, seconds / 60)
    out, _ = proc.communicate(timeout=120)
    summary = json.loads(out.strip().splitlines()[-1])
    warm = [r for r in rss if r[0] > min(30.0, seconds / 3)]  # after start-up allocations settle
    slope = float(np.polyfit([r[0] for r in warm], [r[1] for r in warm], 1)[0]) * 60 if len(warm) > 3 else None
    return {
        "clip": clip.name,
        "seconds": seconds,
        "worker": summary,
        "obs_client": {"frames": shown, "fps": round(shown / seconds, 2),
                       "latency_ms": stats_ms(lat[30:])},
        "nut_client_frames": nut["frames"],
        "rss_mb": {"start": round(warm[0][1], 1) if warm else None, "end": round(rss[-1][1], 1) if rss else None,
                   "slope_mb_per_min": None if slope is None else round(slope, 3)},
    }
