"""`stream-animator bench`: per-stage costs, and what the character cache saves."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from worker.errors import UserError
from worker.paths import SAMPLE_CHARACTERS_DIR, shared_testdata


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--clip", help="driving clip (default: d3.mp4 from ../shared/testdata, else the bundled clip)")
    p.add_argument("--characters", nargs="*", help="images to preprocess (default: the test portraits or samples)")
    p.add_argument("--frames", type=int, default=600, help="at most this many frames per clip (default 600)")
    p.add_argument("--cores", type=int, default=1,
                   help="pin the benchmark to this many CPU cores where the OS allows (default 1; 0 = all)")
    p.add_argument("--live", type=float, metavar="SECONDS",
                   help="instead: run the live worker for SECONDS from a 30 FPS clip with obs + nut outputs")
    p.add_argument("--fidelity", action="store_true",
                   help="instead: expression-transfer fidelity table (driver x portrait, re-tracked output)")
    p.add_argument("--floor", action="store_true",
                   help="with --fidelity: also re-track the picture moved rigidly (the instrument's floor)")
    p.add_argument("--audio", action="store_true",
                   help="instead: the voice: analysis cost per hop, latency of a click track through the live "
                   "worker (sound -> frame), offline talking renders and batch vs separate")
    p.add_argument("--no-offline", action="store_true", help="with --audio: skip the offline render runs (minutes)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _pin(cores: int) -> list[int] | None:
    if cores <= 0 or not hasattr(os, "sched_setaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    chosen = set(allowed[:cores])
    os.sched_setaffinity(0, chosen)
    return sorted(chosen)


def _default_clip() -> Path:
    td = shared_testdata()
    if td is not None:
        return td / "footage" / "driving" / "d3.mp4"
    from worker.paths import SAMPLE_DRIVER

    return SAMPLE_DRIVER


def _default_characters() -> list[Path]:
    td = shared_testdata()
    if td is not None:
        return sorted((td / "footage" / "portraits").glob("*.jpg"))
    return sorted(p for p in SAMPLE_CHARACTERS_DIR.iterdir() if p.suffix.lower() in (".png", ".jpg"))


def run(args: argparse.Namespace) -> int:
    from worker.tools import bench

    if args.audio:
        from worker.audio.bench import run_bench

        res = run_bench(offline=not args.no_offline)
        print(json.dumps(res) if args.json else json.dumps(res, indent=1))
        return 0
    clip = Path(args.clip) if args.clip else _default_clip()
    if not clip.is_file():
        raise UserError(f"{clip}: driving clip not found")
    if args.live:
        res = bench.bench_live(clip, args.live)
        print(json.dumps(res) if args.json else json.dumps(res, indent=1))
        return 0
    if args.fidelity:
        from worker.tools import fidelity

        td = shared_testdata()
        if td is None:
            raise UserError("--fidelity needs ../shared/testdata (the driving clips and portraits)")
        table = fidelity.fidelity_table(root=td, floor=args.floor)
        if args.json:
            from dataclasses import asdict

            print(json.dumps([asdict(r) | {"failures": r.failures()} for r in table]))
        else:
            print(fidelity.format_table(table))
        return 0 if all(not r.failures() for r in table) else 1
    pinned = _pin(args.cores)
    chars = [Path(c) for c in args.characters] if args.characters else _default_characters()
    for c in chars:
        if not c.is_file():
            raise UserError(f"{c}: character image not found")
    say = (lambda *a: None) if args.json else (lambda *a: print(*a, file=sys.stderr, flush=True))
    result: dict = {"cpu_cores": pinned or "all"}
    say(f"tracking {clip.name} ...")
    result["tracking"] = bench.bench_tracking(clip, args.frames)
    say(f"stages: capture, track, retarget, render, encode on {clip.name} ...")
    result["stages"] = bench.bench_stages(clip, chars[0], args.frames)
    say("characters: cold preprocessing vs cached loads ...")
    result["characters"] = bench.bench_characters(chars)
    if args.json:
        print(json.dumps(result))
    else:
        _print_report(result)
    return 0


def _print_report(r: dict) -> None:
    t = r["tracking"]
    print(f"CPU cores: {r['cpu_cores']}")
    print(f"tracking  {t['clip']}: {t['frames']} frames, face in {t['frames_with_face']}; "
          f"track {t['track_ms']['median']:.2f} ms median, {t['track_ms']['p95']:.2f} ms p95 "
          f"(face mesh {t['mesh_ms']['median']:.2f}, pose+features+smoothing {t['post_ms']['median']:.2f})")
    s = r["stages"]
    print(f"stages    {s['clip']} -> {s['character']}, {s['frames']} frames (ms median / p95):")
    print("  " + "  ".join(f"{k} {v['median']:.2f}/{v['p95']:.2f}" for k, v in s["stages_ms"].items()))
    print(f"  track+retarget+render {s['track_retarget_render_ms']:.2f} ms = {s['track_retarget_render_fps']:.0f} FPS;"
          f" recomputing the character every frame would cost {s['uncached_frame_ms']:.0f} ms "
          f"({s['cache_saves_ratio']:.0f}x)")
    c = r["characters"]
    print(f"characters (MediaPipe graphs built once: {c['model_init_ms']:.0f} ms)")
    print(f"  {'character':<14}{'cold ms':>10}{'disk ms':>10}{'memory ms':>12}{'cold/disk':>11}{'cold/memory':>13}")
    for row in c["characters"]:
        print(f"  {row['character']:<14}{row['cold_ms']:>10.1f}{row['disk_ms']:>10.2f}{row['memory_ms']:>12.4f}"
              f"{row['cold_over_disk']:>11.1f}{row['cold_over_memory']:>13.0f}")
