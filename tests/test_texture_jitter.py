"""Texture jitter (worker.tools.texture_jitter): the instrument itself, and floors on two real pairs."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from worker.tools.texture_jitter import measure_pair, render_demo, texture_jitter

# (driver, character, driver frames) -> (driver jitter, output / driver), with `demo --size 512`;
# the test allows the ceiling + 0.03. Measured 2026-12-03: 0.57 and 0.63 (1.01 and 0.90 before the
# retarget smoothing); 2026-12-07, with the lash line that moves with each blink and the cut-out
# changes: 0.55-0.60 and 0.656-0.665 over three builds of the day, so d9 x s42's limit is now the
# issue's target, 0.7
PAIRS = {
    ("d0", "s10", 0): (0.00282, 0.60),
    ("d9", "s42", 150): (0.00121, 0.67),
}


def _moving(picture: np.ndarray, shifts: np.ndarray) -> list[np.ndarray]:
    """The picture moved by sub-pixel shifts (one (dx, dy) per frame) with cubic interpolation."""
    import cv2

    h, w = picture.shape[:2]
    return [
        cv2.warpAffine(
            picture, np.float32([[1, 0, dx], [0, 1, dy]]), (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT
        )
        for dx, dy in shifts
    ]


@pytest.fixture(scope="module")
def portrait(testdata) -> np.ndarray:
    img = Image.open(testdata / "footage" / "portraits" / "s42.jpg").convert("RGB")
    return np.asarray(img.resize((384, 384 * img.height // img.width)))[:384]


def test_steady_motion_scores_near_zero_and_shake_scores_its_size(portrait):
    n = 31
    t = np.arange(n, dtype=np.float64)
    steady = texture_jitter(_moving(portrait, np.stack([0.7 * t, 0.3 * t], axis=1)))
    assert steady.seeds == 3 and steady.frames == n and steady.samples > 500
    assert steady.median < 0.002  # constant velocity: no acceleration beyond interpolation noise
    rng = np.random.default_rng(3)
    shake = rng.normal(0, 1.5, (n, 2))
    shaken = texture_jitter(_moving(portrait, np.stack([0.7 * t, 0.3 * t], axis=1) + shake))
    # the acceleration of white noise of 1.5 px per axis: |x+ - 2x + x-| has ~sqrt(6) * 1.5 px per
    # axis, a 2-D norm median of ~1.18 * 3.67 px; in inter-ocular units (this face: 75 px) ~0.058
    assert shaken.median > 20 * steady.median
    assert 0.045 < shaken.median < 0.075


def test_lost_points_are_dropped_not_counted(portrait):
    """A cut to another picture mid-seed: forward-backward fails there and those tracks end."""
    still = _moving(portrait, np.zeros((10, 2)))
    cut = texture_jitter(still + _moving(portrait[::-1].copy(), np.zeros((5, 2))))
    whole = texture_jitter(still + still[:5])
    assert cut.median == 0.0  # no acceleration from the jump is counted
    # the tracks die at the cut: only frames 2..9 of the seed give accelerations
    assert cut.samples < 0.7 * whole.samples  # 8 of 13 frames, and a few symmetric spots


@pytest.mark.parametrize(("driver", "character", "frames"), sorted(PAIRS))
def test_output_moves_more_calmly_than_the_driver(testdata, tmp_path, driver, character, frames):
    want_driver, ceiling = PAIRS[(driver, character, frames)]
    drv = testdata / "footage" / "driving" / f"{driver}.mp4"
    out = tmp_path / f"{driver}_{character}.mp4"
    render_demo(drv, testdata / "footage" / "portraits" / f"{character}.jpg", out, max_frames=frames)
    r = measure_pair(drv, out, max_frames=frames or None)
    assert r.driver_jitter == pytest.approx(want_driver, rel=0.05)
    assert r.ratio <= ceiling + 0.03, r
