"""Track-stage parts that need no footage: One Euro filter, features, canonical face, head pose."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from worker.track import landmark_ids as L
from worker.track.canonical import INTER_OCULAR_CM, _mirror_pairs, load_canonical_face
from worker.track.features import FEATURE_NAMES, face_features, inter_ocular
from worker.track.one_euro import LandmarkSmoother, OneEuroFilter, OneEuroParams
from worker.track.pose import HeadPoseSolver, camera_matrix, euler_from_rotation, rotation_from_euler

MIRROR = np.array([-1.0, 1.0, 1.0])


# --- One Euro -----------------------------------------------------------------------------------
def test_one_euro_cuts_noise_on_a_constant_and_follows_a_fast_ramp():
    rng = np.random.default_rng(0)
    t = np.arange(300) / 30.0
    f = OneEuroFilter(OneEuroParams(mincutoff=1.0, beta=0.5))
    noisy = 5.0 + rng.normal(0, 0.1, len(t))
    out = np.array([f(np.array([x]), ti)[0] for x, ti in zip(noisy, t, strict=True)])
    assert np.std(np.diff(out[30:])) < 0.25 * np.std(np.diff(noisy[30:]))
    f.reset()
    ramp = 100.0 * t  # fast: the cutoff opens, the output stays close behind
    out = np.array([f(np.array([x]), ti)[0] for x, ti in zip(ramp, t, strict=True)])
    assert abs(out[-1] - ramp[-1]) < 100.0 / 30.0  # less than one frame behind


def test_one_euro_points_share_a_speed_and_time_must_advance():
    f = OneEuroFilter(OneEuroParams(mincutoff=1.0, beta=0.0))
    a = f(np.zeros((4, 3)), 0.0)
    np.testing.assert_array_equal(a, 0.0)
    b = f(np.ones((4, 3)), 1 / 30)
    assert 0.0 < b[0, 0] < 1.0 and np.allclose(b, b[0, 0])
    again = f(np.full((4, 3), 9.0), 1 / 30)  # same timestamp: a repeated frame changes nothing
    np.testing.assert_array_equal(again, b)


def test_landmark_smoother_round_trips_the_face_frame():
    face = load_canonical_face().astype(np.float64)[:, :] * 20 + np.array([300.0, 200.0, 0.0])
    r = rotation_from_euler(0, 0, 17.0)
    face = (face - face.mean(0)) @ r.T + face.mean(0)
    frame, shape = LandmarkSmoother.decompose(face)
    assert math.degrees(frame[4]) == pytest.approx(17.0, abs=1e-6)
    assert math.exp(frame[3]) == pytest.approx(inter_ocular(face))
    np.testing.assert_allclose(LandmarkSmoother.compose(frame, shape), face, atol=1e-9)
    # the shape is the face with roll and scale removed: its eyes are level and 1 apart
    assert inter_ocular(shape) == pytest.approx(1.0)


# --- features -----------------------------------------------------------------------------------
def test_features_of_the_canonical_face_are_symmetric_and_in_range():
    f = face_features(load_canonical_face())
    assert set(f) == set(FEATURE_NAMES)
    assert f["face_scale"] == pytest.approx(INTER_OCULAR_CM, rel=1e-5)
    assert f["eye_open_left"] == pytest.approx(f["eye_open_right"], rel=1e-5)
    assert 0.2 < f["eye_open_left"] < 0.5
    assert f["brow_raise_left"] == pytest.approx(f["brow_raise_right"], rel=1e-5)
    assert f["gaze_x"] == pytest.approx(0.0, abs=1e-6)
    assert 0.7 < f["mouth_width"] < 1.3


def test_features_respond_to_the_right_landmarks():
    base = load_canonical_face().astype(np.float64)
    f0 = face_features(base)
    p = base.copy()  # drop the lower inner lip by 0.5 cm: mouth opens, eyes do not change
    p[list(L.LIPS_INNER_LOWER[1:-1])] += np.array([0.0, 0.5, 0.0])
    f1 = face_features(p)
    assert f1["mouth_open"] == pytest.approx(f0["mouth_open"] + 0.5 / INTER_OCULAR_CM, rel=0.05)
    assert f1["eye_open_left"] == pytest.approx(f0["eye_open_left"])
    p = base.copy()  # close the subject's left eye: upper lid onto the lower one
    for up, lo in L.LEFT_LID_PAIRS:
        p[up] = p[lo]
    f2 = face_features(p)
    assert f2["eye_open_left"] == pytest.approx(0.0, abs=1e-9)
    assert f2["eye_open_right"] == pytest.approx(f0["eye_open_right"])
    p = base.copy()  # irises towards the image's right
    p[[L.RIGHT_IRIS_CENTER, L.LEFT_IRIS_CENTER]] += np.array([0.4, 0.0, 0.0])
    half_width = 0.5 * np.linalg.norm(base[L.LEFT_EYE_OUTER] - base[L.LEFT_EYE_INNER])
    assert face_features(p)["gaze_x"] == pytest.approx(0.4 / half_width, rel=0.02)
    p = base.copy()  # raise the left brow
    p[list(L.LEFT_BROW)] -= np.array([0.0, 0.6, 0.0])
    f3 = face_features(p)
    assert f3["brow_raise_left"] == pytest.approx(f0["brow_raise_left"] + 0.6 / INTER_OCULAR_CM, rel=0.05)
    assert f3["brow_raise_right"] == pytest.approx(f0["brow_raise_right"])
    # scale and 2-D input do not change the ratios
    f4 = face_features(base[:, :2] * 37.0)
    assert f4["mouth_width"] == pytest.approx(face_features(base * np.array([1, 1, 0]))["mouth_width"])
    with pytest.raises(ValueError):
        face_features(base[:100])


# --- canonical face and pose --------------------------------------------------------------------
def test_canonical_face_is_frontal_symmetric_and_metric():
    face = load_canonical_face().astype(np.float64)
    assert face.shape == (478, 3) and face.dtype == np.float64
    partner = _mirror_pairs(face)
    mutual = partner[partner] == np.arange(478)
    assert mutual.mean() > 0.95
    np.testing.assert_allclose(face[mutual] * MIRROR, face[partner[mutual]], atol=1e-4)
    assert inter_ocular(face) == pytest.approx(INTER_OCULAR_CM, rel=1e-5)
    # nose tip towards the camera (negative z), chin below the eyes, forehead above
    assert face[L.NOSE_TIP, 2] < face[L.RIGHT_EYE_OUTER, 2] - 2.0
    assert face[L.CHIN, 1] > 8.0 and face[L.FOREHEAD_TOP, 1] < -3.0


@pytest.mark.parametrize("pyr", [(0, 0, 0), (12, 0, 0), (0, 25, 0), (0, 0, -15), (-8, -20, 10)])
def test_pose_solver_recovers_known_angles(pyr):
    face = load_canonical_face().astype(np.float64)
    r = rotation_from_euler(*pyr)
    np.testing.assert_allclose(euler_from_rotation(r), pyr, atol=1e-9)
    rvec, _ = cv2.Rodrigues(r)
    size = (640, 480)
    tvec = np.array([1.0, -2.0, 240.0])  # ~30 cm away at our 4x focal length
    img, _ = cv2.projectPoints(face, rvec, tvec, camera_matrix(*size), None)
    pose = HeadPoseSolver().solve(np.concatenate([img[:, 0], face[:, 2:]], axis=1), size)
    assert (pose.pitch, pose.yaw, pose.roll) == pytest.approx(pyr, abs=0.05)
    np.testing.assert_allclose(pose.tvec, tvec, rtol=1e-3, atol=1e-2)
    assert pose.reprojection_error < 1e-3


def test_pose_signs():
    face = load_canonical_face().astype(np.float64)
    size = (512, 512)

    def nose_vs_bridge(pyr):
        rvec, _ = cv2.Rodrigues(rotation_from_euler(*pyr))
        img, _ = cv2.projectPoints(face, rvec, np.array([0, 0, 200.0]), camera_matrix(*size), None)
        return img[L.NOSE_TIP, 0] - img[168, 0]

    assert nose_vs_bridge((0, 20, 0))[0] > 1.0  # yaw > 0: the nose points to the image's right
    assert nose_vs_bridge((20, 0, 0))[1] > nose_vs_bridge((0, 0, 0))[1] + 1.0  # pitch > 0: down
    assert nose_vs_bridge((0, 0, 20))[0] < -1.0  # roll > 0 clockwise: the nose (below) swings left


def test_canonical_face_regenerates_from_the_bundled_portrait(tmp_path):
    from worker.tools.canonical_face import regenerate
    from worker.track.canonical import DATA_PATH

    fresh = regenerate(tmp_path / "canonical_face.npy")
    np.testing.assert_allclose(fresh, np.load(DATA_PATH), atol=0.01)  # centimetres
    load_canonical_face.cache_clear()
