"""`stream-animator describe`: what this install offers, from the registries.

    stream-animator describe           # readable list
    stream-animator describe --json    # what the OBS script reads to fill its menus

Lists the renderers and the outputs (each with whether it can run on this machine and why not,
its options with types and ranges, and for outputs the `--output` short form) and every config
setting with its range. Imports no output backend and starts nothing: it answers in about half a second.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from worker import __version__


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object")


def describe() -> dict[str, Any]:
    from worker.config import LIVE_KEYS, SECTIONS
    from worker.control import protocol as P
    from worker.output.registry import describe_outputs
    from worker.render.registry import DEFAULT, describe_renderers

    return {
        "version": __version__,
        "protocol": P.PROTOCOL_VERSION,
        "renderers": describe_renderers(),
        "default_renderer": DEFAULT,
        "outputs": describe_outputs(),
        "config": {sec: [o.describe() for o in opts] for sec, opts in SECTIONS.items()},
        "live_keys": sorted(LIVE_KEYS),
    }


def _range(o: dict) -> str:
    if "min" in o:
        return f" {o['min']:g}..{o['max']:g}"
    if "choices" in o:
        return " " + "|".join(o["choices"])
    return ""


def run(args: argparse.Namespace) -> int:
    d = describe()
    if args.json:
        print(json.dumps(d))
        return 0
    for title, key in (("Renderers", "renderers"), ("Outputs", "outputs")):
        print(f"{title}:")
        for e in d[key]:
            state = "available" if e["available"] else f"unavailable: {e['reason']}"
            form = f"  --output {e['short_form']}" if "short_form" in e else ""
            print(f"  {e['name']:<12} {state}{form}")
            print(f"  {'':<12} {e['summary']}")
            if "picks_reason" in e:  # auto: what it picks on this machine
                print(f"  {'':<12} here: {e['picks_reason']}")
            opts = ", ".join(f"{o['name']} ({o['type']}{_range(o)})" for o in e["options"])
            print(f"  {'':<12} options: {opts}")
    print("Config:")
    for sec, opts in d["config"].items():
        for o in opts:
            key = f"{sec}.{o['name']}" if sec else o["name"]
            live = "  (live)" if key in d["live_keys"] else ""
            print(f"  {key:<28} {o['type']}{_range(o)}, default {json.dumps(o['default'])}{live}")
    return 0
