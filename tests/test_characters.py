"""Characters: loading every kind of image, finding faces, the verified cache, bad inputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from worker.characters.cache import CharacterCache
from worker.characters.image_io import load_image
from worker.characters.library import CharacterLibrary
from worker.characters.preprocess import PreprocessSettings, preprocess_image
from worker.errors import NoFaceError, UserError
from worker.paths import SAMPLE_CHARACTER

PORTRAITS = ["s6.jpg", "s7.jpg", "s9.jpg", "s10.jpg", "s12.jpg", "s42.jpg"]
CLI = [sys.executable, "-m", "worker"]


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, STREAM_ANIMATOR_LOGS=str(Path(cwd or ".") / "logs"))
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300, env=env, cwd=cwd)


@pytest.fixture(scope="module")
def sample_rgba() -> np.ndarray:
    return np.asarray(Image.open(SAMPLE_CHARACTER).convert("RGBA"))


def test_preprocess_finds_face_in_all_six_portraits(testdata):
    for name in PORTRAITS:
        a = preprocess_image(testdata / "footage" / "portraits" / name)
        assert a.image.shape == (512, 512, 4) and a.image.dtype == np.uint8
        assert a.landmarks.shape == (478, 3)
        # the face sits inside the crop, large enough to animate
        xy = a.landmarks[:, :2]
        assert xy.min() > 0 and xy.max() < 512, name
        face_h = xy[:, 1].max() - xy[:, 1].min()
        assert 120 < face_h < 330, (name, face_h)
        # a matte was made (no alpha in a JPEG): the face is opaque, some background is not
        alpha = a.image[..., 3]
        cx, cy = xy.mean(axis=0).astype(int)
        assert alpha[cy, cx] == 255, name
        assert (alpha < 128).mean() > 0.05, name


def test_working_size_is_configurable():
    a = preprocess_image(SAMPLE_CHARACTER, PreprocessSettings(size=256))
    assert a.image.shape == (256, 256, 4)
    assert a.landmarks[:, :2].max() < 256


@pytest.mark.parametrize("mode", ["L", "P", "I;16", "LA", "RGBA"])
def test_image_modes_load_as_rgba(tmp_path, sample_rgba, mode):
    rgb = Image.fromarray(sample_rgba[..., :3])
    if mode == "I;16":
        g = np.asarray(rgb.convert("L"), dtype=np.uint16) * 257
        im = Image.fromarray(g)  # uint16 -> mode I;16
    elif mode == "RGBA":
        a = sample_rgba.copy()
        a[:40, :, 3] = 0  # a transparent band: real alpha
        im = Image.fromarray(a, "RGBA")
    elif mode == "LA":
        im = rgb.convert("LA")
    else:
        im = rgb.convert(mode)
    p = tmp_path / f"img_{mode.replace(';', '')}.png"
    im.save(p)
    loaded = load_image(p)
    assert loaded.rgba.shape == (512, 512, 4) and loaded.rgba.dtype == np.uint8
    if mode == "I;16":  # 16-bit scaled down, not clipped to white
        ref = np.asarray(rgb.convert("L"), dtype=np.int16)
        assert np.abs(loaded.rgba[..., 0].astype(np.int16) - ref).max() <= 1
    assert loaded.has_alpha == (mode == "RGBA")
    # and a face is still found whatever the mode
    preprocess_image(p)


def test_own_alpha_is_kept(tmp_path, sample_rgba):
    a = sample_rgba.copy()
    yy, xx = np.mgrid[:512, :512]
    a[..., 3] = np.where((xx - 230) ** 2 + (yy - 200) ** 2 < 210**2, 255, 0).astype(np.uint8)
    p = tmp_path / "cutout.png"
    Image.fromarray(a, "RGBA").save(p)
    assets = preprocess_image(p)
    assert assets.had_alpha
    # the crop's alpha is the file's hard-edged alpha, moved: not a soft segmentation matte
    alpha = assets.image[..., 3]
    assert alpha[0, 0] == 0 and alpha[0, -1] == 0  # the crop's top corners lie outside the disc
    assert ((alpha > 10) & (alpha < 245)).mean() < 0.03


def test_exif_orientation_is_applied(tmp_path, sample_rgba):
    rotated = Image.fromarray(np.rot90(sample_rgba[..., :3]).copy())  # stored sideways
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    p = tmp_path / "sideways.jpg"
    rotated.save(p, exif=exif.tobytes(), quality=95)
    loaded = load_image(p)
    upright = np.asarray(Image.fromarray(sample_rgba[..., :3]).convert("L"), dtype=np.float32)
    got = loaded.rgba[..., :3].mean(axis=2)
    assert got.shape == upright.shape
    assert np.abs(got - upright).mean() < 12  # JPEG noise only
    preprocess_image(p)  # and the face is found upright


def test_no_face_raises_one_line(tmp_path):
    p = tmp_path / "wall.png"
    Image.fromarray(np.random.default_rng(0).integers(90, 110, (400, 400, 3), dtype=np.uint8)).save(p)
    with pytest.raises(NoFaceError, match="wall.png: no face"):
        preprocess_image(p)


# --- the cache -------------------------------------------------------------------------------------


@pytest.fixture
def char_dir(tmp_path, sample_rgba):
    d = tmp_path / "chars"
    d.mkdir()
    Image.fromarray(sample_rgba).save(d / "astro.png")
    return d


def test_cache_hits_memory_then_disk(tmp_path, char_dir):
    cache = CharacterCache(tmp_path / "cache")
    lib = CharacterLibrary(char_dir, cache)
    r1 = lib.load(char_dir / "astro.png")
    assert r1.status == "built"
    assert lib.load(char_dir / "astro.png").status == "memory"
    # a new process (new memory) reads it from disk, memory-mapped, identical
    lib2 = CharacterLibrary(char_dir, CharacterCache(tmp_path / "cache"))
    r2 = lib2.load(char_dir / "astro.png")
    assert r2.status == "disk"
    assert isinstance(r2.assets.image, np.memmap)
    assert np.array_equal(r1.assets.image, r2.assets.image)
    assert np.array_equal(r1.assets.landmarks, r2.assets.landmarks)
    assert r2.assets.key == r1.assets.key
    assert r2.seconds < r1.seconds / 5


def test_cache_invalidated_by_content_and_settings(tmp_path, char_dir, sample_rgba):
    cache = CharacterCache(tmp_path / "cache")
    p = char_dir / "astro.png"
    k1 = CharacterLibrary(char_dir, cache).load(p).assets.key
    # same content under another name and mtime: same key (content, not path or time)
    (char_dir / "copy.png").write_bytes(p.read_bytes())
    r = CharacterLibrary(char_dir, cache).load(char_dir / "copy.png")
    assert r.status in ("memory", "disk") and r.assets.key == k1
    # changed content: new entry
    a = sample_rgba.copy()
    a[0, 0, :3] = (1, 2, 3)
    Image.fromarray(a).save(p)
    r = CharacterLibrary(char_dir, cache).load(p)
    assert r.status == "built" and r.assets.key != k1
    # changed settings: new entry
    r = CharacterLibrary(char_dir, cache, PreprocessSettings(size=384)).load(p)
    assert r.status == "built" and r.assets.size == 384


@pytest.mark.parametrize("damage", ["truncate", "tamper", "meta", "missing"])
def test_broken_entry_is_detected_and_rebuilt(tmp_path, char_dir, damage, caplog):
    root = tmp_path / "cache"
    p = char_dir / "astro.png"
    good = CharacterLibrary(char_dir, CharacterCache(root)).load(p).assets
    # copy out of the memory map first: truncating a mapped file under a reader is a SIGBUS
    good_image, key = np.array(good.image), good.key
    del good
    entry = root / key
    img = entry / "image.npy"
    if damage == "truncate":
        data = img.read_bytes()
        img.write_bytes(data[: len(data) // 2])
    elif damage == "tamper":
        with open(img, "r+b") as f:  # same size, different pixels
            f.seek(-100, os.SEEK_END)
            f.write(b"\x00" * 50)
    elif damage == "meta":
        (entry / "meta.json").write_text("{not json")
    else:
        (entry / "landmarks.npy").unlink()
    r = CharacterLibrary(char_dir, CharacterCache(root)).load(p)
    assert r.status == "rebuilt"
    assert np.array_equal(np.asarray(r.assets.image), good_image)
    assert any("cache entry rebuilt" in m for m in caplog.messages)
    # and the rebuilt entry is sound again
    assert CharacterLibrary(char_dir, CharacterCache(root)).load(p).status == "disk"


def test_cache_never_unpickles(tmp_path, char_dir):
    root = tmp_path / "cache"
    good = CharacterLibrary(char_dir, CharacterCache(root)).load(char_dir / "astro.png").assets
    lm = root / good.key / "landmarks.npy"
    # an object array needs pickle to load; a loader that allowed it would run code
    obj = np.array([{"x": 1}], dtype=object)
    with open(lm, "wb") as f:
        np.save(f, obj, allow_pickle=True)
    meta = json.loads((root / good.key / "meta.json").read_text())
    import hashlib

    meta["files"]["landmarks.npy"] = {"size": lm.stat().st_size, "sha256": hashlib.sha256(lm.read_bytes()).hexdigest()}
    (root / good.key / "meta.json").write_text(json.dumps(meta))
    r = CharacterLibrary(char_dir, CharacterCache(root)).load(char_dir / "astro.png")
    assert r.status == "rebuilt"


def test_memory_cache_is_bounded(tmp_path, char_dir):
    cache = CharacterCache(tmp_path / "cache", max_items=2)
    lib = CharacterLibrary(char_dir, cache)
    for size in (256, 320, 384):
        lib.settings = PreprocessSettings(size=size)
        lib.load(char_dir / "astro.png")
    assert len(cache._mem) == 2


def test_concurrent_preprocessing_does_not_corrupt(tmp_path, testdata):
    folder = tmp_path / "chars"
    folder.mkdir()
    for name in ("s9.jpg", "s12.jpg", "s42.jpg"):
        (folder / name).write_bytes((testdata / "footage" / "portraits" / name).read_bytes())
    cache = tmp_path / "cache"
    procs = [
        subprocess.Popen(
            [*CLI, "preprocess", str(folder), "--cache", str(cache), "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ, STREAM_ANIMATOR_LOGS=str(tmp_path / "logs")),
        )
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert json.loads(out)["counts"]["failed"] == 0
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # no leftovers
    summary = json.loads(cli("preprocess", str(folder), "--cache", str(cache), "--json", cwd=tmp_path).stdout)
    assert summary["counts"] == {"cached": 3, "built": 0, "rebuilt": 0, "failed": 0}


# --- bad input through the CLI: one line, non-zero exit, no traceback -----------------------------


@pytest.fixture(scope="module")
def bad_images(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    (d / "text.png").write_text("this is not a picture\n")
    (d / "zero.png").write_bytes(b"")
    Image.new("RGB", (12000, 12000), (90, 90, 90)).save(d / "huge.png")
    Image.fromarray(np.full((300, 300, 3), 120, np.uint8)).save(d / "noface.png")
    data = SAMPLE_CHARACTER.read_bytes()
    (d / "truncated.png").write_bytes(data[: len(data) // 3])
    return d


@pytest.mark.parametrize(
    "name, message",
    [
        ("text.png", "not a readable image"),
        ("zero.png", "empty file"),
        ("huge.png", "image too large"),
        ("noface.png", "no face found"),
        ("truncated.png", "corrupt or truncated"),
        ("missing.png", "no such file"),
    ],
)
def test_check_bad_input_one_line(bad_images, tmp_path, name, message):
    r = cli("check", str(bad_images / name), cwd=tmp_path)
    assert r.returncode != 0
    assert "Traceback" not in r.stdout + r.stderr
    lines = [line for line in r.stdout.splitlines() if line.strip()]
    assert len(lines) == 1 and name in lines[0] and message in lines[0], r.stdout


def test_preprocess_folder_reports_failures_and_keeps_going(bad_images, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for name in ("text.png", "zero.png", "noface.png"):
        (folder / name).write_bytes((bad_images / name).read_bytes())
    (folder / "astro.png").write_bytes(SAMPLE_CHARACTER.read_bytes())
    r = cli("preprocess", str(folder), "--cache", str(tmp_path / "cache"), "--json", cwd=tmp_path)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    summary = json.loads(r.stdout)
    assert summary["counts"] == {"cached": 0, "built": 1, "rebuilt": 0, "failed": 3}
    errors = {c["file"]: c.get("error", "") for c in summary["characters"]}
    assert "empty file" in errors["zero.png"] and "no face" in errors["noface.png"]


def test_check_good_image_reports_facts(tmp_path):
    r = cli("check", "--json", str(SAMPLE_CHARACTER), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    (rep,) = json.loads(r.stdout)
    assert rep["usable"] and rep["face_found"] and rep["faces"] == 1
    assert rep["width"] == 512 and rep["alpha"] is False
    assert 0.2 < rep["face_fraction"] < 0.6


def test_user_error_type_for_missing_folder(tmp_path):
    with pytest.raises(UserError, match="characters folder not found"):
        CharacterLibrary(tmp_path / "nope", CharacterCache(tmp_path / "c")).scan()
