"""What the studio's caches save: three talking clips of one character through the studio's own
code (a fresh cache): the first prepares the character and speaks its line, the second (a new
line) finds the character in memory, the third (the first line again) finds its voice cached.

    python -m worker.tools.studio_bench [--size 512] [--json]
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from worker.characters.cache import open_cache
from worker.paths import DEMO_CHARACTER
from worker.studio.characters import Characters
from worker.studio.clips import ClipRequest, Clips
from worker.studio.jobs import JobRunner

LINES = ("Welcome in, everyone!", "Thanks for the follow!", "Welcome in, everyone!")


def run(size: int = 512) -> list[dict]:
    root = Path(tempfile.mkdtemp(prefix="studio-bench-"))
    try:
        (root / "characters").mkdir()
        shutil.copy(DEMO_CHARACTER, root / "characters" / "toon.png")
        chars = Characters(root / "characters", open_cache(root / "cache"), size)
        clips = Clips(chars, root / "clips", root / "cache", None)
        runner = JobRunner()
        rows = []
        for text in LINES:
            req = ClipRequest("toon.png", [text])
            job = runner.submit("render", "toon.png", functools.partial(clips.render, req))
            while job.state == "running":
                time.sleep(0.02)
            if job.state != "done":
                raise RuntimeError(job.error)
            r = job.result
            rows.append(
                {
                    "line": text,
                    "character_from": r["character_from"],
                    "video_s": r["clips"][0]["duration_s"],
                    **r["seconds"],
                }
            )
        clips.close()
        return rows
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    rows = run(args.size)
    if args.json:
        print(json.dumps(rows))
    else:
        for i, r in enumerate(rows, 1):
            print(
                f"clip {i} ({r['line']!r}, {r['video_s']:.1f} s): voice {r['voice']:.2f} s, character "
                f"{r['character']:.2f} s ({r['character_from']}), render {r['render']:.2f} s, total {r['total']:.2f} s"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
