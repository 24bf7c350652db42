"""The character cache: an in-memory LRU over an on-disk store of `.npy` arrays + `meta.json`.

Disk layout: `<root>/<key>/` holds the character (`image.npy`, `landmarks.npy`, `meta.json`);
`<root>/<key>/<name>.v<version>/` holds what the renderer `<name>` prepared for it at that
`prepare_version` (`arr.<array>.npy` + `meta.json`), one sub-entry per renderer and version, so
a renderer adds its own without touching the others and a version bump is a new sub-entry.
Every entry's `meta.json` is written last and lists each file with its size and SHA-256. An
entry is built in a private temporary folder and renamed into place in one step, so a reader
never sees half an entry and two processes building the same one cannot corrupt each other:
the second rename fails and its copy is dropped. On load every file is checked against
`meta.json`; anything stale, truncated or altered raises `CacheError` and the caller rebuilds.
Arrays load with `allow_pickle=False` (never unpickle) and `mmap_mode="r"`.

The disk store is bounded (`max_disk_bytes`, default `DEFAULT_MAX_DISK_MB`, or
`$STREAM_ANIMATOR_CACHE_MAX_MB`): each load touches its entry's folder, and after each store the
least recently used entries are removed until the total fits (never the one just stored).
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
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from worker.characters.assets import CharacterAssets
from worker.characters.preparer import Preparer, check_arrays, preparer_tag
from worker.characters.preprocess import FORMAT_VERSION, STAGES, StageHook
from worker.errors import CacheError, UserError, os_reason

log = logging.getLogger(__name__)

META = "meta.json"
DEFAULT_MAX_DISK_MB = 1024  # ~380 characters at 512 px with the meshwarp arrays


def default_max_disk_bytes() -> int:
    raw = os.environ.get("STREAM_ANIMATOR_CACHE_MAX_MB", "").strip()
    try:
        mb = float(raw) if raw else DEFAULT_MAX_DISK_MB
    except ValueError:
        raise UserError(f"$STREAM_ANIMATOR_CACHE_MAX_MB: {raw!r} is not a number of megabytes") from None
    return int(mb * 1024 * 1024)


def check_cache_dir(root: str | Path) -> Path:
    """The cache folder `root`, created and proven writable before any work; `UserError` naming it."""
    root = Path(root).expanduser()
    if root.exists() and not root.is_dir():
        raise UserError(f"{root}: the cache must be a folder, this is a file")
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".write-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        probe.write_bytes(b"")
        probe.unlink()
    except FileExistsError:
        raise UserError(f"{root}: cannot use as the cache (a file is in the way)") from None
    except OSError as e:
        raise UserError(f"{root}: cannot write to the cache folder ({os_reason(e)})") from None
    return root


def open_cache(root: str | Path | None) -> CharacterCache:
    """The character cache at `root` (None: the default folder), checked writable first."""
    from worker.paths import default_cache_dir

    return CharacterCache(check_cache_dir(root if root not in (None, "") else default_cache_dir()))


@dataclass
class EntryInfo:
    key: str
    bytes: int
    last_used: float  # seconds since the epoch (the entry folder's mtime, touched on each load)


class DiskCache:
    def __init__(self, root: str | Path, max_bytes: int | None = None) -> None:
        self.root = Path(root)
        self.max_bytes = default_max_disk_bytes() if max_bytes is None else max_bytes

    def path(self, key: str, tag: str = "") -> Path:
        """The folder of a character (`tag` "") or of a preparer's arrays for it."""
        return self.root / key / tag if tag else self.root / key

    def load(self, key: str) -> CharacterAssets:
        """The character entry for `key`, verified. Raises `KeyError` if absent, `CacheError` if unusable."""
        d = self.path(key)
        meta, arrays = _load_entry(d, lambda m: m.get("key") == key and "tag" not in m)
        _touch(d)
        try:
            image = arrays.pop("image.npy")
            landmarks = arrays.pop("landmarks.npy")
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
                crop_box=_box(meta["crop_box"]),
                had_alpha=bool(meta["had_alpha"]),
                meta=dict(meta.get("info", {})),
            )
        except CacheError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise CacheError(f"{d / META}: malformed ({type(e).__name__}: {e})") from None

    def store(self, assets: CharacterAssets) -> Path:
        """Write the character (not its prepared arrays) atomically. If another process got there first, keep theirs."""
        meta = {
            "key": assets.key,
            "name": assets.name,
            "source": assets.source,
            "size": assets.size,
            "crop_box": list(assets.crop_box),
            "had_alpha": assets.had_alpha,
            "info": assets.meta,
        }
        files = {"image.npy": assets.image, "landmarks.npy": assets.landmarks}
        out = self._store_entry(self.path(assets.key), files, meta, lambda: self.load(assets.key))
        self.evict(keep=assets.key)
        return out

    def load_prepared(self, key: str, tag: str) -> dict[str, np.ndarray]:
        """The arrays `tag` prepared for character `key`. `KeyError` if absent, `CacheError` if unusable."""
        _, arrays = _load_entry(self.path(key, tag), lambda m: m.get("key") == key and m.get("tag") == tag)
        _touch(self.path(key))
        if not all(f.startswith("arr.") and f.endswith(".npy") for f in arrays):
            raise CacheError(f"{self.path(key, tag) / META}: malformed (unexpected file names)")
        return {f[len("arr.") : -len(".npy")]: v for f, v in arrays.items()}

    def store_prepared(self, key: str, tag: str, arrays: dict[str, np.ndarray]) -> Path:
        """Write `tag`'s arrays beside character `key` (which must be on disk already), atomically."""
        if not (self.path(key) / META).is_file():
            raise CacheError(f"{self.path(key)}: no character entry to prepare beside")
        files = {f"arr.{k}.npy": v for k, v in arrays.items()}
        out = self._store_entry(
            self.path(key, tag), files, {"key": key, "tag": tag}, lambda: self.load_prepared(key, tag)
        )
        self.evict(keep=key)
        return out

    def entries(self) -> list[EntryInfo]:
        """Every character entry with its size on disk (prepared arrays included), oldest use first."""
        out = []
        for key in self.keys():
            d = self.path(key)
            try:
                size = sum(f.stat().st_size for f in d.rglob("*") if f.is_file())
                out.append(EntryInfo(key, size, d.stat().st_mtime))
            except OSError:  # removed meanwhile by another process
                continue
        return sorted(out, key=lambda e: e.last_used)

    def evict(self, keep: str = "") -> list[str]:
        """Remove least recently used entries until the store fits `max_bytes`; returns their keys."""
        entries = self.entries()
        total = sum(e.bytes for e in entries)
        removed = []
        for e in entries:
            if total <= self.max_bytes:
                break
            if e.key == keep:
                continue
            _discard_dir(self.path(e.key))
            total -= e.bytes
            removed.append(e.key)
        if removed:
            log.info(
                "cache: removed %d least recently used entries to stay under %d MB", len(removed), self.max_bytes >> 20
            )
        return removed

    def clear(self) -> int:
        """Remove every entry (and leftovers of interrupted writes); returns the bytes freed."""
        freed = 0
        if not self.root.is_dir():
            return 0
        for d in self.root.iterdir():
            if d.is_dir() and (d.name.startswith((".tmp-", ".trash-")) or (d / META).is_file() or len(d.name) == 40):
                freed += sum(f.stat().st_size for f in d.rglob("*") if f.is_file())
                _discard_dir(d)
        return freed

    def discard(self, key: str, tag: str = "") -> None:
        """Move a bad entry out of the way (renamed first, so readers never see it half-deleted)."""
        _discard_dir(self.path(key, tag))

    def keys(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(  # `lipsync/` beside the characters is the voice's (worker.audio.lipsync_cache)
            p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name != "lipsync"
        )

    def _store_entry(self, final: Path, files: dict[str, np.ndarray], meta: dict, verify) -> Path:
        """Write `files` + `meta.json` into a private folder, then rename it to `final` in one step."""
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.parent / f".tmp-{final.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            listed = {fname: _save(tmp / fname, np.asarray(arr)) for fname, arr in files.items()}
            meta = {"format": FORMAT_VERSION, **meta, "files": listed}
            _write_synced(tmp / META, json.dumps(meta, indent=1).encode("utf-8"))
            _fsync_dir(tmp)
            self._publish(tmp, final, verify)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return final

    def _publish(self, tmp: Path, final: Path, verify) -> None:
        try:
            os.rename(tmp, final)
        except OSError:
            # Someone else published this entry first (rename refuses a non-empty target). Theirs
            # is as good as ours if it verifies; otherwise replace it.
            try:
                verify()
                return
            except (CacheError, KeyError):
                _discard_dir(final)
            try:
                os.rename(tmp, final)
            except OSError:
                pass  # lost a second race to an equally fresh entry
        _fsync_dir(final.parent)


@dataclass
class _Held:
    """One character in memory: the character alone and, per preparer tag, with its arrays."""

    base: CharacterAssets
    prepared: dict[str, CharacterAssets] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:  # the picture is shared by all of them: count it once
        return int(
            self.base.image.nbytes
            + self.base.landmarks.nbytes
            + sum(a.nbytes for p in self.prepared.values() for a in p.arrays.values())
        )


class CharacterCache:
    """Memory LRU (bounded by characters and bytes) in front of a `DiskCache`; thread-safe."""

    def __init__(
        self, root: str | Path, max_items: int = 16, max_bytes: int = 1 << 30, max_disk_bytes: int | None = None
    ) -> None:
        self.disk = DiskCache(root, max_disk_bytes)
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._mem: OrderedDict[str, _Held] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def root(self) -> Path:
        return self.disk.root

    def get_memory(self, key: str, tag: str = "") -> CharacterAssets | None:
        """The character `key` from memory: alone (`tag` "") or with the arrays of preparer `tag`."""
        with self._lock:
            held = self._mem.get(key)
            if held is None:
                return None
            self._mem.move_to_end(key)
            return held.prepared.get(tag) if tag else held.base

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

    def prepared(
        self, assets: CharacterAssets, preparer: Preparer, on_build: StageHook | None = None
    ) -> tuple[CharacterAssets, str]:
        """`assets` with `preparer`'s arrays, and where they came from: "memory", "disk", "built"
        or "rebuilt" (a damaged entry). `preparer.prepare` runs only when neither has them (then
        `on_build` hears its stage, STAGES[5], first)."""
        tag = preparer_tag(preparer)
        hit = self.get_memory(assets.key, tag)
        if hit is not None:
            return hit, "memory"
        where = "built"
        try:
            arrays = self.disk.load_prepared(assets.key, tag)
            where = "disk"
        except KeyError:
            arrays = None
        except CacheError as e:
            log.warning("cache entry rebuilt: %s", e)
            self.disk.discard(assets.key, tag)
            arrays, where = None, "rebuilt"
        if arrays is None:
            if on_build:
                on_build(STAGES[5])
            arrays = check_arrays(tag, preparer.prepare(assets.cutout))
            try:
                self.disk.store_prepared(assets.key, tag, arrays)
                arrays = self.disk.load_prepared(assets.key, tag)
            except (OSError, KeyError, CacheError) as e:  # disk full or read-only: memory only
                log.warning("cache: could not store %s for %s (%s); keeping it in memory only", tag, assets.key, e)
        out = replace(self.get_memory(assets.key) or assets, arrays=arrays, prepared_by=tag)
        self.put_memory(out, tag)
        return out, where

    def put_memory(self, assets: CharacterAssets, tag: str = "") -> None:
        with self._lock:
            held = self._mem.get(assets.key)
            if held is None:
                base = replace(assets, arrays={}, prepared_by="") if tag else assets
                held = self._mem[assets.key] = _Held(base)
            if tag:
                held.prepared[tag] = assets
            else:
                held.base = assets
            self._mem.move_to_end(assets.key)
            while len(self._mem) > self.max_items or (
                len(self._mem) > 1 and sum(h.nbytes for h in self._mem.values()) > self.max_bytes
            ):
                self._mem.popitem(last=False)

    def clear_memory(self) -> None:
        with self._lock:
            self._mem.clear()


def _load_entry(d: Path, belongs) -> tuple[dict, dict[str, np.ndarray]]:
    """(meta, {file name: array}) of the entry in folder `d`, every file verified against `meta.json`.

    `belongs(meta)` says whether the entry is the one asked for (key, tag). Raises `KeyError` if
    there is no entry, `CacheError` if it is unusable.
    """
    meta_path = d / META
    if not meta_path.is_file():
        if d.exists():
            raise CacheError(f"{d}: incomplete entry (no {META})")
        raise KeyError(str(d))
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CacheError(f"{meta_path}: unreadable ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION or not belongs(meta):
        raise CacheError(f"{meta_path}: stale or foreign entry")
    try:
        arrays = {f: _load_verified(d / f, int(i["size"]), str(i["sha256"])) for f, i in meta["files"].items()}
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise CacheError(f"{meta_path}: malformed ({type(e).__name__}: {e})") from None
    return meta, arrays


def _touch(d: Path) -> None:
    """Mark an entry as just used (its folder's mtime orders the eviction)."""
    try:
        os.utime(d)
    except OSError:  # a read-only cache still serves; it just cannot order its entries
        pass


def _discard_dir(d: Path) -> None:
    if not d.exists():
        return
    trash = d.parent / f".trash-{d.name}-{uuid.uuid4().hex[:8]}"
    try:
        os.replace(d, trash)
    except OSError:
        return
    shutil.rmtree(trash, ignore_errors=True)


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


def _box(values: list) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = (float(v) for v in values)
    return x0, y0, x1, y1
