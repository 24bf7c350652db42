"""Where the LivePortrait weights are, and whether they are present and verified.

The list of files, their URLs, sizes and SHA-256 is `models/manifest.json`, read with the
installer's own parser (installer/model_download.py), so the installer, `stream-animator models`
and the renderer agree on one definition. Verification hashes each file once and remembers the
result by size and modification time (`.prepared/hashes.json` beside the weights).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from worker.errors import UserError
from worker.paths import repo_root

LP_PREFIX = "liveportrait/"
# LivePortrait's animal model: the same six networks and signatures, used for characters of kind animal
ANIMAL_PREFIX = "liveportrait_animal/"
# the network sets by name (folder prefix in the models folder); "human" is the one that must be there
NET_SETS = {"human": LP_PREFIX, "animal": ANIMAL_PREFIX}
# tests only: a folder of stand-in graphs (standin.build_models) that the renderer accepts unverified,
# so the whole pipeline runs end to end without weights; everything it reports says "stand-in"
STANDIN_ENV = "STREAM_ANIMATOR_STANDIN_MODELS"


def standin_dir() -> Path | None:
    """The stand-in graphs' folder when the test-only `$STREAM_ANIMATOR_STANDIN_MODELS` is set."""
    v = os.environ.get(STANDIN_ENV, "").strip()
    return Path(v) if v else None


def default_models_dir() -> Path:
    """The stand-in graphs (tests), else `$STREAM_ANIMATOR_MODELS`, else `models/` of the
    checkout, else a per-user data folder."""
    standin = standin_dir()
    if standin is not None:
        return standin
    if os.environ.get("STREAM_ANIMATOR_MODELS"):
        return Path(os.environ["STREAM_ANIMATOR_MODELS"])
    root = repo_root()
    if root is not None:
        return root / "models"
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base) / "stream-animator" / "models"


def default_manifest() -> Path:
    root = repo_root()
    if root is None:
        raise UserError("models/manifest.json: not found (the worker does not run from a source checkout)")
    return root / "models" / "manifest.json"


def downloader():
    """installer/model_download.py as a module (the installer is plain files, not a package)."""
    return installer_module("model_download")


def installer_module(stem: str):
    """installer/<stem>.py as a module, loaded once."""
    name = f"stream_animator_{stem}"
    if name in sys.modules:
        return sys.modules[name]
    root = repo_root()
    path = (root / "installer" / f"{stem}.py") if root else None
    if path is None or not path.is_file():
        raise UserError(f"installer/{stem}.py: not found (the worker does not run from a source checkout)")
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:  # (a .py file always has both)
        raise UserError(f"installer/{stem}.py: cannot be loaded as a module")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def load_entries(manifest: Path | None = None, prefix: str = LP_PREFIX) -> list:
    md = downloader()
    manifest = manifest or default_manifest()
    try:
        entries = md.load_manifest(manifest)
    except md.DownloadError as e:
        raise UserError(str(e)) from None
    return [e for e in entries if e.path.startswith(prefix)]


@dataclass
class FileStatus:
    path: str  # relative to the models folder
    file: Path
    state: str  # verified | present | missing | mismatch | unverifiable | partial
    detail: str = ""
    size: int | None = None

    @property
    def ok(self) -> bool:
        return self.state == "verified"


def check(entry, models_dir: Path, verify: bool = True) -> FileStatus:
    """The state of one manifest entry's file (hashing only when `verify`)."""
    from worker.render.liveportrait.graph_prep import CACHE_DIR, _sha256

    f = models_dir.joinpath(*entry.path.split("/"))
    if not f.is_file():
        part = f.with_name(f.name + ".part")
        if part.is_file():
            return FileStatus(entry.path, f, "partial", f"{part.stat().st_size} bytes downloaded; --download resumes")
        return FileStatus(entry.path, f, "missing")
    size = f.stat().st_size
    if entry.size is not None and size != entry.size:
        return FileStatus(entry.path, f, "mismatch", f"size {size}, expected {entry.size}", size)
    if entry.sha256 is None:
        return FileStatus(entry.path, f, "unverifiable", "no published SHA-256 in the manifest", size)
    if not verify:
        return FileStatus(entry.path, f, "present", "", size)
    digest = _sha256(f, f.parent / CACHE_DIR)
    if digest != entry.sha256:
        return FileStatus(entry.path, f, "mismatch", f"SHA-256 {digest[:12]}..., expected {entry.sha256[:12]}...", size)
    return FileStatus(entry.path, f, "verified", "", size)


def check_all(
    models_dir: Path | None = None, manifest: Path | None = None, verify: bool = True, prefix: str = LP_PREFIX
) -> list[FileStatus]:
    models_dir = models_dir or default_models_dir()
    return [check(e, models_dir, verify) for e in load_entries(manifest, prefix)]


def set_file(spec_file: str, prefix: str) -> str:
    """A network's file (networks.SPECS, under `liveportrait/`) in the set under `prefix`."""
    return prefix + spec_file.removeprefix(LP_PREFIX)
