"""The lip-sync part of the cache folder (`CACHE/lipsync/`): mouth tracks, and the voice of text lines.

An audio file's entry is its mouth track only (32 bytes per 10 ms: 11.5 MB for an hour), never
the decoded voice: the file is still there to decode again. A text line's entry also keeps the
synthesized voice, which costs seconds to remake. The folder is held under `MAX_BYTES`, least
recently used entries first; `cache --clear` empties it with the characters.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

FOLDER = "lipsync"
MAX_BYTES = 256 * 1024 * 1024


def folder(cache_dir: str | Path) -> Path:
    return Path(cache_dir) / FOLDER


def _entries(d: Path) -> dict[str, list[Path]]:
    """Files grouped by entry key (the name up to the first dot); temp files of dead writers included."""
    out: dict[str, list[Path]] = {}
    if d.is_dir():
        for f in d.iterdir():
            if f.is_file():
                out.setdefault(f.name.split(".", 1)[0], []).append(f)
    return out


def usage(cache_dir: str | Path) -> tuple[int, int]:
    """(entries, bytes) of the lip-sync folder."""
    groups = _entries(folder(cache_dir))
    total = 0
    for files in groups.values():
        for f in files:
            try:
                total += f.stat().st_size
            except OSError:
                pass
    return len(groups), total


def clear(cache_dir: str | Path) -> int:
    """Remove every lip-sync entry; returns the bytes freed (OSError when the folder cannot be emptied)."""
    freed = 0
    for files in _entries(folder(cache_dir)).values():
        for f in files:
            try:
                size = f.stat().st_size
                f.unlink()
                freed += size
            except FileNotFoundError:
                pass
    return freed


def touch(*paths: Path) -> None:
    """Mark an entry as just used (its files' modification time), for least-recently-used pruning."""
    now = time.time()
    for p in paths:
        try:
            os.utime(p, (now, now))
        except OSError:
            pass


def prune(cache_dir: str | Path, max_bytes: int = MAX_BYTES, keep: str = "") -> int:
    """Remove least recently used entries (never `keep`) until the folder fits `max_bytes`; bytes freed."""
    sized = []
    for key, files in _entries(folder(cache_dir)).items():
        try:
            stats = [f.stat() for f in files]
        except OSError:
            continue
        sized.append((max(s.st_mtime for s in stats), key, sum(s.st_size for s in stats), files))
    total = sum(s[2] for s in sized)
    freed = 0
    for _, key, size, files in sorted(sized):
        if total <= max_bytes:
            break
        if key == keep:
            continue
        for f in files:
            try:
                f.unlink()
            except OSError:
                pass
        total -= size
        freed += size
    return freed
