"""`stream-animator run`: the live worker (camera -> animated character -> outputs + control channel)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time

from worker.commands.arguments import add_renderer
from worker.control.protocol import Status
from worker.errors import UserError

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML config file (default: built-in defaults)")
    p.add_argument(
        "--source", help="webcam:0, webcam:<name>, a video file, or none: no camera (overrides camera.source)"
    )
    p.add_argument(
        "--mic",
        help="the voice moves the mouth: default, a device index or name (see `microphones`), or an audio/video "
        "file, looped (overrides voice.mic)",
    )
    p.add_argument(
        "--lipsync",
        choices=("off", "assist", "always"),
        help="with --mic: assist = the voice takes the mouth while the face is lost (default), always = the "
        "voice drives the mouth, the camera the rest (overrides voice.lipsync)",
    )
    p.add_argument("--characters", help="characters folder (overrides characters.folder)")
    add_renderer(p, from_config=True)
    p.add_argument(
        "--character",
        help="character to start with: a file name in the folder, or a full path (its folder "
        "becomes the characters folder unless --characters is given)",
    )
    p.add_argument(
        "--output",
        action="append",
        metavar="TYPE[:VALUE]",
        help="output(s) instead of the config's: obs, ws (Browser Source page + WebSocket API), nut:9999, "
        "file:out.mp4, window, spout:Name, virtualcam:/dev/video10 (`describe` lists each output's short form)",
    )
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--control-port", type=int, help="control channel port (0 = any free port)")
    p.add_argument("--parent-pid", type=int, help="exit when this process (e.g. OBS) is gone")
    p.add_argument(
        "--ready-json",
        action="store_true",
        help="print one JSON line with the ports once listening (for the OBS script)",
    )
    p.add_argument("--json", action="store_true", help="print a JSON summary on the last line at the end")


def character_overrides(character: str, folder: str | None) -> dict[str, str]:
    """`--character`: a name in the characters folder, or a path to a picture (whose folder is
    then the characters folder, unless `--characters` names one that holds it). A bare name that
    is a file in the current folder is that file (`--character blue.png` means ./blue.png)."""
    from pathlib import Path

    p = Path(character).expanduser()
    in_folder = folder is not None and (Path(folder).expanduser() / character).is_file()
    if len(p.parts) == 1 and not p.is_absolute() and (in_folder or not p.is_file()):
        return {"characters.current": character}  # a name (or stem) in the characters folder
    if p.is_dir():
        raise UserError(f"--character {character}: is a folder (use --characters for a folder)")
    if not p.is_file():
        raise UserError(f"--character {character}: no such file")
    if folder is not None and Path(folder).expanduser().resolve() != p.resolve().parent:
        raise UserError(f"--character {character}: is not in --characters {folder}")
    return {"characters.folder": str(p.resolve().parent), "characters.current": p.name}


def output_specs(specs: list[str]) -> list[dict]:
    """--output values -> output configs, each parsed by its output's registry entry. When none
    of them can run on this machine, that is the one error (a line per output); when some can,
    the others are kept and fail at start, and `run` says once which run and which do not."""
    from worker.output.registry import output_entry, parse_output_spec

    out, refused = [], []
    for spec in specs:
        cfg = parse_output_spec(spec)
        ok, reason = output_entry(cfg["type"]).availability()
        if not ok:
            refused.append(f"--output {spec}: {reason}")
        out.append(cfg)
    if refused and len(refused) == len(out):
        raise UserError(refused[0] if len(refused) == 1 else "no output can run:\n  " + "\n  ".join(refused))
    return out


def _token() -> tuple[str, bool]:
    from worker.control import protocol as P

    tok = os.environ.get(P.ENV_TOKEN, "").strip()
    return (tok, False) if tok else (P.make_token(), True)


def watch_parent(pid: int, stop: threading.Event) -> None:
    """Set `stop` when process `pid` ends (OBS killed without unloading its scripts)."""
    import psutil

    if not psutil.pid_exists(pid):
        raise UserError(f"--parent-pid {pid}: no such process")

    def run() -> None:
        while not stop.wait(0.5):
            try:
                gone = psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
            except psutil.NoSuchProcess:
                gone = True
            if gone:
                log.info("parent process %d is gone: stopping", pid)
                stop.set()
                return

    threading.Thread(target=run, name="parent-watch", daemon=True).start()


def run(args: argparse.Namespace) -> int:
    from worker.config import Settings, load_config
    from worker.control import endpoints
    from worker.control import protocol as P
    from worker.live.startup import STARTUP

    STARTUP.mark("command line read")
    from worker.live.worker import LiveWorker

    STARTUP.mark("worker imported")
    overrides = {}
    if args.source:
        overrides["camera.source"] = args.source
    if args.mic:
        overrides["voice.mic"] = args.mic
    if args.lipsync:
        overrides["voice.lipsync"] = args.lipsync
    if args.characters:
        overrides["characters.folder"] = args.characters
    if args.renderer:
        overrides["renderer.name"] = args.renderer
    if args.character:
        overrides.update(character_overrides(args.character, args.characters))
    if args.control_port is not None:
        overrides["control.port"] = args.control_port
    elif os.environ.get(P.ENV_CONTROL_PORT, "").isdigit():
        overrides["control.port"] = int(os.environ[P.ENV_CONTROL_PORT])
    cfg = load_config(args.config, overrides)
    if args.lipsync and args.lipsync != "off" and not cfg["voice"]["mic"]:
        raise UserError(
            f"--lipsync {args.lipsync}: there is no voice to follow; add --mic (default, a device or an audio file) "
            "or set voice.mic in the config"
        )
    if args.output:
        cfg["outputs"] = output_specs(args.output)
    if args.duration is not None and args.duration <= 0:
        raise UserError("--duration must be positive")

    stop = threading.Event()
    if args.parent_pid:
        watch_parent(args.parent_pid, stop)
    for sig in (signal.SIGTERM, signal.SIGINT, getattr(signal, "SIGHUP", None)):  # every stop ends cleanly
        if sig is not None:
            signal.signal(sig, lambda *_: stop.set())

    token, generated = _token()
    fp = os.environ.get(P.ENV_FRAME_PORT, "")
    worker = LiveWorker(Settings.from_dict(cfg), token, frame_port=int(fp) if fp.isdigit() else None).start()
    for w in worker.fanout.warnings:
        print(f"not running: output {w}", file=sys.stderr)
    names = [o.name for o in worker.fanout.outputs]
    stop_how = f"stops after {args.duration:g} s" if args.duration else "Ctrl+C to stop"
    print(
        f"running: {len(names)} output{'s' * (len(names) != 1)} ({', '.join(names) or 'none'}), {stop_how}",
        file=sys.stderr,
        flush=True,
    )
    if worker.browser_source_url:  # the same address every start: set up once in OBS
        print(f"Browser Source: {worker.browser_source_url}", file=sys.stderr, flush=True)
    if args.ready_json:
        sys.stdout.write(worker.ready_line().decode())
        sys.stdout.flush()
    STARTUP.mark("ready")
    where = None
    if generated:  # for `stream-animator ctl`: one file per worker, removed at the end
        where = endpoints.save(worker.control_port, token)
        log.info("control channel on 127.0.0.1:%d (port and token in %s)", worker.control_port, where)
    t_end = time.monotonic() + args.duration if args.duration else None
    try:
        while not stop.is_set() and not worker.pipeline.stop_event.is_set():
            if t_end is not None and time.monotonic() >= t_end:
                break
            stop.wait(0.1)
    finally:
        endpoints.remove(where)
        status = worker.stop()
    if args.json:
        print(json.dumps(summary(status)))
    return 0


def summary(s: Status) -> dict:
    """The end-of-run JSON: counts, drops, per-output delivery and latency, stage costs."""
    outs = {}
    for name, o in s.outputs.items():
        outs[name] = {
            "delivered": o.get("delivered", 0),
            "dropped": o.get("dropped", 0),
            "fps": o.get("fps"),
            "latency_ms": {"p50": o.get("latency_ms_p50"), "p95": o.get("latency_ms_p95")},
            **({"errors": o["errors"], "last_error": o.get("last_error")} if o.get("errors") else {}),
        }
    return {
        "duration_s": s.uptime_s,
        "frames_captured": s.frames["captured"],
        "frames_rendered": s.frames["rendered"],
        "frames_with_face": s.frames["with_face"],
        "fps": s.fps,
        "drops": s.drops,
        "stages_ms": s.stages_ms,
        "outputs": outs,
        "character": s.character,
        "renderer": s.renderer,
        "renderer_reason": s.renderer_reason,
        "camera": s.camera,
        "camera_issue": s.camera_issue,
        "process": s.process,
        "warnings": s.warnings,
        **({"voice": s.voice} if s.voice else {}),
    }
