"""`stream-animator check IMAGE...`: can these pictures be used as characters, and how well?

The same validation `demo`, `preprocess` and `run` apply (`worker.characters.validation`).
"""

from __future__ import annotations

import argparse
import json
import sys

from worker.characters.validation import check_image


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="+", help="image files to check")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of text")


def run(args: argparse.Namespace) -> int:
    reports = [check_image(p) for p in args.images]
    if args.json:
        print(json.dumps(reports))
    else:
        for r in reports:
            if not r["usable"]:
                print(f"NO   {r['error']}")
                continue
            alpha = "alpha" if r["alpha"] else "no alpha"
            marked = f", face marked ({r['kind']})" if r.get("marks") else ""
            print(
                f"ok   {r['file']}: {r['width']}x{r['height']}, {alpha}, face {r['face_fraction']:.0%} of height"
                f"{marked}"
            )
            for wmsg in r["warnings"]:
                print(f"       warning: {wmsg}")
    bad = sum(not r["usable"] for r in reports)
    if bad:
        print(f"{bad} of {len(reports)} images cannot be used", file=sys.stderr)
    return 1 if bad else 0
