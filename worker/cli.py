"""`stream-animator <command>`: one entry point; each command lives in `worker/commands/`."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from worker import __version__
from worker.errors import UserError, without_errno
from worker.paths import PACKAGE_DIR
from worker.setup import import_hints

# command name -> module in worker.commands with `add_arguments(parser)` and `run(args) -> int`
COMMANDS = {
    "demo": "Animate a character from a driving video into a video file (no webcam needed).",
    "run": "Run the live worker: camera -> animated frames -> outputs, with a control channel.",
    "preprocess": "Preprocess every character in a folder into the cache.",
    "check": "Check whether images can be used as characters.",
    "mark": "Mark a character's face by hand (animals, mascots, drawings) in a local web page.",
    "studio": "Open the local studio page: characters, face marks, talking clips, voice, settings, live.",
    "bench": "Measure per-stage costs and what the cache saves.",
    "cameras": "List the cameras this machine has.",
    "ctl": "Send a control request to a running worker (or 'watch' its status).",
    "describe": "List the renderers, outputs and settings this install offers (--json for programs).",
    "render": "Render a talking clip of a character from an audio file or text (with sound).",
    "microphones": "List the microphones this machine has.",
    "calibrate-voice": "Measure your vowels so lip sync follows your voice (stored in the config).",
    "obs-setup": "Register the OBS script in OBS (close OBS first); --undo restores what it changed.",
    "cache": "Show where prepared characters are kept and how much room they take; --clear empties it.",
    "doctor": "Check every piece of the setup, one line each, with what to do when one fails.",
    "models": "Show, check or download the neural renderer's weights.",
    "gpu-check": "Time LivePortrait's full-size networks on this machine's GPU (FP16 vs FP32, FPS).",
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="stream-animator", description="Stream Motion Animator worker.")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="more detail on the console")
    p.add_argument("--log-file", help="log file (default: logs/stream-animator.log)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    broken: dict[str, list[str]] = {}  # why -> the commands that cannot run because of it
    for name, help_text in COMMANDS.items():
        try:
            mod = _module(name)
        except (ImportError, OSError) as e:  # a broken package: the other commands still run
            why = broken_package(e)
            broken.setdefault(why, []).append(name)
            sp = sub.add_parser(name, help=f"{help_text} [cannot run now, see below]", description=help_text)
            sp.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
            sp.set_defaults(broken=why)
            continue
        sp = sub.add_parser(name, help=help_text, description=help_text)
        mod.add_arguments(sp)
        # also after the command (`stream-animator demo -v`); SUPPRESS keeps a -v given before it
        sp.add_argument(
            "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="more detail on the console"
        )
    if broken:
        p.epilog = "\n".join(f"cannot run now: {', '.join(names)}: {why}" for why, names in broken.items())
    return p


def broken_package(e: BaseException) -> str:
    """One line for an import that failed: the package, the reason and the fix."""
    return import_hints.explain(import_hints.culprit(e, str(PACKAGE_DIR)) or "a package", str(e))


def _module(name: str):
    return importlib.import_module(f"worker.commands.{name.replace('-', '_')}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from worker.log import setup_logging
    from worker.mp_runtime import route_native_stderr

    route_native_stderr()  # MediaPipe's native log lines: to the log file, not the terminal
    logfile = setup_logging(verbose=args.verbose, quiet=getattr(args, "json", False), log_file=args.log_file)
    log = logging.getLogger("worker.cli")
    log.info("stream-animator %s: %s", args.command, " ".join(sys.argv[1:]))
    try:
        if getattr(args, "broken", None):
            raise UserError(args.broken)
        return int(_module(args.command).run(args) or 0)
    except UserError as e:
        log.debug("user error", exc_info=True)
        sys.stderr.write(f"error: {without_errno(str(e))}\n")  # one write: never split by library chatter
        sys.stderr.flush()
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ImportError, OSError) as e:
        if not isinstance(e, ImportError) and not _raised_by_import(e):
            return _internal(e, args.command, log, logfile)
        log.error("import failed in %s", args.command, exc_info=True, extra={"file_only": True})
        print(f"error: {broken_package(e)}", file=sys.stderr)
        return 1
    except Exception as e:  # the one place an unexpected error becomes one line
        return _internal(e, args.command, log, logfile)


def _internal(e: BaseException, command: str, log: logging.Logger, logfile) -> int:
    log.error("internal error in %s", command, exc_info=True, extra={"file_only": True})
    where = f" (details in {logfile})" if logfile else ""
    print(f"error: internal error: {type(e).__name__}: {without_errno(str(e))}{where}", file=sys.stderr)
    return 1


def _raised_by_import(e: BaseException) -> bool:
    """An OSError from loading a shared library while a module imports (ctypes.CDLL in a package)."""
    tb = e.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_name == "<module>" and tb.tb_frame.f_globals.get("__name__") != "__main__":
            return True
        tb = tb.tb_next
    return False
