"""Lips at full resolution (`worker.render.meshwarp.mouth_rig`) inside the `meshwarp` renderer."""

from __future__ import annotations

import numpy as np
import pytest

from worker.characters.preprocess import preprocess_image
from worker.paths import SAMPLE_CHARACTER
from worker.render import create_renderer
from worker.render.meshwarp.mouth_rig import MouthRig
from worker.retarget import Retargeter, RetargetOptions, geometry
from worker.tools.fidelity import flatten
from worker.tools.sweep import driver_from_character
from worker.track import landmark_ids as L

CENTRAL = [p for pair in L.INNER_LIP_PAIRS for p in pair]  # upper and lower inner-lip centre points


@pytest.fixture(scope="module")
def char():
    return preprocess_image(SAMPLE_CHARACTER)


def _pose(char, **kw):
    rt = Retargeter(char, RetargetOptions(idle=False, smooth_min_cutoff=0.0))
    return rt.retarget(driver_from_character(char, **kw), driver_from_character(char))


def _sample(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Bilinear look-up of a (h, w, 2) map at (n, 2) points."""
    import cv2

    p = pts.astype(np.float32)
    return cv2.remap(m, p[None, :, 0], p[None, :, 1], cv2.INTER_LINEAR)[0]


@pytest.mark.parametrize(
    "kw", [dict(mouth=0.06), dict(mouth=0.15), dict(mouth=0.35, roll=15.0), dict(mouth=0.2, yaw=20.0, pitch=-8.0)]
)
def test_lips_land_where_the_pose_puts_them(char, kw):
    """The picture's inner lips are drawn at the pose's inner lips, to a pixel, even for a small
    opening the coarse grid alone cannot make (a few pixels between two lip lines)."""
    pose = _pose(char, **kw)
    m = create_renderer("meshwarp").backward_map(char, pose)
    err = np.linalg.norm(_sample(m, pose.landmarks[CENTRAL, :2]) - char.landmarks[CENTRAL, :2], axis=1)
    assert err.max() < 1.0, (kw, err.round(2))


def test_neutral_lips_need_no_patch(char):
    lm = np.asarray(char.landmarks, np.float64)
    rig = MouthRig(lm[L.INNER_UPPER, :2], lm[L.INNER_LOWER, :2])
    ys, xs = np.mgrid[0:512, 0:512].astype(np.float32)
    identity = np.stack([xs, ys], -1)
    patched = identity.copy()
    assert rig.remap_lips(patched, lm) is None and np.array_equal(patched, identity)


def test_patch_meets_the_rest_of_the_map_without_a_seam(char):
    """At the edge of the rewritten box the map is what it was: no seam around the mouth."""
    pose = _pose(char, mouth=0.3, roll=10.0)
    lm = np.asarray(char.landmarks, np.float64)
    rig = MouthRig(lm[L.INNER_UPPER, :2], lm[L.INNER_LOWER, :2])
    # a smooth map (a small rotation and shift), as the spline would give around the mouth
    ys, xs = np.mgrid[0:512, 0:512].astype(np.float32)
    a = np.radians(4.0)
    base = np.stack([np.cos(a) * xs - np.sin(a) * ys + 9.0, np.sin(a) * xs + np.cos(a) * ys - 17.0], -1)
    patched = base.copy()
    box = rig.remap_lips(patched, pose.landmarks)
    assert box is not None
    y0, y1, x0, x1 = box
    assert np.abs(patched[y0:y1, x0:x1] - base[y0:y1, x0:x1]).max() > 3.0  # it did part the lips
    ring = np.zeros((512, 512), bool)
    ring[y0:y1, x0:x1] = True
    ring[y0 + 1 : y1 - 1, x0 + 1 : x1 - 1] = False
    assert np.abs(patched[ring] - base[ring]).max() < 0.3
    outside = np.ones((512, 512), bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(patched[outside], base[outside])


def test_mediapipe_sees_a_small_opening(char):
    """A mouth opened by a tenth of the eye distance reads as open to an independent tracker."""
    from worker.mp_runtime import mediapipe

    mp = mediapipe()
    gaps = []
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True, max_num_faces=1) as m:
        for mouth in (0.0, 0.12):
            out = create_renderer("meshwarp").render(char, _pose(char, mouth=mouth))
            rgb = np.ascontiguousarray(flatten(out)[..., ::-1])
            res = m.process(rgb)
            lm = np.array([(p.x * 512, p.y * 512, p.z * 512) for p in res.multi_face_landmarks[0].landmark])
            gaps.append(geometry.mouth_gap(lm) / geometry.canonical_frame(lm)[2])
    assert gaps[1] - gaps[0] > 0.06, gaps
