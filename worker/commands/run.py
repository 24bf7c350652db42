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
from pathlib import Path

from worker.errors import UserError

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML config file (default: built-in defaults)")
    p.add_argument("--source", help="webcam:0, webcam:<name> or a video file (overrides camera.source)")
    p.add_argument("--characters", help="characters folder (overrides characters.folder)")
    p.add_argument("--character", help="character to start with (file name in the folder)")
    p.add_argument("--output", action="append", metavar="TYPE[:PORT|:PATH]",
                   help="output(s) instead of the config's: obs, nut:9999, file:out.mp4, window, ...")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--control-port", type=int, help="control channel port (0 = any free port)")
    p.add_argument("--parent-pid", type=int, help="exit when this process (e.g. OBS) is gone")
    p.add_argument("--ready-json", action="store_true",
                   help="print one JSON line with the ports once listening (for the OBS script)")
    p.add_argument("--json", action="store_true", help="print a JSON summary on the last line at the end")


def _output_specs(specs: list[str]) -> list[dict]:
    out = []
    for s in specs:
        kind, _, arg = s.partition(":")
        cfg: dict = {"type": kind}
        if arg:
            if kind in ("nut", "obs"):
                try:
                    cfg["port"] = int(arg)
                except ValueError:
                    raise UserError(f"--output {s}: port must be a number") from None
            elif kind == "file":
                cfg["path"] = arg
            elif kind in ("spout", "virtualcam", "window"):
                cfg["name"] = arg
        out.append(cfg)
    return out


def _token_from_env_or_new() -> tuple[str, bool]:
    from worker.control import protocol as P

    tok = os.environ.get(P.ENV_TOKEN, "").strip()
    return (tok, False) if tok else (P.make_token(), True)


def _write_token_file(token: str) -> Path | None:
    from worker.paths import default_log_dir

    path = default_log_dir() / "control-token"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
        return path
    except OSError:
        return None


def _watch_parent(pid: int, stop: threading.Event) -> None:
    import psutil

    def run() -> None:
        while not stop.wait(0.5):
            if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                log.info("parent process %d is gone: stopping", pid)
                stop.set()
                return

    try:
        if not psutil.pid_exists(pid):
            raise UserError(f"--parent-pid {pid}: no such process")
    except psutil.Error:
        pass
    threading.Thread(target=run, name="parent-watch", daemon=True).start()


