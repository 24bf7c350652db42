"""The shut-lid shading of `worker.render.eyes` (the lid patch itself is tested through renders)."""

from __future__ import annotations

import numpy as np
import pytest

from worker.characters.preprocess import preprocess_image
from worker.paths import SAMPLE_CHARACTER
from worker.render.eyes import EyeRig
from worker.render.sweep import driver_from_character
from worker.retarget import Retargeter, RetargetOptions


@pytest.fixture(scope="module")
def shut():
    char = preprocess_image(SAMPLE_CHARACTER)
    rt = Retargeter(char, RetargetOptions(idle=False))
    pose = rt.retarget(driver_from_character(char, eyes=0.0), driver_from_character(char))
    assert pose.eye_close_left > 0.9
    return char, pose.landmarks


def _shade(char, lm: np.ndarray, left: bool, closure: float) -> tuple[EyeRig, np.ndarray, np.ndarray]:
    """The rig, a flat grey frame, and that frame with the lid shaded."""
    rig = EyeRig(np.asarray(char.landmarks, np.float64), left=left)
    grey = np.full((char.size, char.size, 4), 200, np.uint8)
    out = grey.copy()
    rig.shade_lids(out, lm, closure)
    return rig, grey, out


def test_a_shut_lid_is_shaded_down_to_its_lash_line_and_nothing_else(shut):
    char, lm = shut
    rig, grey, out = _shade(char, lm, True, 1.0)
    changed = np.abs(out.astype(int) - grey).max(-1) > 0
    assert changed.sum() > 50
    assert (out[..., 3] == 200).all()  # colour only, the alpha stays
    ys, xs = np.nonzero(changed)
    corners = lm[list(rig.corners), :2]
    assert xs.min() >= corners[:, 0].min() - 1 and xs.max() <= corners[:, 0].max() + 1  # not past the corners
    lash_y = lm[rig.upper, 1].max()
    assert ys.max() <= lash_y + 3  # nothing below the lash line but its own blur
    # darker towards the lash line than up on the lid
    mid = lm[rig.upper[len(rig.upper) // 2], :2].round().astype(int)
    column = out[:, mid[0], 0].astype(int)
    darkest = int(np.argmin(column))
    assert abs(darkest - mid[1]) <= 3 and column[darkest] < 160


def test_open_or_half_open_lids_are_left_alone(shut):
    char, lm = shut
    _, grey, out = _shade(char, lm, False, 0.25)
    assert (out == grey).all()
