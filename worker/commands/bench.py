"""`stream-animator bench`: per-stage costs, and what the character cache saves."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from worker.commands.arguments import renderer_names
from worker.errors import UserError
from worker.paths import SAMPLE_CHARACTERS_DIR, bench_clip, shared_testdata


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--clip", help="driving clip (default: d3.mp4 from ../shared/testdata, else the bundled clip)")
    p.add_argument("--characters", nargs="*", help="images to preprocess (default: the test portraits or samples)")
    p.add_argument("--frames", type=int, help="at most this many frames per clip (default 600; --renderer: 120)")
    p.add_argument(
        "--cores",
        type=int,
        default=1,
        help="pin the benchmark to this many CPU cores where the OS allows (default 1; 0 = all)",
    )
    p.add_argument(
        "--live",
        type=float,
        metavar="SECONDS",
        help="instead: run the live worker for SECONDS from a 30 FPS clip with obs + nut outputs",
    )
    p.add_argument(
        "--performance",
        choices=("low", "balanced", "quality"),
        help="with --live: the worker's performance setting (default: the config's, balanced)",
    )
    p.add_argument(
        "--fidelity",
        action="store_true",
        help="instead: expression-transfer fidelity table (driver x portrait, re-tracked output)",
    )
    p.add_argument(
        "--floor",
        action="store_true",
        help="with --fidelity: also re-track the picture moved rigidly (the instrument's floor)",
    )
    p.add_argument(
        "--audio",
        action="store_true",
        help="instead: the voice: analysis cost per hop, latency of a click track through the live "
        "worker (sound -> frame), offline talking renders and batch vs separate",
    )
    p.add_argument("--no-offline", action="store_true", help="with --audio: skip the offline render runs (minutes)")
    p.add_argument(
        "--soak",
        type=float,
        metavar="MINUTES",
        help="instead: a long stream (the clip as the camera, a voice file, both looped; NUT output "
        "decoded) with the worker's memory sampled: growth in MiB a minute (60 is the benchmark)",
    )
    p.add_argument("--voice", help="with --soak: the voice file (default: ten seconds of espeak-ng speech)")
    p.add_argument(
        "--obs",
        type=int,
        nargs="?",
        const=3,
        metavar="ROUNDS",
        help="instead: in a real OBS (headless), killed worker -> frames again and OBS start -> first "
        "frame, over ROUNDS rounds (default 3); exit 1 when a target (2 s, 3 s) is not met",
    )
    p.add_argument(
        "--ws",
        type=float,
        nargs="?",
        const=5.0,
        metavar="SECONDS",
        help="instead: the ws output's Browser Source page in chromium: painted FPS and capture -> "
        "painted latency per pixel format, worker CPU per client, restart -> painting again (2 s)",
    )
    p.add_argument(
        "--renderer",
        choices=renderer_names(with_auto=False),
        help="instead: this renderer on the clip (liveportrait: per-network ms, our own code's ms, "
        "render-cache hit rate), beside meshwarp on the same frames (default 120 frames)",
    )
    p.add_argument(
        "--standin",
        action="store_true",
        help="with --renderer liveportrait and no weights: run the stand-in graphs (tests' standin.py); "
        "numbers labelled as such: only our own code's cost means something",
    )
    p.add_argument("--models", help="with --renderer liveportrait: folder holding liveportrait/*.onnx")
    p.add_argument("--device", default="auto", help="with --renderer liveportrait: auto, cuda, dml, coreml or cpu")
    p.add_argument(
        "--recovery",
        action="store_true",
        help="instead: in a real OBS (headless, Xvfb): OBS start -> first visible frame, and the worker "
        "killed -> the picture moving again, at 512x512 with three cached characters and a 720p "
        "clip as the camera, with the restarted worker's start-up marks",
    )
    p.add_argument(
        "--ndi",
        type=float,
        metavar="SECONDS",
        help="instead: the live worker sending over NDI (run --output ndi) from the 30 FPS clip, and "
        "the frames per second a receiver on this machine gets, SECONDS per receiving mode",
    )
    p.add_argument(
        "--synthetic",
        action="store_true",
        help="with --ndi: feed the NDI output 30 frames a second from the benchmark itself instead of "
        "the live worker (the output's own limit, apart from the pipeline's speed)",
    )
    p.add_argument("--runs", type=int, default=3, help="with --recovery: OBS starts (default 3)")
    p.add_argument("--kills", type=int, default=2, help="with --recovery: worker kills per OBS start (default 2)")
    p.add_argument(
        "--precision",
        choices=("auto", "fp16", "fp32"),
        help="with --renderer liveportrait: auto (FP16 on GPUs), fp16 (the GPU graph set, also on the CPU) or fp32",
    )
    p.add_argument(
        "--unverified",
        action="store_true",
        default=None,
        help="with --renderer liveportrait: run files that are not verified (labelled as such)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _pin(cores: int) -> list[int] | None:
    if cores <= 0 or not hasattr(os, "sched_setaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    chosen = set(allowed[:cores])
    os.sched_setaffinity(0, chosen)
    return sorted(chosen)


def _default_characters() -> list[Path]:
    td = shared_testdata()
    if td is not None:
        return sorted((td / "footage" / "portraits").glob("*.jpg"))
    return sorted(p for p in SAMPLE_CHARACTERS_DIR.iterdir() if p.suffix.lower() in (".png", ".jpg"))


def run(args: argparse.Namespace) -> int:
    from worker.tools import bench

    if args.audio:
        from worker.tools.audio_bench import run_bench

        res = run_bench(offline=not args.no_offline)
        print(json.dumps(res) if args.json else json.dumps(res, indent=1))
        return 0
    if args.recovery:
        return _run_recovery(args)
    if args.ws is not None:
        from worker.tools.ws_bench import main as ws_main

        return ws_main(args.ws, args.json)
    clip = Path(args.clip) if args.clip else bench_clip()
    if not clip.is_file():
        raise UserError(f"{clip}: driving clip not found")
    if args.soak:
        from worker.tools.soak import run_soak

        return run_soak(args.soak, clip, args.voice, args.characters, args.json)
    if args.obs is not None:
        return _run_obs(args, clip)
    if args.ndi:
        from worker.tools import ndi_rate

        res = ndi_rate.bench_ndi(clip, args.ndi, synthetic=args.synthetic)
        print(json.dumps(res) if args.json else ndi_rate.format_report(res))
        return 0
    if args.live:
        res = bench.bench_live(clip, args.live, performance=args.performance)
        print(json.dumps(res) if args.json else json.dumps(res, indent=1))
        cpu = res["cpu"]
        if cpu is None:
            print("CPU budget: no frames delivered with the face tracker running, not measured", file=sys.stderr)
            return 1
        print(
            f"CPU budget: {cpu['ms_per_frame']:.1f} ms per delivered frame ({cpu['cores']:.2f} cores) against "
            f"{cpu['budget_ms_per_frame']:.1f} ms: {'met' if cpu['within_budget'] else 'NOT met'}",
            file=sys.stderr,
        )
        return 0 if cpu["within_budget"] else 1
    if args.renderer:
        return _run_renderer(args, clip)
    if args.frames is None:
        args.frames = 600
    if args.fidelity:
        from worker.tools import fidelity

        td = shared_testdata()
        if td is None:
            raise UserError("--fidelity needs ../shared/testdata (the driving clips and portraits)")
        table = fidelity.fidelity_table(root=td, floor=args.floor)
        looks = _looks(td)
        if args.json:
            from dataclasses import asdict

            print(json.dumps({"pairs": [asdict(r) | {"failures": r.failures()} for r in table], **looks}))
        else:
            print(fidelity.format_table(table))
            for name, shapes in looks["vowels"].items():
                print(
                    f"vowels of {name} (re-tracked, inter-ocular units): "
                    + ", ".join(f"{v['vowel']} {v['width']:.2f} wide x {v['height']:.2f}" for v in shapes)
                )
            for name, shapes in looks["camera_vowels"].items():
                print(
                    f"camera vowels of {name} (d12's own frames, re-tracked; the driver's in brackets): "
                    + ", ".join(
                        f"{v['label']} {v['output']['width']:.2f} wide x {v['output']['height']:.2f} "
                        f"({v['driver']['width']:.2f} x {v['driver']['height']:.2f})"
                        for v in shapes
                    )
                )
            for name, f in looks["fringe"].items():
                print(
                    f"edge fringe of {name}: {f['distance']:.1f} levels, lightness {f['lightness']:+.1f} "
                    f"(its own texture one ring in: {f['texture']:.1f}; the picture's own outline: "
                    f"{f['outline']:.1f})"
                )
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


def _run_recovery(args: argparse.Namespace) -> int:
    """`bench --recovery`: exit 1 when the frozen picture after a worker crash is not under target."""
    from worker.tools import recovery

    if args.runs < 1 or args.kills < 1:
        raise UserError("--runs and --kills must be at least 1")
    clip = Path(args.clip) if args.clip else None
    if clip is not None and not clip.is_file():
        raise UserError(f"{clip}: driving clip not found")
    chars = [Path(c) for c in args.characters] if args.characters else None
    say = (lambda m: None) if args.json else (lambda m: print(m, file=sys.stderr, flush=True))
    res = recovery.bench_recovery(runs=args.runs, kills=args.kills, clip=clip, characters=chars, say=say)
    print(json.dumps(res) if args.json else recovery.format_report(res))
    return 0 if res["kill_to_moving_s"]["met"] else 1


def _run_obs(args: argparse.Namespace, clip: Path) -> int:
    """`bench --obs`: recovery and start times in a real OBS, judged against their targets."""
    from worker.paths import DEMO_CHARACTER
    from worker.tools.obs_bench import bench_obs

    if args.obs < 1:
        raise UserError(f"--obs {args.obs}: the number of rounds must be at least 1")
    character = Path(args.characters[0]) if args.characters else DEMO_CHARACTER
    if not character.is_file():
        raise UserError(f"{character}: character image not found")
    res = bench_obs(clip, character, args.obs, say=lambda s: print(s, file=sys.stderr, flush=True))
    print(json.dumps(res) if args.json else json.dumps(res, indent=1))
    t = res["targets_s"]
    print(
        f"targets: killed worker -> frames {res['worker_kill_to_frames_median_s']:.2f} s (median) against "
        f"{t['worker_kill_to_frames']:.0f} s; OBS start -> first frame {res['start_cached_median_s']:.2f} s "
        f"against {t['start_cached']:.0f} s: {'met' if res['targets_met'] else 'NOT met'}",
        file=sys.stderr,
    )
    return 0 if res["targets_met"] else 1


def _run_renderer(args: argparse.Namespace, clip: Path) -> int:
    """`bench --renderer NAME`: NAME on the clip, and meshwarp beside it."""
    from worker.paths import DEMO_CHARACTER
    from worker.tools import bench

    frames = args.frames or 120
    character = Path(args.characters[0]) if args.characters else DEMO_CHARACTER
    if not character.is_file():
        raise UserError(f"{character}: character image not found")
    models = Path(args.models) if args.models else None
    if args.renderer == "liveportrait" and not args.standin and not args.unverified:
        from worker.render.liveportrait import availability

        ok, reason = availability(models)
        if not ok:
            raise UserError(
                f"--renderer liveportrait: {reason} (or add --standin to time our own code on stand-in graphs)"
            )
    pinned = _pin(args.cores)
    result: dict = {"cpu_cores": pinned or "all", "clip": clip.name, "character": character.name}
    if args.renderer == "liveportrait":
        if not args.json:
            print(
                f"liveportrait on {clip.name} ({models or 'stand-in graphs' if args.standin else 'weights'}) ...",
                file=sys.stderr,
            )
        opts = {k: v for k, v in (("precision", args.precision), ("unverified", args.unverified)) if v is not None}
        if args.cores > 0:
            opts["threads"] = args.cores  # ONNX Runtime's pool too, not only the process's affinity
        result["liveportrait"] = bench.bench_liveportrait(
            clip, character, frames, models_dir=models, standin=args.standin, device=args.device, **opts
        )
    result["meshwarp"] = bench.bench_meshwarp_clip(clip, character, frames)
    if args.json:
        print(json.dumps(result))
    else:
        _print_renderers(result)
    return 0


def _print_renderers(r: dict) -> None:
    print(f"CPU cores: {r['cpu_cores']}; clip {r['clip']} -> {r['character']}")
    lp = r.get("liveportrait")
    if lp:
        print(f"liveportrait ({lp['weights']}), {lp['frames']} frames at {lp['size']}²:")
        print("  " + "; ".join(lp["providers"]))
        print("  network ms/run: " + ", ".join(f"{k} {v:.2f}" for k, v in lp["network_ms"].items()))
        o = lp["own_code_ms"]
        print(f"  our own code ms/frame: wall {o['wall_total']:.2f} {o['wall']}, CPU {o['cpu_total']:.2f} {o['cpu']}")
        c = lp["render_cache"]
        print(
            f"  render cache: hit rate {c['hit_rate']:.2f} ({c['hits']} hits + {c['holds']} holds of {c['frames']}); "
            f"{lp['wall_ms_per_frame_with_cache']:.1f} ms/frame with it, "
            f"{lp['wall_ms_per_frame_no_cache']:.1f} without"
        )
    m = r["meshwarp"]
    print(
        f"meshwarp, {m['frames']} frames at {m['size']}²: render {m['render_ms']['median']:.2f} ms median "
        f"({m['render_ms']['p95']:.2f} p95), retarget {m['retarget_ms']['median']:.2f} ms"
    )


def _print_report(r: dict) -> None:
    t = r["tracking"]
    print(f"CPU cores: {r['cpu_cores']}")
    print(
        f"tracking  {t['clip']}: {t['frames']} frames, face in {t['frames_with_face']}; "
        f"track {t['track_ms']['median']:.2f} ms median, {t['track_ms']['p95']:.2f} ms p95 "
        f"(face mesh {t['mesh_ms']['median']:.2f}, pose+features+smoothing {t['post_ms']['median']:.2f})"
    )
    s = r["stages"]
    print(f"stages    {s['clip']} -> {s['character']}, {s['frames']} frames (ms median / p95):")
    print("  " + "  ".join(f"{k} {v['median']:.2f}/{v['p95']:.2f}" for k, v in s["stages_ms"].items()))
    print(
        f"  track+retarget+render {s['track_retarget_render_ms']:.2f} ms = {s['track_retarget_render_fps']:.0f} FPS;"
        f" recomputing the character every frame would cost {s['uncached_frame_ms']:.0f} ms "
        f"({s['cache_saves_ratio']:.0f}x)"
    )
    c = r["characters"]
    print(f"characters (MediaPipe graphs built once: {c['model_init_ms']:.0f} ms)")
    print(f"  {'character':<14}{'cold ms':>10}{'disk ms':>10}{'memory ms':>12}{'cold/disk':>11}{'cold/memory':>13}")
    for row in c["characters"]:
        print(
            f"  {row['character']:<14}{row['cold_ms']:>10.1f}{row['disk_ms']:>10.2f}{row['memory_ms']:>12.4f}"
            f"{row['cold_over_disk']:>11.1f}{row['cold_over_memory']:>13.0f}"
        )


def _looks(testdata: Path) -> dict:
    """What the fidelity table does not show: each vowel's re-tracked mouth (bundled character and
    the shared photos) and the edge fringe of every character's cut-out."""
    from dataclasses import asdict

    from worker.characters.preprocess import preprocess_image
    from worker.paths import DEMO_CHARACTER, SAMPLE_CHARACTER
    from worker.tools.edge_fringe import edge_fringe, picture_of
    from worker.tools.fidelity import track_driver
    from worker.tools.vowel_shapes import camera_vowel_shapes, vowel_shapes

    portraits = testdata / "footage" / "portraits"
    chars = [DEMO_CHARACTER, SAMPLE_CHARACTER, *(portraits / f"{c}.jpg" for c in ("s9", "s10", "s12", "s42"))]
    vowels = {p.name: [asdict(s) for s in vowel_shapes(p)] for p in (DEMO_CHARACTER, portraits / "s12.jpg")}
    # the camera's: a talking driver's own A-, O/U- and I/E-shaped frames, held and re-tracked
    clip = testdata / "footage" / "driving" / "d12.mp4"
    tracked = track_driver(clip)
    camera = {
        p.name: [asdict(s) for s in camera_vowel_shapes(p, clip, tracked=tracked)]
        for p in (DEMO_CHARACTER, portraits / "s12.jpg")
    }
    fringe = {}
    for p in chars:  # with the picture's own outline where we cut it out (see edge_fringe)
        assets = preprocess_image(p)
        fringe[p.name] = asdict(edge_fringe(assets.image, picture_of(assets)))
    return {"vowels": vowels, "camera_vowels": camera, "fringe": fringe}
