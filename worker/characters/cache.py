"""The character cache: an in-memory LRU over an on-disk store of `.npy` arrays + `meta.json`.

Disk layout: `<root>/<key>/` with `image.npy`, `landmarks.npy`, `arr.<name>.npy` and `meta.json`
(written last; it lists every file with its size and SHA-256). An entry is built in a private
temporary folder and renamed into place in one step, so a reader never sees half an entry and
two processes building the same character cannot corrupt each other: the second rename fails
and its copy is dropped. On load every file is checked against `meta.json`; anything stale,
truncated or altered raises `CacheError` and the caller rebuilds. Arrays load with
`allow_pickle=False` (never unpickle) and `mmap_mode="r"`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import uuid
from collections import OrderedDict
from pathlib import Path

import numpy as np

from worker.characters.assets import CharacterAssets
from worker.characters.preprocess import FORMAT_VERSION
from worker.errors import CacheError

log = logging.getLogger(__name__)

META = "meta.json"


class DiskCache:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / key

    def load(self, key: str) -> CharacterAssets:
        """The entry for `key`, verified. Raises `KeyError` if absent, `CacheError` if unusable."""
        d = self.path(key)
        meta_path = d / META
        if not meta_path.is_file():
            if d.exists():
                raise CacheError(f"{d}: incomplete entry (no {META})")
            raise KeyError(key)
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise CacheError(f"{meta_path}: unreadable ({e})") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION or meta.get("key") != key:
            raise CacheError(f"{meta_path}: stale or foreign entry")
        try:
            files = meta["files"]
            arrays = {}
            for fname, info in files.items():
                arrays[fname] = _load_verified(d / fname, int(info["size"]), str(info["sha256"]))
            image = arrays.pop("image.npy")
            landmarks = arrays.pop("landmarks.npy")
            extra = {k[len("arr."):-len(".npy")]: v for k, v in arrays.items()}
            size = int(meta["size"])
            if image.shape != (size, size, 4) or image.dtype != np.uint8 or landmarks.shape[1:] != (3,):
                raise CacheError(f"{d}: arrays have unexpected shapes")
            return CharacterAssets(
                key=key,
                name=str(meta["name"]),
                source=str(meta["source"]),
                size=size,
                image=image,
                landmarks=landmarks,
                crop_box=tuple(float(v) for v in meta["crop_box"]),
                had_alpha=bool(meta["had_alpha"]),
                arrays=extra,
                meta=dict(meta.get("info", {})),
            )
        except CacheError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise CacheError(f"{meta_path}: malformed ({type(e).__name__}: {e})") from None

    def store(self, assets: CharacterAssets) -> Path:
        """Write `assets` atomically. If another process got there first, keep theirs."""
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.path(assets.key)
        tmp = self.root / f".tmp-{assets.key}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            files = {}
            to_write = {"image.npy": assets.image, "landmarks.npy": assets.landmarks}
            to_write.update({f"arr.{k}.npy": v for k, v in assets.arrays.items()})
            for fname, arr in to_write.items():
                files[fname] = _save(tmp / fname, np.asarray(arr))
            meta = {
                "format": FORMAT_VERSION,
                "key": assets.key,
                "name": assets.name,
                "source": assets.source,
                "size": assets.size,
                "crop_box": list(assets.crop_box),
                "had_alpha": assets.had_alpha,
                "files": files,
                "info": assets.meta,
            }
            _write_synced(tmp / META, json.dumps(meta, indent=1).encode("utf-8"))
            _fsync_dir(tmp)
            self._publish(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return final

    def discard(self, key: str) -> None:
        """Move a bad entry out of the way (renamed first, so readers never see it half-deleted)."""
        d = self.path(key)
        if not d.exists():
            return
        trash = self.root / f".trash-{key}-{uuid.uuid4().hex[:8]}"
        try:
            os.replace(d, trash)
        except OSError:
            return
        shutil.rmtree(trash, ignore_errors=True)

    def keys(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def _publish(self, tmp: Path, final: Path) -> None:
        try:
            os.rename(tmp, final)
        except OSError:
            # Someone else published this key first (rename refuses a non-empty target). Theirs
            # is as good as ours if it verifies; otherwise replace it.
            try:
                self.load(final.name)
                return
            except (CacheError, KeyError):
                self.discard(final.name)
            try:
                os.rename(tmp, final)
            except OSError:
                pass  # lost a second race to an equally fresh entry
        _fsync_dir(self.root)


class CharacterCache:
    """Memory LRU (bounded by count and bytes) in front of a `DiskCache`; thread-safe."""

    def __init__(self, root: str | Path, max_items: int = 16, max_bytes: int = 1 << 30) -> None:
        self.disk = DiskCache(root)
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._mem: OrderedDict[str, CharacterAssets] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def root(self) -> Path:
        return self.disk.root

    def get_memory(self, key: str) -> CharacterAssets | None:
        with self._lock:
            a = self._mem.get(key)
            if a is not None:
                self._mem.move_to_end(key)
            return a

    def get(self, key: str) -> tuple[CharacterAssets | None, str]:
        """(assets, where): where is "memory", "disk", "miss" or "invalid: <why>"."""
        a = self.get_memory(key)
        if a is not None:
            return a, "memory"
        try:
            a = self.disk.load(key)
        except KeyError:
            return None, "miss"
        except CacheError as e:
            log.warning("cache entry rebuilt: %s", e)
            self.disk.discard(key)
            return None, f"invalid: {e}"
        self.put_memory(a)
        return a, "disk"

    def put(self, assets: CharacterAssets) -> CharacterAssets:
        """Store on disk, then keep the memory-mapped copy (what later loads will see)."""
        self.disk.store(assets)
        try:
            assets = self.disk.load(assets.key)
        except (KeyError, CacheError) as e:  # disk full or read-only: still usable from memory
            log.warning("cache: could not re-read %s (%s); keeping it in memory only", assets.key, e)
        self.put_memory(assets)
        return assets

    def put_memory(self, assets: CharacterAssets) -> None:
        with self._lock:
            self._mem[assets.key] = assets
            self._mem.move_to_end(assets.key)
            while len(self._mem) > self.max_items or (
                len(self._mem) > 1 and sum(a.nbytes for a in self._mem.values()) > self.max_bytes
            ):
                self._mem.popitem(last=False)

    def clear_memory(self) -> None:
        with self._lock:
            self._mem.clear()


def _save(path: Path, arr: np.ndarray) -> dict:
    with open(path, "wb") as f:
        np.save(f, np.ascontiguousarray(arr), allow_pickle=False)
        f.flush()
        os.fsync(f.fileno())
    return {"size": path.stat().st_size, "sha256": _sha256(path)}


def _load_verified(path: Path, size: int, sha: str) -> np.ndarray:
    try:
        st = path.stat()
    except OSError:
        raise CacheError(f"{path}: missing") from None
    if st.st_size != size:
        raise CacheError(f"{path}: truncated or resized ({st.st_size} bytes, expected {size})")
    if _sha256(path) != sha:
        raise CacheError(f"{path}: content changed (checksum mismatch)")
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as e:
        raise CacheError(f"{path}: unreadable array ({e})") from None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    if os.name != "posix":
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
