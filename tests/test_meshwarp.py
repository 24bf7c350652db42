"""`meshwarp` internals: the grid inversion and the skipped resampling (its speed rests on them),
and the fold guard (a pose the warp cannot draw without tearing is scaled back)."""

from __future__ import annotations

import numpy as np
import pytest

from worker.characters.preprocess import preprocess_image
from worker.paths import SAMPLE_CHARACTER
from worker.render.meshwarp import MeshWarpRenderer
from worker.render.meshwarp.grid import FOLD_DET, GRID, ForwardMap, invert
from worker.retarget import Retargeter, RetargetOptions
from worker.tools.sweep import driver_from_character, pose_sweep


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
    return np.abs(ForwardMap(fwd, nodes).at(x)[0] - nodes).max(0)


def test_grid_inversion_is_exact_cold_and_warm(char, poses):
    r = MeshWarpRenderer()
    grid = r._grid(char.size)
    inner = grid.fade > 0  # the outer ring is not inverted: it never moves
    warm = None
    worst_cold = worst_warm = 0.0
    for pose in poses[::3]:
        fwd = _field(r, char, pose)
        assert np.abs(fwd).max() > 1.0  # the sweep really moves the grid
        cold = invert(fwd, grid.nodes, None, margin=1)
        worst_cold = max(worst_cold, float(_residual(fwd, grid.nodes, cold)[inner].max()))
        if warm is not None:
            warm = invert(fwd, grid.nodes, warm, steps=4, margin=1)
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
        skipped.append(1.0 - sum((y1 - y0) * (x1 - x0) for y0, y1, x0, x1 in boxes) / char.size**2)
    assert np.median(skipped) > 0.1  # and there was something to skip (transparent background)


def _min_area_ratio(renderer: MeshWarpRenderer, char, fwd: np.ndarray) -> float:
    """Smallest Jacobian determinant of the forward field over the cells that must not fold,
    by finite differences at every corner of every cell (independent of the guard's algebra)."""
    g = GRID
    grid = renderer._grid(char.size)
    cell = float(grid.nodes[0, 1] - grid.nodes[0, 0])
    p = (fwd + grid.nodes).reshape(2, g, g).astype(np.float64) / cell
    worst = np.inf
    for ex in (p[:, :-1, 1:] - p[:, :-1, :-1], p[:, 1:, 1:] - p[:, 1:, :-1]):
        for ey in (p[:, 1:, :-1] - p[:, :-1, :-1], p[:, 1:, 1:] - p[:, :-1, 1:]):
            det = ex[0] * ey[1] - ex[1] * ey[0]
            worst = min(worst, float(det[renderer._character(char).fold_cells].min()))
    return worst


def _guarded(renderer: MeshWarpRenderer, char, pose):
    ch, grid = renderer._character(char), renderer._grid(char.size)
    raw = renderer._forward(ch, pose, [])
    fwd, drawn = renderer._unfold(ch, grid, pose, raw)
    return raw, fwd, drawn


