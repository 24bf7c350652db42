"""A folder of character images, each preprocessed once and served from the cache.

With a `preparer` (the renderer in use), each loaded character also carries that renderer's
prepared arrays, computed once per character and renderer version and cached beside it.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from worker.characters.assets import CharacterAssets
from worker.characters.cache import CharacterCache
from worker.characters.face_finder import StillFaceFinder
from worker.characters.face_marks import sidecar_digest, sidecar_stamp
from worker.characters.image_io import decode_image, is_image_file
from worker.characters.preparer import Preparer, preparer_tag
from worker.characters.preprocess import (
    STAGES,
    PreprocessSettings,
    StageHook,
    cache_key,
    content_hash,
    preprocess_image,
)
from worker.errors import UserError, os_reason

log = logging.getLogger(__name__)


@dataclass
class LoadResult:
    path: Path
    assets: CharacterAssets | None
    status: str  # "memory", "disk", "built", "rebuilt" or "failed"; with a preparer, the costlier of the two
    error: str = ""
    seconds: float = 0.0


_COST = ("memory", "disk", "built", "rebuilt")  # what a load cost, cheapest first


class CharacterLibrary:
    """Characters in `folder` (sorted by file name); the id of a character is its file name."""

    def __init__(
        self,
        folder: str | Path,
        cache: CharacterCache,
        settings: PreprocessSettings | None = None,
        finder: StillFaceFinder | None = None,
        preparer: Preparer | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.cache = cache
        self.settings = settings or PreprocessSettings()
        self.finder = finder
        self.preparer = preparer
        self._tag = preparer_tag(preparer) if preparer is not None else ""
        # (path, settings) -> (mtime_ns, size, sidecar stamp, key): a memory hit needs no file read or hash
        self._index: dict[tuple[Path, PreprocessSettings], tuple[int, int, object, str]] = {}
        self._lock = threading.Lock()

    def scan(self) -> list[Path]:
        if not self.folder.is_dir():
            raise UserError(f"{self.folder}: characters folder not found")
        return sorted(
            (p for p in self.folder.iterdir() if p.is_file() and is_image_file(p)), key=lambda p: p.name.lower()
        )

    def load(self, path: str | Path, on_stage: StageHook | None = None) -> LoadResult:
        """Assets of one image: from memory, disk, or preprocessed now. Never raises for bad input.
        `on_stage(name)` reports each of preprocess.STAGES the load really runs (none when cached)."""
        path = Path(path)
        t0 = time.perf_counter()
        try:
            st = path.stat()
            with self._lock:
                known = self._index.get((path, self.settings))
            stamp = sidecar_stamp(path)  # moved face marks are a different character
            if known and known[:3] == (st.st_mtime_ns, st.st_size, stamp):
                hit = self.cache.get_memory(known[3], self._tag)
                if hit is not None:
                    return LoadResult(path, hit, "memory", seconds=time.perf_counter() - t0)
            try:
                data = path.read_bytes()
            except OSError as e:
                raise UserError(f"{path}: cannot read ({e.strerror or e})") from None
            if not data:
                raise UserError(f"{path}: empty file (0 bytes)")
            key = cache_key(content_hash(data), self.settings, sidecar_digest(path))
            assets, where = self.cache.get(key)
            if assets is None:
                loaded = decode_image(data, str(path))
                built = preprocess_image(path, self.settings, self.finder, loaded=loaded, on_stage=on_stage)
                if on_stage:
                    on_stage(STAGES[4])
                assets = self.cache.put(built)
                where = "rebuilt" if where.startswith("invalid") else "built"
            if self.preparer is not None:
                assets, prepared = self.cache.prepared(assets, self.preparer, on_build=on_stage)
                where = max(where, prepared, key=_COST.index)
            with self._lock:
                self._index[(path, self.settings)] = (st.st_mtime_ns, st.st_size, stamp, key)
            return LoadResult(path, assets, where, seconds=time.perf_counter() - t0)
        except UserError as e:
            return LoadResult(path, None, "failed", str(e), seconds=time.perf_counter() - t0)
        except OSError as e:  # the image vanished, or the cache cannot be written: say which
            if not path.exists():
                return LoadResult(path, None, "failed", f"{path}: no such file", time.perf_counter() - t0)
            why = f"{path}: cannot be stored in the cache {self.cache.root} ({os_reason(e)})"
            return LoadResult(path, None, "failed", why, time.perf_counter() - t0)

    def load_all(self, on_result=None) -> list[LoadResult]:
        results = []
        for p in self.scan():
            r = self.load(p)
            if r.status == "failed":
                log.warning("character skipped: %s", r.error)
            results.append(r)
            if on_result:
                on_result(r)
        return results
