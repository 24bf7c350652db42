"""Where things live: the repository, bundled assets, the default cache and models folders."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
ASSETS_DIR = PACKAGE_DIR / "assets"
SAMPLE_CHARACTERS_DIR = ASSETS_DIR / "characters"
SAMPLE_CHARACTER = SAMPLE_CHARACTERS_DIR / "astronaut.png"  # the photograph
DEMO_CHARACTER = SAMPLE_CHARACTERS_DIR / "astronaut_toon.png"  # painted cut-out made from it (RGBA)


def repo_root() -> Path | None:
    """The source checkout this package runs from, if any (an editable install)."""
    root = PACKAGE_DIR.parent
    return root if (root / "pyproject.toml").is_file() else None


def _place(env: str, in_checkout: str, xdg_env: str, xdg_default: tuple[str, ...]) -> Path:
    """`$env`, else a folder of the checkout, else the per-user XDG folder for it."""
    if os.environ.get(env):
        return Path(os.environ[env])
    root = repo_root()
    if root is not None:
        return root / in_checkout
    base = os.environ.get(xdg_env) or os.path.join(Path.home(), *xdg_default)
    return Path(base) / "stream-animator"


def default_cache_dir() -> Path:
    """`$STREAM_ANIMATOR_CACHE`, else the user's cache folder (~/.cache/stream-animator on Linux,
    %LOCALAPPDATA%\\stream-animator\\Cache on Windows, ~/Library/Caches/stream-animator on macOS):
    never the checkout, which may be read-only or shared."""
    if os.environ.get("STREAM_ANIMATOR_CACHE"):
        return Path(os.environ["STREAM_ANIMATOR_CACHE"]).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("stream-animator", appauthor=False))


def shared_testdata() -> Path | None:
    """`../shared/testdata` beside the checkout (or `$STREAM_ANIMATOR_TESTDATA`), if present."""
    env = os.environ.get("STREAM_ANIMATOR_TESTDATA")
    candidates = [Path(env)] if env else []
    root = repo_root()
    if root is not None:
        candidates.append(root.parent / "shared" / "testdata")
    for c in candidates:
        if (c / "footage").is_dir():
            return c
    return None


def bench_clip() -> Path:
    """The benches' driving clip: a real talking person from the shared test data, else the bundled clip."""
    td = shared_testdata()
    return td / "footage" / "driving" / "d3.mp4" if td is not None else SAMPLE_DRIVER


def default_log_dir() -> Path:
    """`$STREAM_ANIMATOR_LOGS`, else `logs/` of the checkout, else a per-user state folder."""
    return _place("STREAM_ANIMATOR_LOGS", "logs", "XDG_STATE_HOME", (".local", "state"))


SAMPLE_DRIVER = ASSETS_DIR / "driving" / "demo_driver.mp4"
