"""Where prepared characters go: the user's cache folder (never the checkout), a size limit with
least-recently-used eviction, and config paths relative to the config file."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import platformdirs
import pytest

from worker.characters.assets import CharacterAssets
from worker.characters.cache import DiskCache, check_cache_dir
from worker.config import load_config
from worker.errors import UserError
from worker.paths import default_cache_dir, repo_root


def test_default_is_the_users_cache_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("STREAM_ANIMATOR_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    d = default_cache_dir()
    assert d == Path(platformdirs.user_cache_dir("stream-animator", appauthor=False))
    assert d == tmp_path / "xdg" / "stream-animator"  # Linux: $XDG_CACHE_HOME
    root = repo_root()
    assert root is None or root not in d.parents
    monkeypatch.setenv("STREAM_ANIMATOR_CACHE", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"


def test_the_suite_never_uses_the_real_user_cache():
    real = Path(platformdirs.user_cache_dir("stream-animator", appauthor=False))
    assert default_cache_dir() != real  # tests/conftest.py points the suite elsewhere


def _assets(key: str, seed: int) -> CharacterAssets:
    rng = np.random.default_rng(seed)
    return CharacterAssets(
        key=key,
        name=key,
        source=f"{key}.png",
        size=64,
        image=rng.integers(0, 255, (64, 64, 4), dtype=np.uint8),
        landmarks=rng.random((478, 3), dtype=np.float32),
        crop_box=(0, 0, 64, 64),
        had_alpha=True,
    )


def test_disk_limit_evicts_the_least_recently_used(tmp_path):
    probe = DiskCache(tmp_path / "probe", max_bytes=1 << 40)
    probe.store(_assets("a" * 40, 0))
    one = probe.entries()[0].bytes
    disk = DiskCache(tmp_path / "c", max_bytes=int(2.5 * one))  # room for two entries
    keys = ["a" * 40, "b" * 40, "c" * 40]
    disk.store(_assets(keys[0], 0))
    time.sleep(0.02)
    disk.store(_assets(keys[1], 1))
    time.sleep(0.02)
    disk.load(keys[0])  # used again: now b is the least recently used
    time.sleep(0.02)
    disk.store(_assets(keys[2], 2))
    assert disk.keys() == [keys[0], keys[2]]
    assert sum(e.bytes for e in disk.entries()) <= disk.max_bytes
    assert not [p for p in (tmp_path / "c").iterdir() if p.name.startswith(".")]  # nothing half-deleted


def test_limit_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("STREAM_ANIMATOR_CACHE_MAX_MB", "3")
    assert DiskCache(tmp_path).max_bytes == 3 * 1024 * 1024
    monkeypatch.setenv("STREAM_ANIMATOR_CACHE_MAX_MB", "lots")
    with pytest.raises(UserError, match="STREAM_ANIMATOR_CACHE_MAX_MB: 'lots' is not a number"):
        DiskCache(tmp_path)


def test_cache_folder_checked_before_work(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(UserError, match=r"f: the cache must be a folder, this is a file"):
        check_cache_dir(tmp_path / "f")
    with pytest.raises(UserError, match=r"/proc/nope/c: cannot write to the cache folder \(No such file"):
        check_cache_dir("/proc/nope/c")
    assert check_cache_dir(tmp_path / "new" / "c").is_dir()
    assert os.listdir(tmp_path / "new" / "c") == []  # the write test leaves nothing


def test_config_paths_are_relative_to_the_file(tmp_path, monkeypatch):
    sub = tmp_path / "setup"
    sub.mkdir()
    (sub / "talk.wav").write_bytes(b"RIFF")
    cfg = sub / "c.yaml"
    cfg.write_text(
        "characters: {folder: chars}\ncamera: {source: clips/me.mp4}\ncache_dir: ../cache\n"
        "voice: {mic: talk.wav}\noutputs: [{type: file, path: rec/out.mp4}, {type: obs}]\n"
    )
    monkeypatch.chdir(tmp_path)  # somewhere else than the file
    c = load_config(cfg)
    assert c["characters"]["folder"] == str(sub / "chars")
    assert c["camera"]["source"] == str(sub / "clips" / "me.mp4")
    assert Path(c["cache_dir"]).resolve() == (tmp_path / "cache").resolve()
    assert c["voice"]["mic"] == str(sub / "talk.wav")
    assert c["outputs"][0]["path"] == str(sub / "rec" / "out.mp4")
    cfg.write_text("camera: {source: 'webcam:1'}\ncharacters: {folder: /abs/chars}\nvoice: {mic: default}\n")
    c = load_config(cfg)
    assert c["camera"]["source"] == "webcam:1" and c["characters"]["folder"] == "/abs/chars"
    assert c["voice"]["mic"] == "default"