def run(args: argparse.Namespace) -> int:
    from worker.animator import Animator
    from worker.capture import open_source
    from worker.characters.cache import CharacterCache
    from worker.characters.library import CharacterLibrary
    from worker.characters.preprocess import PreprocessSettings
    from worker.characters.roster import Roster
    from worker.config import load_config
    from worker.control import protocol as P
    from worker.control.metrics import ProcessMetrics
    from worker.control.server import ControlServer
    from worker.output.factory import create_output
    from worker.output.fanout import OutputFanout
    from worker.paths import default_cache_dir
    from worker.pipeline import Pipeline
    from worker.retarget.retargeter import RetargetOptions
    from worker.track.mediapipe_tracker import FaceTracker

    overrides = {}
    if args.source:
        overrides["camera.source"] = args.source
    if args.characters:
        overrides["characters.folder"] = args.characters
    if args.character:
        overrides["characters.current"] = args.character
    if args.control_port is not None:
        overrides["control.port"] = args.control_port
    elif os.environ.get(P.ENV_CONTROL_PORT, "").isdigit():
        overrides["control.port"] = int(os.environ[P.ENV_CONTROL_PORT])
    cfg = load_config(args.config, overrides)
    if args.output:
        cfg["outputs"] = _output_specs(args.output)
    if args.duration is not None and args.duration <= 0:
        raise UserError("--duration must be positive")

    stop = threading.Event()
    if args.parent_pid:
        _watch_parent(args.parent_pid, stop)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    # characters: the first one synchronously (so we start with a face), the rest in the background
    cache = CharacterCache(cfg["cache_dir"] or default_cache_dir())
    settings = PreprocessSettings(size=cfg["characters"]["size"])
    roster = Roster(CharacterLibrary(cfg["characters"]["folder"], cache, settings))
    ids = [p.name for p in roster.library.scan()]
    if not ids:
        raise UserError(f"{cfg['characters']['folder']}: no character images (PNG, JPEG, WebP)")
    first = cfg["characters"]["current"]
    if first is not None:
        first = roster.resolve(None, character=first) if first in ids or any(
            Path(i).stem == first for i in ids) else None
        if first is None:
            raise UserError(f"characters.current: {cfg['characters']['current']!r} is not in "
                            f"{cfg['characters']['folder']}")
    roster._scan()
    for cid in ([first] if first else []) + ids:
        if roster.load_now(cid).assets is not None:
            first = cid
            break
    else:
        raise UserError(f"{cfg['characters']['folder']}: no usable character (see the log for each image)")
    roster.start()

    m = cfg["motion"]
    animator = Animator(cfg["renderer"]["name"], size=cfg["characters"]["size"],
                        options=RetargetOptions(expression_strength=m["expression_strength"],
                                                head_strength=m["head_strength"], mirror=m["mirror"],
                                                idle=m["idle"]))
    animator.set_character(roster.get(first))
    tracker = FaceTracker()
    tracker.set_smoothing(float(cfg["smoothing"]))

    token, generated = _token_from_env_or_new()
    frame_port_env = os.environ.get(P.ENV_FRAME_PORT, "")
    outputs = []
    for oc in cfg["outputs"]:
        oc = dict(oc)
        if oc["type"] == "obs":
            oc.setdefault("token", token)
            if "port" not in oc and frame_port_env.isdigit():
                oc["port"] = int(frame_port_env)
        outputs.append(create_output(oc))
    fanout = OutputFanout(outputs).start(strict=False)

    cam = cfg["camera"]
    src_spec = cam["source"]
    is_file = not src_spec.lower().startswith("webcam")
    if is_file and not Path(src_spec).is_file():
        raise UserError(f"{src_spec}: video file not found")

    def make_source():
        return open_source(src_spec, width=cam["width"], height=cam["height"], fps=cam["fps"],
                           mjpeg=cam["mjpeg"], loop=True, realtime=True)

    pipe = Pipeline(cfg, make_source, roster, animator, tracker, fanout)
    for w in fanout.warnings:
        pipe.warn(w)
    metrics = ProcessMetrics()

    def handler(op: str, a: dict) -> dict:
        if op == "status":
            return {**pipe.status(), "process": metrics.snapshot()}
        return pipe.request(op, a)

    server = ControlServer(handler, token, port=cfg["control"]["port"]).start()
    frame_port = next((getattr(o, "port", None) for o in fanout.outputs if o.name == "obs"), None)
    if args.ready_json:
        sys.stdout.write(P.ready_line(server.port, frame_port).decode())
        sys.stdout.flush()
    if generated:
        tf = _write_token_file(token)
        log.info("control channel on 127.0.0.1:%d (token in %s)", server.port, tf)
    pipe.start(first)
    t_end = time.monotonic() + args.duration if args.duration else None
    try:
        while not stop.is_set() and not pipe.stop_event.is_set():
            if t_end is not None and time.monotonic() >= t_end:
                break
            stop.wait(0.1)
    finally:
        pipe.stop()
        summary = {**pipe.status(), "process": metrics.snapshot()}
        server.stop()
        fanout.close()
        roster.stop()
        tracker.close()
        animator.close()
    if args.json:
        print(json.dumps(_summary(summary)))
    return 0


def _summary(s: dict) -> dict:
    """The end-of-run JSON: counts, drops, per-output delivery and latency, stage costs."""
    outs = {}
    for name, o in s["outputs"].items():
        outs[name] = {
            "delivered": o.get("delivered", 0),
            "dropped": o.get("dropped", 0),
            "fps": o.get("fps"),
            "latency_ms": {"p50": o.get("latency_ms", {}).get("p50"), "p95": o.get("latency_ms", {}).get("p95")},
            **({"errors": o["errors"]} if o.get("errors") else {}),
        }
    return {
        "duration_s": s["uptime_s"],
        "frames_captured": s["frames"]["captured"],
        "frames_rendered": s["frames"]["rendered"],
        "frames_with_face": s["frames"]["with_face"],
        "drops": s["drops"],
        "stages_ms": s["stages_ms"],
        "outputs": outs,
        "character": s["character"],
        "camera": s["camera"],
        "process": s["process"],
        "warnings": s["warnings"],
    }
