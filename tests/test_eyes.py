"""`worker.render.meshwarp.eyes`: lids drawn where the pose puts them, and the shut-lid shading."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from worker.characters.preprocess import preprocess_image
from worker.paths import SAMPLE_CHARACTER
from worker.render.meshwarp import MeshWarpRenderer
from worker.render.meshwarp.eyes import EyeRig
from worker.retarget import Retargeter, RetargetOptions
from worker.tools.sweep import driver_from_character
from worker.track import landmark_ids as L


@pytest.fixture(scope="module")
def char():
    return preprocess_image(SAMPLE_CHARACTER)


def _lids(char, eyes: float, left: bool):
    """The rig and its patch for a driver whose eyes are `eyes` open (1 = as drawn)."""
    rt = Retargeter(char, RetargetOptions(idle=False))
    pose = rt.retarget(driver_from_character(char, eyes=eyes), driver_from_character(char))
    rig = EyeRig(np.asarray(char.landmarks, np.float64), left=left)
    ys, xs = np.mgrid[0 : char.size, 0 : char.size].astype(np.float32)
    identity = np.dstack([xs, ys])
    return rig, pose.landmarks, rig.remap_lids(identity, pose.landmarks)


LASH = np.array([40.0, 30.0, 30.0], np.float32)


def test_a_shut_lid_has_its_lash_line_and_nothing_else(char):
    rig, lm, patch = _lids(char, 0.0, True)
    assert patch is not None and patch.shade is not None
    grey = np.full((char.size, char.size, 4), 200, np.uint8)
    out = grey.copy()
    patch.apply(out, LASH)
    changed = np.abs(out.astype(int) - grey).max(-1) > 0
    assert changed.sum() > 50
    assert (out[..., 3] == 200).all()  # colour only, the alpha stays
    ys, xs = np.nonzero(changed)
    corners = lm[list(rig.corners), :2]
    assert xs.min() >= corners[:, 0].min() - 1 and xs.max() <= corners[:, 0].max() + 1  # not past the corners
    assert ys.max() <= lm[rig.upper, 1].max() + 4  # nothing below the lash line but its own edge
    # the lash colour on the line where the lids meet
    mid = lm[rig.upper[len(rig.upper) // 2], :2].round().astype(int)
    column = out[:, mid[0], 0].astype(int)
    darkest = int(np.argmin(column))
    assert abs(darkest - mid[1]) <= 2 and column[darkest] < 80


def test_a_shut_lid_evens_out_the_crease_dragged_over_it(char):
    """A dark band above the eye (a crease, a socket's shadow) stretched over a shut lid is
    evened out towards the lid's broad tone: it read as a bruise on paintings, and as the rim
    of an open eye to the face tracker."""
    rig, lm, patch = _lids(char, 0.0, True)
    img = np.full((char.size, char.size, 4), 200, np.uint8)
    mid = lm[rig.upper[len(rig.upper) // 2], :2].round().astype(int)
    y_band = int(round(float(char.landmarks[rig.upper, 1].min())))  # the open upper lid: on the shut lid
    img[y_band - 1 : y_band + 2, :, :3] = 80
    out = img.copy()
    patch.apply(out, LASH)
    assert mid[1] - y_band >= 3  # the band lies above the lash line, on the lid
    before, after = int(img[y_band, mid[0], 0]), int(out[y_band, mid[0], 0])
    assert after - before >= 25, (before, after)


def test_open_or_half_open_lids_are_not_shaded(char):
    _, _, patch = _lids(char, 0.85, False)
    assert patch is not None  # the lids do move...
    assert patch.shade is None  # ... but not shut enough to read as a pale eyeball


def _drawn_at(full_map: np.ndarray, src: np.ndarray, start: np.ndarray) -> np.ndarray:
    """The output pixel whose backward map reaches `src` (Newton from `start`)."""
    x, h = start.astype(np.float64), 0.5
    for _ in range(5):
        pts = np.array([x, x + (h, 0), x - (h, 0), x + (0, h), x - (0, h)], np.float32)
        at = cv2.remap(full_map, pts[None, :, 0], pts[None, :, 1], cv2.INTER_LINEAR)[0].astype(np.float64)
        jac = np.stack([(at[1] - at[2]) / (2 * h), (at[3] - at[4]) / (2 * h)], 1)
        x = x - np.linalg.solve(jac, at[0] - src)
    return x


def test_lids_follow_small_changes_without_a_jump(char):
    """A squint or a widening of a few percent lands where the pose puts it, and the lid moves
    smoothly through the drawn state (the coarse grid alone got a third of a small change, and
    switching from it to the patch at a threshold made the lid jump by ~0.5 px)."""
    rt = Retargeter(char, RetargetOptions(idle=False, smooth_min_cutoff=0.0))
    renderer = MeshWarpRenderer(size=char.size, warm_start=False)
    mid = L.L_EYE_UPPER[len(L.L_EYE_UPPER) // 2]
    src = char.landmarks[mid, :2].astype(np.float64)
    errors = []
    for eyes in np.arange(0.9, 1.1001, 0.02):
        pose = rt.retarget(driver_from_character(char, eyes=float(eyes)), driver_from_character(char))
        target = pose.landmarks[mid, :2].astype(np.float64)
        errors.append(np.linalg.norm(_drawn_at(renderer.backward_map(char, pose), src, target) - target))
    assert max(errors) < 0.2, np.round(errors, 2)
