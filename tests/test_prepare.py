"""Renderer-owned preparation: each renderer prepares its own per-character arrays, cached per
(character, renderer name + prepare_version), with nothing in `worker/characters` naming a renderer."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import worker.characters
from worker.characters import CutOut, Preparer
from worker.characters.cache import CharacterCache
from worker.characters.library import CharacterLibrary
from worker.characters.preprocess import preprocess_image
from worker.paths import SAMPLE_CHARACTER
from worker.render import create_renderer
from worker.render.base import FrameInput, Renderer
from worker.tools.sweep import pose_sweep


class FaceTint(Renderer):
    """A second renderer, defined here and nowhere in the package: the picture with the face lit up
    by a mask it prepares from the landmarks (a convex hull, blurred), moved by the head's 2-D motion."""

    name = "facetint"
    prepare_version = 1

    def __init__(self, size: int = 512) -> None:
        super().__init__(size)
        self.prepare_calls = 0

    def prepare(self, character: CutOut) -> dict[str, np.ndarray]:
        self.prepare_calls += 1
        mask = np.zeros((character.size, character.size), np.uint8)
        hull = cv2.convexHull(np.round(character.landmarks[:, :2]).astype(np.int32))
        cv2.fillConvexPoly(mask, hull, 255)
        mask = cv2.GaussianBlur(mask, (0, 0), 4)
        return {"mask": mask, "centre": character.landmarks[:, :2].mean(0).astype(np.float32)}

    def draw(self, assets, inp: FrameInput) -> np.ndarray:
        a, pose = self.prepared(assets), inp.pose
        assert pose is not None
        out = assets.image.astype(np.float32)
        out[..., :3] *= 1.0 + 0.3 * (a["mask"][..., None] / 255.0)
        out = np.clip(out, 0, 255).astype(np.uint8)
        h = np.asarray(pose.head_matrix, np.float64)
        m = np.concatenate([h[:2, :2], h[:2, 3:4]], 1)
        return cv2.warpAffine(out, m, (assets.size, assets.size), flags=cv2.INTER_LINEAR)


class CountingMeshWarp:
    """The real meshwarp renderer, with its `prepare` calls counted."""

    def __init__(self) -> None:
        self.renderer = create_renderer("meshwarp")
        self.name, self.prepare_version = self.renderer.name, self.renderer.prepare_version
        self.calls = 0

    def prepare(self, character: CutOut) -> dict[str, np.ndarray]:
        self.calls += 1
        return self.renderer.prepare(character)


@pytest.fixture
def char_dir(tmp_path):
    d = tmp_path / "chars"
    d.mkdir()
    Image.open(SAMPLE_CHARACTER).convert("RGBA").save(d / "astro.png")
    return d


def test_characters_package_never_imports_render():
    for path in Path(worker.characters.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n.startswith("worker.render") for n in names), (path.name, names)


def test_a_second_renderer_prepares_and_caches_its_own_arrays(tmp_path, char_dir):
    root, p = tmp_path / "cache", char_dir / "astro.png"
    mesh, tint = CountingMeshWarp(), FaceTint()
    assert isinstance(tint, Preparer) and isinstance(mesh, Preparer)
    r1 = CharacterLibrary(char_dir, CharacterCache(root), preparer=mesh).load(p)
    assert r1.status == "built" and mesh.calls == 1 and r1.assets.prepared_by == "meshwarp.v5"
    entry = root / r1.assets.key
    character_meta = (entry / "meta.json").stat().st_mtime_ns
    # the second renderer, on the same cache: the character itself comes from disk, only its own
    # arrays are prepared, in a sub-entry of their own beside the meshwarp one
    cache = CharacterCache(root)
    r2 = CharacterLibrary(char_dir, cache, preparer=tint).load(p)
    assert r2.status == "built" and tint.prepare_calls == 1 and mesh.calls == 1
    assert r2.assets.key == r1.assets.key and r2.assets.prepared_by == "facetint.v1"
    assert set(r2.assets.arrays) == {"mask", "centre"} and isinstance(r2.assets.arrays["mask"], np.memmap)
    assert sorted(d.name for d in entry.iterdir() if d.is_dir()) == ["facetint.v1", "meshwarp.v5"]
    assert (entry / "meta.json").stat().st_mtime_ns == character_meta  # the character was not rebuilt
    assert "meshwarp_grid_matrix" in CharacterCache(root).disk.load_prepared(r1.assets.key, "meshwarp.v5")
    # once per character per renderer: memory, then a new process (disk), never prepared again
    assert CharacterLibrary(char_dir, cache, preparer=tint).load(p).status == "memory"
    assert CharacterLibrary(char_dir, CharacterCache(root), preparer=tint).load(p).status == "disk"
    assert CharacterLibrary(char_dir, CharacterCache(root), preparer=mesh).load(p).status == "disk"
    assert tint.prepare_calls == 1 and mesh.calls == 1
    # both renderers draw from the cached arrays without preparing anything themselves
    a_tint = CharacterLibrary(char_dir, CharacterCache(root), preparer=tint).load(p).assets
    pose = pose_sweep(a_tint, 2)[1]
    assert tint.draw(a_tint, FrameInput.of_pose(pose)).shape == (512, 512, 4) and tint.prepare_calls == 1
    a_mesh = CharacterLibrary(char_dir, CharacterCache(root), preparer=mesh).load(p).assets
    drawn = mesh.renderer.render(a_mesh, pose)
    assert mesh.calls == 1 and not mesh.renderer._own_prepared  # the cached arrays were used
    # ... and they draw exactly what arrays prepared afresh draw
    assert np.array_equal(drawn, create_renderer("meshwarp").render(preprocess_image(p), pose))


