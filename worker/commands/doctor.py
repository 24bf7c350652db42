"""`stream-animator doctor`: one line per piece of the setup, each with what to do when it fails."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

CHECK_NAMES = (
    "python",
    "packages",
    "devices",
    "obs",
    "script",
    "obs_python",
    "gpu",
    "models",
    "cache",
    "ports",
    "selftest",
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object with every check's result")
    p.add_argument("--config", help="the worker's YAML config to check (ports, cache folder, renderer)")
    p.add_argument("--obs-config", metavar="FOLDER", help="OBS's configuration folder (default: found per OS)")
    p.add_argument("--cache", metavar="FOLDER", help="cache folder to check (default: the worker's)")
    p.add_argument("--models-dir", metavar="FOLDER", help="model weights folder (default: models/)")
    p.add_argument("--manifest", metavar="FILE", help="weights manifest (default: models/manifest.json)")
    p.add_argument("--only", action="append", choices=CHECK_NAMES, help="run only this check (repeatable)")
    p.add_argument("--selftest-seconds", type=float, default=3.0, help="length of the live self-test (default 3)")


def run(args: argparse.Namespace) -> int:
    from worker.setup.checks import FAIL, DoctorOptions, run_checks

    opts = DoctorOptions(
        config=args.config,
        obs_config=args.obs_config,
        cache_dir=Path(args.cache).expanduser() if args.cache else None,
        models_dir=Path(args.models_dir).expanduser() if args.models_dir else None,
        manifest=Path(args.manifest).expanduser() if args.manifest else None,
        selftest_seconds=args.selftest_seconds,
    )
    printer = None if args.json else (lambda c: print(c.line(), flush=True))
    results = run_checks(opts, printer, set(args.only) if args.only else None)
    failed = [c.name for c in results if c.status == FAIL]
    if args.json:
        print(json.dumps({"ok": not failed, "failed": failed, "checks": [asdict(c) for c in results]}))
    else:
        print(
            f"{len(results) - len(failed)} of {len(results)} checks passed"
            + (f"; fix first: {', '.join(failed)}" if failed else "")
        )
    return 1 if failed else 0
