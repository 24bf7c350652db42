"""`stream-animator demo`: animate a character from a driving video into a video file.

No webcam and no network: with no arguments it animates the bundled sample character from the
bundled driving clip. One output frame per driver frame, at the driver's frame rate.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from worker.commands.arguments import add_renderer, add_size
from worker.errors import UserError
from worker.paths import DEMO_CHARACTER, SAMPLE_DRIVER


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--character", default=str(DEMO_CHARACTER), help="character image (default: bundled sample)")
    p.add_argument("--driver", default=str(SAMPLE_DRIVER), help="driving video (default: bundled clip)")
    p.add_argument(
        "--out",
        default="out/demo.mp4",
        help="output: .mp4 (opaque), .mov (qtrle, alpha), .webm (VP9, alpha) or a folder for PNGs",
    )
    add_size(p)
    add_renderer(p, "liveportrait on the CPU is slow, fine offline")
    p.add_argument(
        "--background",
        default="#00b140",
        help='background colour for .mp4: "#rrggbb" or "[r, g, b]" (default green screen)',
    )
    p.add_argument("--cache", default=None, help="character cache folder")
    p.add_argument(
        "--clear-out",
        action="store_true",
        help="--out is a PNG folder with frames from an earlier run: delete them first",
    )
    p.add_argument("--max-frames", type=int, default=0, help="stop after this many driver frames (0 = all)")
    p.add_argument("--sheet", help="also write a contact sheet .png or .jpg (driver | output at telling moments)")
    p.add_argument("--json", action="store_true", help="print one JSON object with counts and stage timings")
    add_liveportrait_arguments(p)


def add_liveportrait_arguments(p: argparse.ArgumentParser) -> None:
    """liveportrait's renderer options as flags (declared once in the renderer registry)."""
    from worker.render.registry import LP_OPTIONS

    for o in LP_OPTIONS:
        flag = f"--{o.name}"
        what = f" ({o.help})" if o.help else ""
        if o.kind == "bool":
            p.add_argument(flag, action="store_true", default=None, help=f"liveportrait: {o.name}{what}")
        else:
            p.add_argument(flag, choices=o.choices or None, help=f"liveportrait: {o.name}{what}")


def liveportrait_options(args: argparse.Namespace) -> dict:
    from worker.render.registry import LP_OPTIONS

    return {o.name: getattr(args, o.name) for o in LP_OPTIONS if getattr(args, o.name, None) is not None}


def cli_renderer(name: str, size: int, **opts):
    """The renderer `--renderer name` asks for, or one line naming the flag when it cannot run here."""
    from worker.render import create_renderer

    try:
        return create_renderer(name, size=size, **opts)
    except UserError as e:
        raise UserError(f"--renderer {name}: {str(e).removeprefix('renderer.name: ')}") from None


def run(args: argparse.Namespace) -> int:
    from worker.stopping import stop_on_signals

    with stop_on_signals():  # SIGTERM/SIGHUP unwind like Ctrl+C: the half-written video is removed
        return _demo(args)


