"""`stream-animator cache [--clear] [--json]`: where the prepared characters and the lip-sync data
(`render`'s mouth tracks and spoken lines) are kept, how much room they take, and a way to empty
it (everything in it is rebuilt on demand)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from worker.audio import lipsync_cache
from worker.characters.cache import DiskCache, default_max_disk_bytes
from worker.errors import UserError, os_reason
from worker.paths import default_cache_dir


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache", default=None, help=f"cache folder (default: {default_cache_dir()})")
    p.add_argument(
        "--clear", action="store_true", help="remove every prepared character and the lip-sync data (rebuilt when used)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def run(args: argparse.Namespace) -> int:
    root = default_cache_dir() if not args.cache else Path(args.cache).expanduser()
    if root.exists() and not root.is_dir():
        raise UserError(f"{root}: the cache must be a folder, this is a file")
    disk = DiskCache(root, default_max_disk_bytes())
    freed = None
    if args.clear:
        try:
            freed = disk.clear() + lipsync_cache.clear(root)
        except OSError as e:
            raise UserError(f"{root}: cannot empty the cache ({os_reason(e)})") from None
    entries = disk.entries()
    total = sum(e.bytes for e in entries)
    lip_entries, lip_bytes = lipsync_cache.usage(root)
    report = {
        "folder": str(root),
        "entries": len(entries),
        "bytes": total,
        "limit_bytes": disk.max_bytes,
        "lipsync": {"entries": lip_entries, "bytes": lip_bytes, "limit_bytes": lipsync_cache.MAX_BYTES},
        **({"freed_bytes": freed} if freed is not None else {}),
    }
    if args.json:
        print(json.dumps(report))
        return 0
    if freed is not None:
        print(f"cleared {root}: {freed / 1e6:.1f} MB freed")
    print(
        f"cache: {root}: {len(entries)} characters, {total / 1e6:.1f} MB of {disk.max_bytes / 1e6:.0f} MB "
        f"(the least recently used go first)"
    )
    print(f"lip-sync: {lip_entries} voice lines, {lip_bytes / 1e6:.1f} MB of {lipsync_cache.MAX_BYTES / 1e6:.0f} MB")
    return 0
