"""The GPU check: LivePortrait's full-size networks on the best execution provider here.

Runs the same code the renderer runs (`load_networks`, `Network`, `Bound`: the feature volume
uploaded once to the provider's device, per frame only the keypoints bound, the output copied
out once) for the FP32 set and the GPU graph set (FP16 with the keypoint path in FP32, 5-D
GridSample rewritten), and reports per-network ms, the FP16 set's error against FP32 on the image,
and frames per second (motion + warp/generator + stitching/retargeting per new frame). The first
run on a CUDA, DirectML or CoreML machine gives the number the README's target (>= 30 FPS at 512²,
RTX 3060 class) is judged by. Where no GPU provider works (our own machines) the CPU provider runs
the same code, and the report says so.

Graphs: a models folder (verified weights, or any files with `unverified`), or the full-size
real-architecture build of worker/tools/liveportrait_graphs (random weights), made on request.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from worker.render.liveportrait.networks import NET_NAMES, Network
from worker.render.liveportrait.providers import choose
from worker.render.liveportrait.renderer import load_networks, weights_label

PER_FRAME = ("M", "W", "S", "eye", "lip")  # what runs for each new driver frame


def _time(fn: Callable[[], object], runs: int) -> float:
    """Median ms of `runs` calls after one warm-up call."""
    fn()
    ms = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        ms.append(1000.0 * (time.perf_counter() - t0))
    return float(np.median(ms))


def _per_network(nets: dict[str, Network], img, feat, kd, ks, runs: int) -> tuple[dict[str, float], np.ndarray]:
    w = nets["W"].bind({0: feat})  # the renderer's per-frame path: I/O binding, volume on the device
    ms = {
        "F": _time(lambda: nets["F"].run(img), max(1, runs // 4)),
        "M": _time(lambda: nets["M"].run(img), runs),
        "W": _time(lambda: w(kd, ks), runs),
        "S": _time(lambda: nets["S"].run(np.zeros(126, np.float32)), runs),
        "eye": _time(lambda: nets["eye"].run(np.zeros(66, np.float32)), runs),
        "lip": _time(lambda: nets["lip"].run(np.zeros(65, np.float32)), runs),
    }
    return ms, np.asarray(w(kd, ks)[0], np.float32)


def run_check(
    models_dir: Path, device: str = "auto", runs: int = 20, threads: int = 0, unverified: bool = False, log=print
) -> dict:
    """Measure both graph sets on `device`; returns the report (also logged line by line)."""
    label = weights_label(models_dir, unverified)
    choice = choose(device)
    report: dict = {"device": choice.device, "gpu": choice.gpu, "provider": choice.line(), "weights": label}
    if not choice.gpu:
        report["note"] = (
            "NO GPU execution provider works on this machine: the CPU provider ran the same code "
            f"({choice.reason or 'no CUDA, DirectML or CoreML here'})"
        )
        log(report["note"])
    log(f"{choice.line()}; graphs: {label} ({models_dir})")
    rng = np.random.default_rng(0)
    img = rng.random((1, 3, 256, 256), dtype=np.float32)
    motion = rng.normal(0, 0.02, (1, 21, 3)).astype(np.float32)  # the same driving motion for both sets
    results = {}
    out32 = None
    for precision in ("fp32", "fp16"):
        t0 = time.perf_counter()
        nets = load_networks(models_dir, choice, precision=precision, threads=threads)
        load_s = time.perf_counter() - t0
        feat = nets["F"].run(img)[0]
        kp = nets["M"].run(img)[-1].reshape(1, 21, 3).astype(np.float32)
        kd = kp + motion
        ms, out = _per_network(nets, img, feat, kd, kp, runs)
        frame_ms = sum(ms[k] for k in PER_FRAME)
        r: dict[str, Any] = {
            "ms": {NET_NAMES[k]: round(v, 3) for k, v in ms.items()},
            "ms_per_new_frame": round(frame_ms, 2),
            "fps": round(1000.0 / frame_ms, 2),
            "load_s": round(load_s, 1),
            "where": [n.line for n in nets.values()],
        }
        if out32 is None:
            out32 = out
        else:
            err = np.abs(out.astype(np.float64) - out32)
            r["error_vs_fp32"] = {
                "max": round(float(err.max()), 5),
                "mean": round(float(err.mean()), 6),
                "grey_levels_max": round(float(err.max()) * 255, 2),
            }
        results[precision] = r
        log(f"{precision}: " + ", ".join(f"{k} {v:.2f} ms" for k, v in r["ms"].items()))
        log(f"{precision}: {r['ms_per_new_frame']:.1f} ms of networks per new frame = {r['fps']:.2f} FPS")
        if "error_vs_fp32" in r:
            e = r["error_vs_fp32"]
            grey = f"{e['grey_levels_max']:.1f} grey levels"
            log(f"fp16 vs fp32 on the image: max {e['max']:.4f} ({grey}), mean {e['mean']}")
        del nets
    report["sets"] = results
    report["runs"] = runs
    report["threads"] = threads or "ONNX Runtime's default"
    return report