def test_a_pose_that_would_fold_is_scaled_back_to_the_limit(char):
    """A dropped jaw with the head turned, tilted and shifted: the plain field folds
    (a tear on screen); the guard keeps every visible cell's area ratio at FOLD_DET, keeps the
    2-D head motion, and hands the patches and the mouth the pose it really drew."""
    r = MeshWarpRenderer()
    rt = Retargeter(char, RetargetOptions(idle=False))
    face = driver_from_character(char, yaw=28.0, pitch=12.0, roll=15.0, mouth=0.3)
    face.landmarks[:, 1] += 0.35 * 100  # the whole head lower in the frame
    pose = rt.retarget(face, driver_from_character(char))
    raw, fwd, drawn = _guarded(r, char, pose)
    assert _min_area_ratio(r, char, raw) < 0.0  # it would fold
    worst = _min_area_ratio(r, char, fwd)
    assert FOLD_DET - 1e-3 <= worst < FOLD_DET + 0.02, worst  # scaled back just to the limit
    moved = np.abs(drawn.landmarks[:, :2] - char.landmarks[:, :2]).max()
    assert moved > 10.0  # ... not frozen
    assert not np.allclose(drawn.landmarks, pose.landmarks)
    # the rendered map keeps its orientation where the picture shows (no tear)
    m = r.backward_map(char, pose)
    ax, ay = np.diff(m, axis=1)[:-1], np.diff(m, axis=0)[:, :-1]
    det = ax[..., 0] * ay[..., 1] - ax[..., 1] * ay[..., 0]
    visible = char.image[:-1, :-1, 3] > 0
    lips = np.zeros(det.shape, np.uint8)
    import cv2

    from worker.track import landmark_ids as L

    cv2.fillConvexPoly(lips, cv2.convexHull(np.round(drawn.landmarks[L.inner_lip_contour(), :2]).astype(np.int32)), 1)
    keep = visible & ~cv2.dilate(lips, np.ones((9, 9), np.uint8)).astype(bool)
    assert det[keep].min() > 0.0


def test_poses_that_do_not_fold_are_drawn_as_given(char, poses):
    r = MeshWarpRenderer()
    for pose in poses[::4]:
        raw, fwd, drawn = _guarded(r, char, pose)
        if _min_area_ratio(r, char, raw) >= FOLD_DET:
            assert drawn is pose and fwd is raw


def test_real_footage_never_folds(testdata):
    """d12 talks with a wide-open mouth and moves about: on the two characters with the least
    room (s42's chin near the frame's foot, s10's face at the silhouette) the plain warp folds in
    many frames; guarded, none does, and most frames keep nearly all their motion.

    On s10 (drawn turned 33 degrees) the folds were all under the lower lip, where the far jaw
    line runs a few pixels below it: the skin there now gives way to the lip (`meshwarp.jaw`), so
    no frame needs the guard and every wide-open mouth is drawn as wide as the pose asks (before,
    the guard drew the widest openings at down to 0.75 of the pose's, in 19 frames)."""
    from worker.retarget import geometry
    from worker.tools import fidelity

    states, neutrals = fidelity.track_driver(testdata / "footage" / "driving" / "d12.mp4")
    for name in ("s42", "s10"):
        char = fidelity.portrait_character(name, testdata)
        r, rt = MeshWarpRenderer(size=char.size), Retargeter(char, RetargetOptions(idle=False))
        ch = r._character(char)
        plain_folded = folded = kept = 0
        opening = []  # the drawn mouth's gap over the pose's
        for face, neutral in zip(states, neutrals, strict=True):
            pose = rt.retarget(face, neutral)
            raw, fwd, drawn = _guarded(r, char, pose)
            plain = r._field(ch, pose.landmarks[ch.ctrl_idx, :2].astype(np.float32), pose.head_matrix)
            plain_folded += _min_area_ratio(r, char, plain) < 0.0  # no skin giving way under the lip
            folded += _min_area_ratio(r, char, raw) < 0.0
            assert _min_area_ratio(r, char, fwd) >= FOLD_DET - 1e-3, name
            d_raw = np.abs(pose.landmarks[:, :2] - char.landmarks[:, :2]).max()
            d_drawn = np.abs(drawn.landmarks[:, :2] - char.landmarks[:, :2]).max()
            kept += d_drawn >= 0.8 * d_raw
            opening.append(geometry.mouth_gap(drawn.landmarks) / max(geometry.mouth_gap(pose.landmarks), 1e-6))
        assert plain_folded >= 10, (name, plain_folded)  # the footage does exercise the guard
        assert kept >= 0.8 * len(states), (name, kept)
        if name == "s42":  # its folds are under the chin and on the cheeks: the guard's work
            assert folded >= 10, (name, folded)
        else:
            assert folded == 0 and min(opening) > 0.999, (name, folded, min(opening))
