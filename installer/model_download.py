"""Download model weights listed in models/manifest.json: resumable, verified, atomic.

A file is first written to `<name>.part`; an interrupted download continues from there with an
HTTP Range request (a server that ignores the range makes us start over). Only once the size and
SHA-256 match the manifest is it renamed into place with `os.replace`, so the models folder never
holds a truncated or unverified file under its real name. Entries without a SHA-256 are refused:
we do not run weights we cannot check.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import shutil
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TextIO

MANIFEST_FORMAT = 1
CHUNK = 1 << 20
USER_AGENT = "stream-motion-animator-installer/1"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class DownloadError(Exception):
    """A model could not be fetched or verified; the message is one line for the user."""


@dataclass(frozen=True)
class ModelEntry:
    path: str  # relative to the models folder, '/'-separated
    url: str
    size: int | None
    sha256: str | None
    optional: bool = False  # not needed by default (e.g. the animal set): skipped while it has no sha256


def load_manifest(manifest: Path) -> list[ModelEntry]:
    """Parse and validate the manifest; errors name the file and the field."""
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DownloadError(f"{manifest}: file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DownloadError(f"{manifest}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise DownloadError(f"{manifest}: 'format' must be {MANIFEST_FORMAT}")
    models = data.get("models")
    if not isinstance(models, list):
        raise DownloadError(f"{manifest}: 'models' must be a list")
    entries = []
    for i, item in enumerate(models):
        where = f"{manifest}: models[{i}]"
        if not isinstance(item, dict):
            raise DownloadError(f"{where} must be an object")
        path = item.get("path")
        if not isinstance(path, str) or not _is_safe_relative(path):
            raise DownloadError(f"{where}.path must be a relative path inside the models folder, got {path!r}")
        where = f"{manifest}: {path}"
        url = item.get("url")
        if not isinstance(url, str) or urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise DownloadError(f"{where}: 'url' must be an http(s) URL, got {url!r}")
        size = item.get("size")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size <= 0):
            raise DownloadError(f"{where}: 'size' must be a positive number of bytes or null, got {size!r}")
        sha = item.get("sha256")
        if sha is not None and (not isinstance(sha, str) or not _SHA256.match(sha)):
            raise DownloadError(f"{where}: 'sha256' must be 64 lowercase hex digits or null, got {sha!r}")
        optional = item.get("optional", False)
        if not isinstance(optional, bool):
            raise DownloadError(f"{where}: 'optional' must be true or false, got {optional!r}")
        entries.append(ModelEntry(path=path, url=url, size=size, sha256=sha, optional=optional))
    return entries


def _is_safe_relative(path: str) -> bool:
    p = PurePosixPath(path)
    return bool(path) and "\\" not in path and not p.is_absolute() and ".." not in p.parts and ":" not in path


def require_verifiable(entries: list[ModelEntry], manifest: Path) -> None:
    """Refuse the whole manifest if any required entry lacks a hash (checked before any work starts)."""
    for e in entries:
        if e.sha256 is None and not e.optional:
            raise DownloadError(
                f"{manifest}: {e.path} has no sha256; refusing to download a file that cannot be "
                "verified (fill in 'sha256' and 'size' from the publisher's page)"
            )


def downloadable(entries: list[ModelEntry]) -> list[ModelEntry]:
    """The entries to fetch: optional ones only once the manifest has their hash."""
    return [e for e in entries if e.sha256 is not None or not e.optional]


def sha256_of(path: Path, limit: int | None = None) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        _hash_into(h, f, limit)
    return h.hexdigest()


def _hash_into(h, f, limit: int | None = None) -> None:
    left = limit
    while left is None or left > 0:
        block = f.read(CHUNK if left is None else min(CHUNK, left))
        if not block:
            break
        h.update(block)
        if left is not None:
            left -= len(block)


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


class _Progress:
    """Prints `name  12.0/386.0 MB  3%  5.1 MB/s`: in place on a terminal, every 10% otherwise."""

    def __init__(self, name: str, done: int, total: int | None, out: TextIO):
        self.name, self.done, self.total, self.out = name, done, total, out
        self.tty = hasattr(out, "isatty") and out.isatty()
        self.start, self.start_done = time.monotonic(), done
        self.last_print, self.last_decile = 0.0, -1

    def update(self, done: int, final: bool = False) -> None:
        self.done = done
        now = time.monotonic()
        decile = done * 10 // self.total if self.total else -1
        if not final and (now - self.last_print < 0.5 if self.tty else decile == self.last_decile):
            return
        self.last_print, self.last_decile = now, decile
        speed = (done - self.start_done) / max(now - self.start, 1e-6)
        if self.total:
            text = f"  {self.name}  {_mb(done)}/{_mb(self.total)}  {100 * done // self.total}%  {_mb(int(speed))}/s"
        else:
            text = f"  {self.name}  {_mb(done)}  {_mb(int(speed))}/s"
        if self.tty:
            self.out.write("\r" + text.ljust(78) + ("\n" if final else ""))
        else:
            self.out.write(text + "\n")
        self.out.flush()


def download(entry: ModelEntry, models_dir: Path, out: TextIO | None = None, timeout: float = 30.0) -> str:
    """Fetch one entry into `models_dir`; returns 'present', 'downloaded' or 'resumed'."""
    out = out if out is not None else sys.stdout
    if entry.sha256 is None:
        raise DownloadError(f"{entry.path}: no sha256 in the manifest; refusing an unverifiable download")
    dest = models_dir.joinpath(*PurePosixPath(entry.path).parts)
    if dest.is_file() and (entry.size is None or dest.stat().st_size == entry.size):
        if sha256_of(dest) == entry.sha256:
            return "present"
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.is_file() else 0
    if entry.size is not None and offset > entry.size:
        offset = 0
    for attempt in range(2):  # the second attempt only after a 416 (our .part was unusable)
        try:
            resumed = _fetch(entry, part, offset, out, timeout)
            break
        except _RangeRejected:
            if attempt:
                raise DownloadError(f"{entry.url}: the server rejected the download range") from None
            offset = 0
    got_size = part.stat().st_size
    if entry.size is not None and got_size != entry.size:
        raise DownloadError(f"{entry.path}: download stopped at {got_size} of {entry.size} bytes; run again to resume")
    digest = sha256_of(part)
    if digest != entry.sha256:
        part.unlink()
        raise DownloadError(
            f"{entry.path}: SHA-256 mismatch (got {digest}, expected {entry.sha256}); "
            "the download was discarded, run again"
        )
    with part.open("rb+") as f:
        os.fsync(f.fileno())
    os.replace(part, dest)
    return "resumed" if resumed else "downloaded"


class _RangeRejected(Exception):
    pass


def _fetch(entry: ModelEntry, part: Path, offset: int, out: TextIO, timeout: float) -> bool:
    """Append the rest of the file (from `offset`) to `part`; True if it continued a partial file."""
    if entry.size is not None and offset == entry.size:
        return True  # complete already; verified by the caller
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(entry.url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - scheme checked on load
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            part.unlink(missing_ok=True)
            raise _RangeRejected() from None
        raise DownloadError(f"{entry.url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(f"cannot download {entry.path} from {entry.url}: {reason}") from None
    with response:
        length = response.headers.get("Content-Length")
        remaining = int(length) if length and length.isdigit() else None
        if offset and response.status == 206:
            start = _content_range_start(response.headers.get("Content-Range", ""))
            if start != offset:
                raise DownloadError(f"{entry.url}: the server resumed at byte {start}, not {offset}")
            mode = "ab"
        else:
            offset, mode = 0, "wb"  # a plain 200: the server sent the whole file
        total = offset + remaining if remaining is not None else entry.size
        if entry.size is not None and total is not None and total != entry.size:
            raise DownloadError(f"{entry.path}: the server offers {total} bytes but the manifest expects {entry.size}")
        free = shutil.disk_usage(part.parent).free
        if remaining is not None and remaining > free:
            raise DownloadError(
                f"not enough free space in {part.parent} for {entry.path}: need {_mb(remaining)}, have {_mb(free)}"
            )
        progress = _Progress(entry.path, offset, total, out)
        done = offset
        with part.open(mode) as f:
            try:
                while True:
                    block = response.read(CHUNK)
                    if not block:
                        break
                    f.write(block)
                    done += len(block)
                    progress.update(done)
            except (OSError, http.client.HTTPException) as exc:  # socket timeouts are OSErrors
                f.flush()
                progress.update(done, final=True)
                raise DownloadError(
                    f"download of {entry.path} was interrupted after {_mb(done)} ({exc}); run again to resume"
                ) from None
        progress.update(done, final=True)
    return offset > 0


def _content_range_start(value: str) -> int | None:
    m = re.match(r"bytes (\d+)-\d+/(?:\d+|\*)", value.strip())
    return int(m.group(1)) if m else None


def download_all(entries: list[ModelEntry], models_dir: Path, out: TextIO | None = None) -> dict[str, str]:
    """Download every entry in order; stops at the first failure (its DownloadError propagates)."""
    out = out if out is not None else sys.stdout
    results = {}
    for entry in entries:
        results[entry.path] = state = download(entry, models_dir, out)
        if state == "present":
            out.write(f"  {entry.path}: already present and verified\n")
        out.flush()
    return results
