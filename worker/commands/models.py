"""`stream-animator models`: which neural-renderer weights are present, verified, partial or
missing; `--download` fetches the missing ones (the installer's resumable, checked download)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

_MARK = {"verified": "ok", "present": "present", "missing": "MISSING", "partial": "PARTIAL", "mismatch": "BAD"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--check", action="store_true", help="exit with status 1 unless every file is verified")
    p.add_argument("--download", action="store_true", help="download missing, partial or bad files (resumable)")
    p.add_argument("--json", action="store_true", help="print a JSON list of files and their state")
    p.add_argument("--models-dir", type=Path, help="weights folder (default: $STREAM_ANIMATOR_MODELS or models/)")
    p.add_argument("--manifest", type=Path, help=argparse.SUPPRESS)


def _rows(states) -> list[dict]:
    rows = []
    for s in states:
        d = asdict(s)
        d["file"] = str(s.file)
        rows.append(d)
    return rows


_ABOUT = {"human": "required", "animal": "optional: for characters of kind animal"}


def run(args: argparse.Namespace) -> int:
    from worker.errors import UserError
    from worker.render.liveportrait import weights

    models_dir = args.models_dir or weights.default_models_dir()
    groups = {name: weights.load_entries(args.manifest, prefix) for name, prefix in weights.NET_SETS.items()}
    if args.download:
        md = weights.downloader()
        out = sys.stderr if args.json else sys.stdout
        for e in (e for entries in groups.values() for e in entries):
            if weights.check(e, models_dir).ok:
                continue
            if e.sha256 is None:
                if e.optional:
                    print(f"  skipped  {e.path}: optional, no published SHA-256 in the manifest yet", file=out)
                    continue
                raise UserError(f"{e.path}: no sha256 in the manifest; refusing an unverifiable download")
            try:
                md.download(e, models_dir, out=out)
            except md.DownloadError as err:
                raise UserError(str(err)) from None
    states = {name: [weights.check(e, models_dir) for e in entries] for name, entries in groups.items()}
    ready = {name: bool(st) and all(s.ok for s in st) for name, st in states.items()}
    ok = ready["human"]  # the renderer needs the human set; the animal set is optional
    if args.json:
        rows = [dict(r, set=name) for name, st in states.items() for r in _rows(st)]
        print(json.dumps({"models_dir": str(models_dir), "ready": ok, "sets": ready, "files": rows}))
    else:
        for name, st in states.items():
            if not st:
                continue
            print(f"liveportrait {name} set ({_ABOUT.get(name, 'optional')}) in {models_dir}:")
            for s in st:
                size = f"{s.size / 1e6:.1f} MB" if s.size else ""
                detail = f"  ({s.detail})" if s.detail else ""
                print(f"  {_MARK.get(s.state, s.state):8s} {s.path}  {size}{detail}")
        if ok:
            print("all present and verified: the liveportrait renderer can run")
        else:
            print("not ready: run 'stream-animator models --download'")
    return 1 if (args.check or args.download) and not ok else 0