def _demo(args: argparse.Namespace) -> int:
    from worker.capture.video import VideoFileSource
    from worker.characters.cache import open_cache
    from worker.characters.library import CharacterLibrary
    from worker.characters.preprocess import PreprocessSettings
    from worker.output.base import parse_colour
    from worker.output.file import FileOutput
    from worker.progress import progress
    from worker.stopping import check_stop
    from worker.tools.contact_sheet import ContactSheet, check_sheet_path
    from worker.tools.offline import StageTimes, animate, source_frames, track_frames
    from worker.track.mediapipe_tracker import FaceTracker

    # Every path is checked before any work: inputs exist, outputs are writable and are not inputs.
    character, driver = Path(args.character), Path(args.driver)
    if not driver.is_file():
        raise UserError(f"{driver}: " + ("is a folder, not a video" if driver.is_dir() else "driving video not found"))
    if not character.is_file():
        raise UserError(f"{character}: " + ("is a folder, not an image" if character.is_dir() else "no such file"))
    background = parse_colour(args.background, "--background")
    settings = PreprocessSettings(size=args.size)
    settings.validate()
    if not args.out.strip():
        raise UserError("--out is empty: give a .mp4, .mov or .webm file, or a folder for PNG frames")
    out_path = Path(args.out)
    refuse_overwriting_inputs("--out", out_path, [character, driver])
    if args.sheet is not None:
        refuse_overwriting_inputs("--sheet", Path(args.sheet), [character, driver, out_path])
        check_sheet_path(Path(args.sheet))
    source = VideoFileSource(driver)  # UserError naming the file if it cannot be decoded
    out = FileOutput(
        out_path, fps=source.fps, background=background, timing="fps", realtime=False, clear=args.clear_out
    )
    renderer = None
    times = StageTimes()
    frames_in = faces = 0
    total = getattr(source, "frame_count", None) or None
    if args.max_frames > 0:
        total = min(total or args.max_frames, args.max_frames)
    sheet = ContactSheet() if args.sheet else None
    ok = False
    try:
        out.start()  # an unwritable path fails here, before any work
        cache = open_cache(args.cache)
        renderer = cli_renderer(args.renderer, args.size, **liveportrait_options(args))
        loaded = CharacterLibrary(character.parent, cache, settings, preparer=renderer).load(character)
        if loaded.assets is None:
            raise UserError(loaded.error)
        for w in loaded.assets.meta.get("warnings", []):
            print(f"warning: {character}: {w}", file=sys.stderr)
        with FaceTracker() as tracker, progress(total, "rendering", "frame", disable=args.json) as bar:
            tracked = track_frames(source_frames(source, args.max_frames), tracker, times)
            for f in animate(tracked, loaded.assets, renderer, times):
                check_stop()
                # tracked here, then animated: each frame has its picture, face and render
                assert f.image is not None and f.face is not None and f.rgba is not None
                with times.stage("encode"):
                    out.send(f.rgba, f.index, f.timestamp)
                if sheet is not None:
                    sheet.offer(f.index, f.face, f.image, f.rgba)
                frames_in += 1
                faces += f.face.found
                bar.update(1)
        if frames_in == 0:
            raise UserError(f"{driver}: no frames could be read")
        if faces == 0:
            raise UserError(f"{driver}: no face found in any frame of the driving video")
        ok = True
    finally:
        source.close()
        status = ""
        if renderer is not None:
            status = renderer.status_line()  # before close: it reads the sessions' timings
            renderer.close()
        if ok:
            out.close()
        else:
            out.abort()
    if sheet is not None:
        try:
            sheet.save(args.sheet)
        except ValueError as e:  # no face in any frame: nothing to show
            raise UserError(f"{args.sheet}: not written: {e}") from None
    result = {
        "renderer": renderer.name,
        "renderer_reason": "; ".join(p for p in (renderer.selection, status) if p),
        "character": str(character),
        "driver": str(driver),
        "out": str(out.path),
        "fps": round(float(source.fps), 3),
        "frames_in": frames_in,
        "frames_out": out.frames,
        "frames_with_face": faces,
        "stages_ms": times.stats_ms(skip=3),
    }
    if args.json:
        print(json.dumps(result))
    else:
        s = result["stages_ms"]
        print(f"renderer {result['renderer_reason']}", file=sys.stderr)
        print(
            f"wrote {out.path}: {out.frames} frames at {result['fps']:g} fps "
            f"(face in {faces} of {frames_in} driver frames)"
        )
        print("median ms: " + ", ".join(f"{k} {v['median']:.2f}" for k, v in s.items()), file=sys.stderr)
    return 0


def refuse_overwriting_inputs(flag: str, out: Path, inputs: list[Path]) -> None:
    """`UserError` when `out` is one of `inputs` (or a folder holding one): a render never overwrites its input."""
    target = out.expanduser().resolve()
    for i in inputs:
        src = i.expanduser().resolve()
        if target == src:
            raise UserError(f"{flag} {out}: is an input of this render ({i}); choose another name")
        if target in src.parents:
            raise UserError(f"{flag} {out}: is the folder of an input ({i}); choose another folder")
