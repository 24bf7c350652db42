"""`stream-animator ctl`: send one control request to a running worker (or watch its status).

    stream-animator ctl status --json
    stream-animator ctl set_character character=cat
    stream-animator ctl set_options 'options={"smoothing": 0.4}'
    stream-animator ctl watch          # print events (status, character, characters) until Ctrl+C

Port and token come from --port/--token, env STREAM_ANIMATOR_CONTROL_PORT/_TOKEN, or the file
each worker started from the command line leaves in the logs folder while it runs (mode 0600):
with one such worker running, `ctl` finds it; with several, it lists them and asks for --port.
"""

from __future__ import annotations

import argparse
import json
import os

from worker.control import protocol as P
from worker.errors import UserError

# Each request's arguments, as `protocol.check_args` checks them (the help lists them all).
OP_HELP = {
    "status": "the worker's status (fps, latency, character, tracking, camera, outputs)",
    "list_characters": "the characters in the folder, numbered from 1",
    "set_character": "exactly one of character=ID (file name or stem), index=N (from 1), step=1 | step=-1",
    "calibrate": "take your current face as the neutral pose",
    "pause": "hold the character still (no tracking)",
    "resume": "track again after pause",
    "set_options": 'options=\'{"smoothing": 0.4, "motion.head_strength": 0.8}\' (the live settings)',
    "reload_characters": "look at the characters folder again",
    "shutdown": "stop the worker",
    "subscribe": "on=true | on=false: status events (ctl watch does this)",
    "mute": "stop the voice moving the mouth (the microphone stays open)",
    "unmute": "let the voice move the mouth again",
    "watch": "print events (status, character, characters) until Ctrl+C",
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    ops = {**{op: "(no arguments)" for op in P.OPS}, **OP_HELP}  # every op, even one added without help here
    p.epilog = "requests and their arguments (KEY=VALUE):\n" + "\n".join(
        f"  {op:<18} {text}" for op, text in ops.items()
    )
    p.add_argument("op", help=f"one of {', '.join(P.OPS)}, or 'watch' (see below)")
    p.add_argument("args", nargs="*", metavar="KEY=VALUE", help="request arguments; VALUE is JSON or a string")
    p.add_argument("--port", type=int, default=None, help=f"control port (default: ${P.ENV_CONTROL_PORT})")
    p.add_argument("--token", default=None, help=f"secret (default: ${P.ENV_TOKEN})")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the reply")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def parse_args_list(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"request argument {item!r} must look like key=value")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value  # a bare word is a string
    return out


def run(args: argparse.Namespace) -> int:
    port = args.port if args.port is not None else os.environ.get(P.ENV_CONTROL_PORT)
    try:
        port = int(port) if port is not None and port != "" else None
    except ValueError:
        raise UserError(f"{P.ENV_CONTROL_PORT} must be a port number, got {port!r}") from None
    token = args.token or os.environ.get(P.ENV_TOKEN)
    if port is None or not token:
        port, token = _running_worker(port, token)
    request = parse_args_list(args.args)
    try:
        with P.ControlClient(port, token, timeout=args.timeout) as client:
            if args.op == "watch":
                client.subscribe()
                try:
                    while True:
                        event = client.next_event(timeout=args.timeout)
                        if event is not None:
                            text = json.dumps(event) if args.json else f"[{event['event']}]\n" + _human(event["data"])
                            print(text, flush=True)
                except KeyboardInterrupt:
                    return 0
            result = client.request(args.op, **request)
    except P.RemoteError as e:
        raise UserError(str(e)) from None
    except (P.AuthError, OSError) as e:
        raise UserError(f"cannot reach the worker on 127.0.0.1:{port}: {e}") from None
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(_human(result))
    return 0


def _human(data: dict) -> str:
    return "\n".join(f"{k}: {json.dumps(v) if isinstance(v, (dict, list)) else v}" for k, v in data.items()) or "ok"


def _running_worker(port: int | None, token: str | None) -> tuple[int, str]:
    """Port and token of the worker started by hand that is running now (each leaves its own
    file, see `worker.control.endpoints`); with a port, the one on that port."""
    from worker.control import endpoints

    found = endpoints.running()
    if port is not None:
        found = [e for e in found if e.port == port]
        if not found:
            raise UserError(
                f"no token for port {port}: no worker started from the command line listens there; "
                f"pass --token or set {P.ENV_TOKEN}"
            )
    if not found:
        raise UserError(
            "no running worker found (none started from the command line is running; a worker the OBS "
            f"script started keeps its port to itself): pass --port and --token, or set {P.ENV_CONTROL_PORT} "
            f"and {P.ENV_TOKEN}"
        )
    if len(found) > 1:
        which = ", ".join(f"pid {e.pid} on port {e.port}" for e in found)
        raise UserError(f"{len(found)} workers are running ({which}): choose one with --port")
    return found[0].port, token or found[0].token
