"""The studio's characters: the folder as a list with each picture's `check` verdict, thumbnails,
safe uploads into the folder, and preparing (the same cache `run` and `render` read).

Uploads are refused with one line and nothing written when the name would leave the folder, the
content is not a PNG, JPEG or WebP picture (judged by decoding it, not by its name), or it is
larger than `MAX_UPLOAD_BYTES`; accepted ones are written atomically under a free name.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
import threading
from pathlib import Path

from PIL import Image

from worker.characters.cache import CharacterCache
from worker.characters.face_marks import sidecar_digest, sidecar_stamp
from worker.characters.image_io import decode_image, is_image_file
from worker.characters.library import CharacterLibrary
from worker.characters.preparer import preparer_tag
from worker.characters.preprocess import STAGES, PreprocessSettings, cache_key, content_hash
from worker.characters.validation import check_image
from worker.errors import UserError, os_reason
from worker.paths import SAMPLE_CHARACTERS_DIR

MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # a 4K PNG is ~10-15 MB
THUMB = 160
_FORMATS = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp"}
_SAFE = re.compile(r"[^A-Za-z0-9._ -]+")


def safe_name(folder: Path, name: str) -> Path:
    """`folder/name` for a plain file name; a UserError for anything that could leave the folder."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name or ".." in name:
        raise UserError(f"{name!r}: refused: only a plain file name inside the characters folder is allowed")
    if name.startswith("."):
        raise UserError(f"{name!r}: refused: hidden file names are not characters")
    path = (folder / name).resolve()
    if path.parent != folder.resolve():
        raise UserError(f"{name!r}: refused: outside the characters folder")
    return path


class Characters:
    """The characters folder, its verdicts (kept until a file changes) and its cache."""

    def __init__(self, folder: str | Path, cache: CharacterCache, size: int = 512, renderer: str = "meshwarp"):
        self.folder = Path(folder).expanduser()
        if not self.folder.is_dir():
            raise UserError(f"{self.folder}: characters folder not found")
        self.cache = cache
        self.settings = PreprocessSettings(size=size)
        self.settings.validate()
        self.renderer_name = renderer
        self._verdicts: dict[str, tuple[object, dict]] = {}
        self._lock = threading.Lock()
        self._renderer_tag: str | None = None

    # --- listing ---------------------------------------------------------------------------------
    def path(self, name: str) -> Path:
        """An existing character picture by its file name (never outside the folder)."""
        p = safe_name(self.folder, name)
        if not p.is_file() or not is_image_file(p):
            raise UserError(f"{name}: no such character picture in {self.folder}")
        return p

    def list(self) -> list[dict]:
        """Every picture in the folder with its verdict (computed once per file version)."""
        lib = CharacterLibrary(self.folder, self.cache, self.settings)
        return [self.verdict(p) for p in lib.scan()]

    def verdict(self, path: Path) -> dict:
        st = path.stat()
        stamp = (st.st_mtime_ns, st.st_size, sidecar_stamp(path))
        with self._lock:
            known = self._verdicts.get(path.name)
        if known is None or known[0] != stamp:
            report = check_image(str(path))
            report["file"] = path.name
            if report.get("error"):  # the card names the picture already: no folder path in the way
                report["error"] = report["error"].replace(str(path), path.name)
            known = (stamp, report)
            with self._lock:
                self._verdicts[path.name] = known
        report = dict(known[1])
        report["verdict"] = "no" if not report["usable"] else ("warnings" if report["warnings"] else "usable")
        report["prepared"] = self.is_prepared(path)
        return report

    def is_prepared(self, path: Path) -> bool:
        """Whether the cache holds this picture and the renderer's arrays for it (a quick look, no load)."""
        try:
            key = cache_key(content_hash(path.read_bytes()), self.settings, sidecar_digest(path))
        except OSError:
            return False
        return self.cache.disk.path(key).is_dir() and self.cache.disk.path(key, self._tag()).is_dir()

    def _tag(self) -> str:
        """The renderer's name in the cache (its arrays' folder), asked once."""
        if self._renderer_tag is None:
            from worker.render import create_renderer

            r = create_renderer(self.renderer_name, size=self.settings.size)
            try:
                self._renderer_tag = preparer_tag(r)
            finally:
                r.close()
        return self._renderer_tag

    def thumbnail(self, name: str) -> bytes:
        """A PNG at most THUMB pixels across, keeping the picture's transparency."""
        img = decode_image(self.path(name).read_bytes(), name)
        pil = Image.fromarray(img.rgba)
        pil.thumbnail((THUMB, THUMB))
        buf = io.BytesIO()
        pil.save(buf, "PNG")
        return buf.getvalue()

    # --- adding ----------------------------------------------------------------------------------
    def add(self, name: str, data: bytes) -> dict:
        """Write an uploaded picture into the folder; returns its verdict."""
        if len(data) > MAX_UPLOAD_BYTES:
            raise UserError(f"{name}: refused: larger than the {MAX_UPLOAD_BYTES >> 20} MB upload limit")
        target = safe_name(self.folder, name)
        if self.folder.resolve() == SAMPLE_CHARACTERS_DIR.resolve():
            raise UserError(
                f"{name}: refused: {self.folder} holds the bundled samples; set your own folder first "
                "(Settings: characters.folder, or studio --characters)"
            )
        if not data:
            raise UserError(f"{name}: refused: empty file")
        try:
            fmt = Image.open(io.BytesIO(data)).format
        except Exception:
            fmt = None
        if fmt not in _FORMATS:
            raise UserError(f"{name}: refused: not a PNG, JPEG or WebP picture")
        decode_image(data, name)  # the whole picture must decode (UserError: truncated, too large)
        stem = _SAFE.sub("_", Path(target.name).stem).strip(" .") or "character"
        final = self._free(stem, _FORMATS[fmt])
        fd, tmp = tempfile.mkstemp(prefix=".upload-", suffix=".part", dir=self.folder)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the picture from other programs
            os.replace(tmp, final)
        except OSError as e:
            Path(tmp).unlink(missing_ok=True)
            raise UserError(f"{final}: cannot write ({os_reason(e)})") from None
        return self.verdict(final)

    def _free(self, stem: str, ext: str) -> Path:
        for i in range(1, 1000):
            p = self.folder / (f"{stem}{ext}" if i == 1 else f"{stem}-{i}{ext}")
            if not p.exists():
                return p
        raise UserError(f"{stem}{ext}: too many pictures with this name")

    # --- preparing -------------------------------------------------------------------------------
    def library(self, renderer) -> CharacterLibrary:
        return CharacterLibrary(self.folder, self.cache, self.settings, preparer=renderer)

    def prepare(self, name: str, job) -> dict:
        """Prepare one character for the renderer (face, crop, cut-out, renderer arrays), cached."""
        from worker.render import create_renderer

        path = self.path(name)
        total = 2 + len(STAGES)  # the renderer, the cache, then the preparer's own stages as they begin
        job.step(0, total, f"{name}: loading the renderer")
        renderer = create_renderer(self.renderer_name, size=self.settings.size)
        try:
            job.step(1, total, f"{name}: reading the cache")
            loaded = self.library(renderer).load(
                path, on_stage=lambda stage: job.step(2 + STAGES.index(stage), total, f"{name}: {stage}")
            )
        finally:
            renderer.close()
        if loaded.assets is None:
            raise UserError(loaded.error)
        job.step(total, total, f"{name}: {loaded.status} in {loaded.seconds:.2f} s")
        return {
            "file": name,
            "status": loaded.status,
            "seconds": round(loaded.seconds, 3),
            "warnings": list(loaded.assets.meta.get("warnings", [])),
        }
