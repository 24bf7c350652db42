"""`stream-animator cameras`: the webcams this machine can open, to choose `--source webcam:N`."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print a JSON list")


def run(args: argparse.Namespace) -> int:
    from worker.capture import list_cameras

    cams = list_cameras()
    if args.json:
        print(json.dumps([asdict(c) for c in cams]))
        return 0
    if not cams:
        print("no cameras found (is one plugged in, and not in use by another program?)")
        return 0
    for c in cams:
        size = f"{c.width}x{c.height}" if c.width else "?"
        print(f"webcam:{c.index}  {c.name}  ({size})")
    return 0
