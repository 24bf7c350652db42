"""Measure the liveportrait renderer on real footage: our own code's cost around the networks
(driver crop, motion maths and smoothing, paste-back) per frame, the networks' ms, and the render
cache's hit rate.

    python -m worker.tools.liveportrait_overhead [--driver d0.mp4] [--frames 60] [--models DIR] [--json]

Without weights it runs the stand-in networks (worker/render/liveportrait/standin.py), which
have the real signatures: our own code does exactly the same work as with the real networks,
so its cost is what is measured; the networks' ms and the hit rate mean something only with the
real weights (`--models`, or $STREAM_ANIMATOR_MODELS). Runs on one core (affinity) by default.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2


def _one_core() -> None:
    cv2.setNumThreads(1)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def character_arrays(path: Path, size: int):
    """(rgba at size², landmarks) of a character picture as the characters package prepares it
    (square crop around the face, alpha matte, MediaPipe landmarks in the crop)."""
    from worker.characters.preprocess import PreprocessSettings, preprocess_image

    assets = preprocess_image(path, PreprocessSettings(size=size))
    return assets.image, assets.landmarks


def measure(
    driver: Path,
    character: Path,
    frames: int = 60,
    models_dir: Path | None = None,
    size: int = 512,
    cache: bool = False,
    device: str = "cpu",
    device_paste: bool = True,
    **renderer_opts,
) -> dict:
    from worker.capture.video import VideoFileSource
    from worker.render.liveportrait import Driver, LivePortraitRenderer
    from worker.render.liveportrait.standin import build_models
    from worker.track.mediapipe_tracker import FaceTracker

    tmp = None
    if models_dir is None:
        tmp = tempfile.TemporaryDirectory()
        models_dir = build_models(Path(tmp.name))
    opts = dict(renderer_opts) if cache else {"cache_frames": 0, "hold": 0.0, **renderer_opts}
    if tmp:
        opts["unverified"] = True  # the stand-ins just built (labelled below)
    r = LivePortraitRenderer(size=size, models_dir=models_dir, device=device, device_paste=device_paste, **opts)
    rgba, lm = character_arrays(character, size)
    arrays = r.prepare_picture(rgba, lm)
    src = VideoFileSource(driver)
    tracked: list[Driver] = []
    with FaceTracker() as tracker:
        while len(tracked) < frames:
            f = src.read()
            if f is None:
                break
            face = tracker.process(f.image, f.timestamp)
            tracked.append(Driver.from_face(cv2.cvtColor(f.image, cv2.COLOR_BGR2RGB), face))
    src.close()
    t0 = time.perf_counter()
    for d in tracked:
        r.drive(arrays, d)
    wall = time.perf_counter() - t0
    s = r.stats()
    out = {
        "driver": str(driver),
        "frames": len(tracked),
        "frame_size": list(first.shape[1::-1]) if tracked and (first := tracked[0].frame) is not None else None,
        "output_size": size,
        "weights": "STAND-IN graphs (tests only; not LivePortrait)" if tmp else r.weights,
        "paste": "in W+G (device)" if device_paste else "OpenCV (host)",
        "own_ms": s["own_ms"],
        "own_ms_total": s["own_ms_total"],
        "own_cpu_ms": s["own_cpu_ms"],
        "own_cpu_ms_total": s["own_cpu_ms_total"],
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "network_ms": s["network_ms"],
        "cache": s["cache"],
        "wall_ms_per_frame": round(1000 * wall / max(len(tracked), 1), 2),
        "providers": s["providers"],
    }
    if tmp:
        tmp.cleanup()
    return out


def main(argv: list[str] | None = None) -> int:
    from worker.paths import DEMO_CHARACTER, shared_testdata

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    td = shared_testdata()
    default_driver = td / "footage" / "driving" / "d0.mp4" if td else None
    p.add_argument("--driver", type=Path, default=default_driver)
    p.add_argument("--character", type=Path, default=DEMO_CHARACTER)
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--models", type=Path, default=os.environ.get("STREAM_ANIMATOR_MODELS") or None)
    p.add_argument("--cache", action="store_true", help="render cache on (default off: every frame pasted)")
    p.add_argument("--host-paste", action="store_true", help="paste back with OpenCV instead of inside W+G")
    p.add_argument("--all-cores", action="store_true")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    if a.driver is None:
        print("no --driver and no ../shared/testdata", file=sys.stderr)
        return 2
    if not a.all_cores:
        _one_core()
    res = measure(a.driver, a.character, a.frames, a.models, cache=a.cache, device_paste=not a.host_paste)
    if a.json:
        print(json.dumps(res))
    else:
        size = f"{res['frame_size']} -> {res['output_size']}²"
        print(f"{res['frames']} frames of {a.driver.name} {size}, weights: {res['weights']}, paste: {res['paste']}")
        print(f"own code ms/frame (wall): {res['own_ms']}  total {res['own_ms_total']}")
        print(f"own code ms/frame (CPU of the render thread): {res['own_cpu_ms']}  total {res['own_cpu_ms_total']}")
        print(f"load average during the run: {res['load_average']}")
        print(f"network ms/run: {res['network_ms']}")
        print(f"cache: {res['cache']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
