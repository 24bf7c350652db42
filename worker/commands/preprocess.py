"""`stream-animator preprocess [FOLDER]`: build the cache for every character in a folder."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from worker.characters.cache import open_cache
from worker.characters.library import CharacterLibrary
from worker.characters.preprocess import PreprocessSettings
from worker.commands.arguments import add_renderer, add_size
from worker.errors import UserError
from worker.paths import SAMPLE_CHARACTERS_DIR, default_cache_dir
from worker.progress import progress
from worker.render import create_renderer


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "folder",
        nargs="?",
        default=str(SAMPLE_CHARACTERS_DIR),
        help="characters folder (default: the bundled sample characters)",
    )
    p.add_argument("--cache", default=None, help=f"cache folder (default: {default_cache_dir()})")
    add_size(p, "working size")
    add_renderer(p, "also prepare what this renderer needs per character")
    p.add_argument("--json", action="store_true", help="print one JSON summary instead of text")


def run(args: argparse.Namespace) -> int:
    settings = PreprocessSettings(size=args.size)
    settings.validate()
    folder = Path(args.folder).expanduser()
    if folder.is_file():
        raise UserError(f"{folder}: is a file; preprocess takes a folder of characters (check takes files)")
    if not folder.is_dir():
        raise UserError(f"{folder}: characters folder not found")
    cache = open_cache(args.cache)
    renderer = create_renderer(args.renderer, size=args.size)
    lib = CharacterLibrary(folder, cache, settings, preparer=renderer)
    paths = lib.scan()
    skipped = [
        p
        for p in sorted(folder.iterdir(), key=lambda p: p.name.lower())
        if p.is_file() and not p.name.startswith(".") and p not in paths and not p.name.endswith(".face.json")
    ]
    if not paths:
        renderer.close()
        for p in skipped:
            print(f"  skipped {p}: not a PNG, JPEG or WebP picture", file=sys.stderr)
        raise UserError(f"{folder}: no character pictures (PNG, JPEG, WebP) in this folder")
    results = []
    with progress(total=len(paths), desc="preprocessing", unit="image", disable=args.json) as bar:
        for path in paths:
            name = path.name[-30:]
            bar.set_postfix_str(name, refresh=False)

            def on_stage(stage: str, n: str = name) -> None:
                bar.set_postfix_str(f"{n}: {stage}")

            results.append(lib.load(path, on_stage=on_stage))
            bar.update(1)
    renderer.close()
    counts = Counter("cached" if r.status in ("memory", "disk") else r.status for r in results)
    if args.json:
        print(
            json.dumps(
                {
                    "folder": str(Path(args.folder)),
                    "cache": str(lib.cache.root),
                    "counts": {k: counts.get(k, 0) for k in ("cached", "built", "rebuilt", "failed")},
                    "characters": [
                        {
                            "file": r.path.name,
                            "status": r.status,
                            "seconds": round(r.seconds, 3),
                            "warnings": _warnings(r),
                            **({"key": r.assets.key} if r.assets is not None else {"error": r.error}),
                        }
                        for r in results
                    ],
                    "skipped": [{"file": p.name, "reason": "not a PNG, JPEG or WebP picture"} for p in skipped],
                }
            )
        )
    else:
        for r in results:
            if r.status == "failed":
                print(f"  failed  {r.error}", file=sys.stderr)
            for w in _warnings(r):
                print(f"  warning {r.path}: {w}", file=sys.stderr)
        for p in skipped:
            print(f"  skipped {p}: not a PNG, JPEG or WebP picture", file=sys.stderr)
        print(
            f"{len(results)} characters: {counts.get('cached', 0)} cached, {counts.get('built', 0)} built, "
            f"{counts.get('rebuilt', 0)} rebuilt, {counts.get('failed', 0)} failed  (cache: {lib.cache.root})"
        )
    return 1 if counts.get("failed") else 0


def _warnings(r) -> list[str]:
    return list(r.assets.meta.get("warnings", [])) if r.assets is not None else []
