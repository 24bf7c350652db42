"""`stream-animator studio`: the local studio page (characters, face marks, talking clips, voice,
settings, the running worker) on 127.0.0.1 under a random token, opened in the default browser."""

from __future__ import annotations

import argparse
import json
import sys
import webbrowser
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="config YAML that Settings and Voice edit (default: the user's config.yaml)")
    p.add_argument("--characters", help="characters folder (default: the config's characters.folder)")
    p.add_argument("--clips", help="folder for rendered clips (default: Videos/stream-animator)")
    p.add_argument("--cache", help="cache folder (default: the config's cache_dir or the user's cache folder)")
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free one)")
    p.add_argument("--mark", metavar="IMAGE", help="open at the marking page of this picture (its folder is used)")
    p.add_argument("--no-browser", action="store_true", help="only print the page's address")
    p.add_argument("--json", action="store_true", help="print the address as JSON (for programs)")


def run(args: argparse.Namespace) -> int:
    from urllib.parse import quote

    from worker.errors import UserError
    from worker.studio.app import Studio, default_paths
    from worker.web import WebServer

    paths = default_paths(args.config)
    if args.mark:
        image = Path(args.mark).expanduser()
        if not image.is_file():
            raise UserError(f"{image}: no such picture")
        paths.characters = image.parent
    for field in ("characters", "clips", "cache"):
        if getattr(args, field):
            setattr(paths, field, Path(getattr(args, field)).expanduser())
    server = WebServer(port=args.port, name="studio")
    studio = Studio(server, paths)

    def ready(s: WebServer) -> None:
        url = s.url(f"/mark/{quote(Path(args.mark).name)}/") if args.mark else studio.url()
        if args.json:
            print(json.dumps({"url": url}), flush=True)
        else:
            print(f"studio: {url}  (Ctrl+C to stop)", file=sys.stderr, flush=True)
        if not args.no_browser:
            webbrowser.open(url)

    try:
        server.run_forever(on_ready=ready)
    finally:
        studio.close()
    return 0
