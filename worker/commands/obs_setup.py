"""`stream-animator obs-setup`: add the OBS script to OBS's scene collection, with this worker's Python.

Close OBS first. Backs up every file it changes; `--undo` puts them back.
"""

from __future__ import annotations

import argparse
import json
import sys

from worker.errors import UserError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--collection", metavar="NAME", help="scene collection to set up (default: OBS's current one)")
    p.add_argument("--undo", action="store_true", help="restore what obs-setup changed")
    p.add_argument(
        "--browser-source",
        action="store_true",
        help="instead of the script: add the worker's page (the ws output) to the current scene as a Browser "
        "Source, for an OBS without Python",
    )
    p.add_argument("--size", type=int, default=512, help="the Browser Source's width and height (default 512)")
    p.add_argument("--camera", metavar="webcam:N|VIDEO", help="also choose the camera (or a video file) for the script")
    p.add_argument("--characters", metavar="FOLDER", help="also choose the characters folder for the script")
    p.add_argument("--obs-config", metavar="FOLDER", help="OBS's configuration folder (default: found per OS)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    from worker.paths import repo_root
    from worker.setup import obs_registration

    config_dir = obs_registration.find_config_dir(args.obs_config)
    repo = repo_root()
    if args.undo:
        rep = obs_registration.undo(config_dir, repo=repo)
    elif args.browser_source:
        from worker.web.settings import stable_address

        if not 16 <= args.size <= 4096:
            raise UserError(f"--size must be 16..4096, got {args.size}")
        addr = stable_address()  # the one `run --output ws` listens on
        url = f"http://127.0.0.1:{addr.port}/source?token={addr.token}"
        rep = obs_registration.apply_browser_source(config_dir, url, args.collection, args.size)
    else:
        if repo is None:
            raise UserError("obs-setup needs a checkout of Stream Motion Animator (the OBS script lives in it)")
        rep = obs_registration.apply(config_dir, repo, sys.executable, args.collection, args.camera, args.characters)
    if args.json:
        print(
            json.dumps(
                {
                    "ok": rep.ok,
                    "problem": rep.problem or None,
                    "obs_config": str(config_dir),
                    "changed": rep.changed,
                    "lines": rep.lines,
                }
            )
        )
    else:
        print(f"OBS configuration: {config_dir}")
        for line in rep.lines:
            print(line)
    if not rep.ok:
        print(f"error: {rep.problem}", file=sys.stderr)
    return 0 if rep.ok else 1
