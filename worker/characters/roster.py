"""The live set of characters: the folder's images, preloaded in the background, watched for changes.

The current character is loaded first (so the stream starts quickly); the rest are preprocessed
on a background thread, so a later switch is a dictionary look-up. The folder is polled once a
second: added, changed and removed images are picked up without stalling the stream.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from worker.characters.assets import CharacterAssets
from worker.characters.library import CharacterLibrary, LoadResult
from worker.errors import UserError

log = logging.getLogger(__name__)


class Roster:
    def __init__(self, library: CharacterLibrary, poll_s: float = 1.0) -> None:
        self.library = library
        self.poll_s = poll_s
        self._lock = threading.Lock()
        self._files: dict[str, tuple[int, int]] = {}  # id -> (mtime_ns, size) last seen
        self._ready: dict[str, CharacterAssets] = {}
        self._failed: dict[str, str] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # (change: 'added' | 'changed' | 'removed', id), called on the roster's thread; the live
        # worker sets it to publish a `characters` event
        self.on_change: Callable[[str, str], None] | None = None

    # --- queries --------------------------------------------------------------------------------
    def ids(self) -> list[str]:
        with self._lock:
            return sorted(self._files, key=str.lower)

    def get(self, cid: str) -> CharacterAssets | None:
        with self._lock:
            return self._ready.get(cid)

    def describe(self) -> list[dict]:
        with self._lock:
            out = []
            for i, cid in enumerate(sorted(self._files, key=str.lower)):
                state = "ready" if cid in self._ready else ("failed" if cid in self._failed else "loading")
                row = {"id": cid, "index": i + 1, "name": Path(cid).stem, "state": state}
                if cid in self._failed:
                    row["error"] = self._failed[cid]
                out.append(row)
            return out

    def resolve(
        self, current: str | None, character: str | None = None, index: int | None = None, step: int | None = None
    ) -> str:
        """The id named by a request: an id (or file stem), a 1-based index, or a step from `current`."""
        ids = self.ids()
        if not ids:
            raise UserError(f"{self.library.folder}: no characters")
        if character is not None:
            if not isinstance(character, str):
                raise UserError("character must be a string id")
            if character in ids:
                return character
            stems = [i for i in ids if Path(i).stem == character]
            if len(stems) == 1:
                return stems[0]
            raise UserError(f"unknown character {character!r}")
        if index is not None:
            if isinstance(index, bool) or not isinstance(index, int) or not 1 <= index <= len(ids):
                raise UserError(f"index must be 1..{len(ids)}, got {index!r}")
            return ids[index - 1]
        if step is not None:
            if isinstance(step, bool) or not isinstance(step, int):
                raise UserError("step must be an integer")
            pos = ids.index(current) if current in ids else -1
            return ids[(pos + step) % len(ids)]
        raise UserError("set_character needs 'character', 'index' or 'step'")

    # --- loading --------------------------------------------------------------------------------
    def load_now(self, cid: str) -> LoadResult:
        """Load one character on the caller's thread (used for the first one)."""
        r = self.library.load(self.library.folder / cid)
        self._record(cid, r)
        return r

    def scan_now(self) -> list[str]:
        """List the folder now (ids sorted); loading happens in `load_now` or the background."""
        self._scan()
        return self.ids()

    def start(self) -> Roster:
        self._thread = threading.Thread(target=self._run, name="characters", daemon=True)
        self._thread.start()
        return self

    def reload(self) -> None:
        """Rescan now (and retry failed images)."""
        with self._lock:
            self._failed.clear()
            self._files.clear()
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(5)

    def wait_idle(self, timeout: float) -> bool:
        """Block until every listed character is ready or failed (tests, benchmarks)."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if all(c in self._ready or c in self._failed for c in self._files):
                    return True
            time.sleep(0.05)
        return False

    def _record(self, cid: str, r: LoadResult) -> None:
        with self._lock:
            if r.assets is not None:
                self._ready[cid] = r.assets
                self._failed.pop(cid, None)
            else:
                self._ready.pop(cid, None)
                self._failed[cid] = r.error
        if r.assets is None:
            log.warning("character %s unusable: %s", cid, r.error)
        else:
            log.info("character %s %s in %.0f ms", cid, r.status, r.seconds * 1000)

    def _scan(self) -> list[str]:
        """Update the file list; returns ids that need (re)loading."""
        try:
            paths = self.library.scan()
        except UserError as e:
            log.warning("%s", e)
            paths = []
        seen: dict[str, tuple[int, int]] = {}
        for p in paths:
            try:
                st = p.stat()
            except OSError:
                continue
            seen[p.name] = (st.st_mtime_ns, st.st_size)
        with self._lock:
            removed = [c for c in self._files if c not in seen]
            todo = [
                c
                for c, sig in seen.items()
                if self._files.get(c) != sig or (c not in self._ready and c not in self._failed)
            ]
            self._files = seen
            for c in removed:
                self._ready.pop(c, None)
                self._failed.pop(c, None)
        for c in removed:
            log.info("character removed: %s", c)
            self._notify("removed", c)
        return sorted(todo, key=str.lower)

    def _run(self) -> None:
        while not self._stop.is_set():
            for cid in self._scan():
                if self._stop.is_set():
                    return
                known = cid in self._ready
                self._record(cid, self.library.load(self.library.folder / cid))
                self._notify("changed" if known else "added", cid)
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def _notify(self, event: str, cid: str) -> None:
        cb = self.on_change
        if cb is not None:
            try:
                cb(event, cid)
            except Exception:
                log.exception("character change callback failed")