def test_a_version_bump_rebuilds_only_that_renderers_arrays(tmp_path, char_dir):
    root, p = tmp_path / "cache", char_dir / "astro.png"
    tint = FaceTint()
    key = CharacterLibrary(char_dir, CharacterCache(root), preparer=tint).load(p).assets.key
    before = (root / key / "meta.json").stat().st_mtime_ns
    bumped = FaceTint()
    bumped.prepare_version = 2
    r = CharacterLibrary(char_dir, CharacterCache(root), preparer=bumped).load(p)
    assert r.status == "built" and bumped.prepare_calls == 1 and r.assets.prepared_by == "facetint.v2"
    assert (root / key / "facetint.v2" / "meta.json").is_file() and (root / key / "facetint.v1").is_dir()
    assert (root / key / "meta.json").stat().st_mtime_ns == before
    # the old version is still served to a renderer at that version, unprepared
    old = FaceTint()
    assert CharacterLibrary(char_dir, CharacterCache(root), preparer=old).load(p).status == "disk"
    assert old.prepare_calls == 0


def test_a_damaged_prepared_entry_is_rebuilt_alone(tmp_path, char_dir, caplog):
    root, p = tmp_path / "cache", char_dir / "astro.png"
    tint = FaceTint()
    key = CharacterLibrary(char_dir, CharacterCache(root), preparer=tint).load(p).assets.key
    mask = root / key / "facetint.v1" / "arr.mask.npy"
    data = mask.read_bytes()
    mask.write_bytes(data[: len(data) // 2])
    r = CharacterLibrary(char_dir, CharacterCache(root), preparer=tint).load(p)
    assert r.status == "rebuilt" and tint.prepare_calls == 2
    assert any("cache entry rebuilt" in m for m in caplog.messages)
    assert CharacterCache(root).get(key)[1] == "disk"  # the character entry was left alone
    assert CharacterLibrary(char_dir, CharacterCache(root), preparer=tint).load(p).status == "disk"
    meta = json.loads((root / key / "facetint.v1" / "meta.json").read_text())
    assert meta["tag"] == "facetint.v1" and meta["key"] == key


def test_a_renderer_prepares_for_itself_when_the_assets_come_without(char_dir):
    tint = FaceTint()
    assets = preprocess_image(char_dir / "astro.png")  # no cache, no preparer
    assert assets.arrays == {} and assets.prepared_by == ""
    pose = pose_sweep(assets, 2)[1]
    first = tint.draw(assets, FrameInput.of_pose(pose))
    assert np.array_equal(tint.draw(assets, FrameInput.of_pose(pose)), first) and tint.prepare_calls == 1


def test_prepare_output_must_be_cacheable(tmp_path, char_dir):
    class Pickly(FaceTint):
        name = "pickly"

        def prepare(self, character: CutOut) -> dict[str, np.ndarray]:
            return {"objects": np.array([{"a": 1}], dtype=object)}

    with pytest.raises(TypeError, match="pickly.v1: 'objects' must be a numeric numpy array"):
        CharacterLibrary(char_dir, CharacterCache(tmp_path / "c"), preparer=Pickly()).load(char_dir / "astro.png")
    bad = FaceTint()
    bad.name = "no/slashes"
    with pytest.raises(ValueError, match="preparer name"):
        CharacterLibrary(char_dir, CharacterCache(tmp_path / "c"), preparer=bad)
