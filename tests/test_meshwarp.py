"""`meshwarp` internals that its speed rests on: the grid inversion and the skipped resampling."""

from __future__ import annotations

import numpy as np
import pytest

from worker.characters.preprocess import preprocess_image
from worker.paths import SAMPLE_CHARACTER
from worker.render.meshwarp import MeshWarpRenderer, _ForwardMap, _invert
from worker.render.sweep import pose_sweep


@pytest.fixture(scope="module")
def char():
    return preprocess_image(SAMPLE_CHARACTER)


@pytest.fixture(scope="module")
def poses(char):
    return pose_sweep(char, 60)


def _field(renderer: MeshWarpRenderer, char, pose) -> np.ndarray:
    ch = renderer._character(char)
    return renderer._forward(ch, pose, [])


def _residual(fwd: np.ndarray, nodes: np.ndarray, back: np.ndarray) -> np.ndarray:
    """|x + fwd(x) - p| per node, with fwd bilinear between the nodes."""
    x = np.ascontiguousarray(nodes + back)
    return np.abs(_ForwardMap(fwd, nodes).at(x)[0] - nodes).max(0)


def test_grid_inversion_is_exact_cold_and_warm(char, poses):
    r = MeshWarpRenderer()
    grid = r._grid(char.size)
    inner = grid.fade > 0  # the outer ring is not inverted: it never moves
    warm = None
    worst_cold = worst_warm = 0.0
    for pose in poses[::3]:
        fwd = _field(r, char, pose)
        assert np.abs(fwd).max() > 1.0  # the sweep really moves the grid
        cold = _invert(fwd, grid.nodes, None, margin=1)
        worst_cold = max(worst_cold, float(_residual(fwd, grid.nodes, cold)[inner].max()))
        if warm is not None:
            warm = _invert(fwd, grid.nodes, warm, steps=4, margin=1)
            worst_warm = max(worst_warm, float(_residual(fwd, grid.nodes, warm)[inner].max()))
            assert np.abs(warm - cold)[:, inner].max() < 0.05  # the same inverse either way
        else:
            warm = cold
        assert (cold[:, ~inner] == 0).all()
    assert worst_cold < 0.05 and worst_warm < 0.05, (worst_cold, worst_warm)


def test_skipped_resampling_changes_nothing_visible(char, poses):
    """Cells that neither move nor show anything are not resampled: the visible picture is the
    same as resampling everything, only colour under a zero alpha may differ."""
    fast, full = MeshWarpRenderer(warm_start=False), MeshWarpRenderer(warm_start=False)  # history-free
    full._resample_boxes = lambda assets, warp: [(0, assets.size, 0, assets.size)]
    skipped = []
    for pose in poses[::4]:
        a, b = fast.render(char, pose), full.render(char, pose)
        assert np.array_equal(a[..., 3], b[..., 3])
        visible = b[..., 3] > 0
        assert np.array_equal(a[visible], b[visible])
        boxes = fast._resample_boxes(char, fast._warp(char, pose))
        skipped.append(1.0 - sum((y1 - y0) * (x1 - x0) for y0, y1, x0, x1 in boxes) / char.size ** 2)
    assert np.median(skipped) > 0.1  # and there was something to skip (transparent background)
