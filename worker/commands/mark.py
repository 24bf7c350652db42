"""`stream-animator mark IMAGE`: mark a character's face by hand in a local web page."""

from __future__ import annotations

import argparse
import json
import sys
import time
import webbrowser


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", help="the character picture; the marks are saved beside it as NAME.face.json")
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free one)")
    p.add_argument("--no-browser", action="store_true", help="only print the page's address")
    p.add_argument("--json", action="store_true", help="print the address as JSON (for programs)")


def run(args: argparse.Namespace) -> int:
    from worker.studio.mark_page import MarkServer

    server = MarkServer(args.image, port=args.port)
    if args.json:
        print(json.dumps({"url": server.url}), flush=True)
    else:
        print(f"marking page: {server.url}  (Ctrl+C to stop)", file=sys.stderr, flush=True)
    if not args.no_browser:
        webbrowser.open(server.url)
    try:
        while True:
            time.sleep(1.0)
    finally:
        server.close()
