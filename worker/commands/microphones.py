"""`stream-animator microphones`: the audio inputs this machine has, to pick `--mic`."""

from __future__ import annotations

import argparse
import json


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print a JSON list of {index, name, channels, ...}")


def run(args: argparse.Namespace) -> int:
    from worker.audio.sources import microphones_and_reason

    mics, reason = microphones_and_reason()
    if args.json:
        print(json.dumps([m.as_dict() for m in mics]))
        return 0
    if not mics:
        print(f"no microphones found: {reason} (an audio or video file can be the voice instead)")
        return 0
    for m in mics:
        star = " (default)" if m.default else ""
        print(f"{m.index}: {m.name}{star} - {m.channels} ch, {m.default_rate:g} Hz, {m.host_api}")
    return 0
