"""Tracker behaviour over time on real footage: neutral calibration, face lost/back easing,
pause (hold), the smoothing knob, and the head-pose angle conventions."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from worker.capture import VideoFileSource
from worker.paths import SAMPLE_CHARACTER
from worker.retarget import geometry
from worker.track.blend import EYE_POINTS
from worker.track.mediapipe_tracker import FaceTracker
from worker.track.smoothing_metrics import find_still_stretch, shimmer

BLANK = slice(45, 90)  # 1.5 s of black frames in the middle of d3 (30 fps)


@pytest.fixture(scope="module")
def d3_frames(testdata):
    with VideoFileSource(testdata / "footage" / "driving" / "d3.mp4") as src:
        return [f for f, _ in zip(src, range(120), strict=False)]


@pytest.fixture(scope="module")
def lost_run(d3_frames):
    """Frames 0-119 of d3 with frames 45-89 blacked out; the neutral is re-taken at frame 100."""
    tracker = FaceTracker()
    out, neutrals, calibrating = [], [], []
    for f in d3_frames:
        if f.index == 100:
            tracker.calibrate()
        img = np.zeros_like(f.image) if BLANK.start <= f.index < BLANK.stop else f.image
        out.append(tracker.process(img, f.timestamp))
        neutrals.append(tracker.neutral)
        calibrating.append(tracker.calibrating)
    tracker.close()
    return out, neutrals, calibrating


def _mean_dist(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a[:, :2] - b[:, :2], axis=1).mean())


def _assert_mean_but_open_eyes(neutral, frames) -> np.ndarray:
    """The neutral is the frames' mean, but for each eye's lids and iris, taken from the frames
    where that eye is open (see blend.EYE_OPEN_SHARE): never more shut than the mean. Returns the mean."""
    mean = np.mean([s.landmarks for s in frames], axis=0)
    lids = sorted({i for idx, corners in EYE_POINTS.values() for i in idx if i not in corners})
    rest = np.setdiff1d(np.arange(len(mean)), lids)
    np.testing.assert_allclose(neutral.landmarks[rest], mean[rest], atol=1e-3)
    for left in (True, False):
        assert geometry.eye_aperture(neutral.landmarks, left) >= geometry.eye_aperture(mean, left) - 1e-4
    return mean


def test_neutral_is_the_mean_of_the_first_confident_frames(lost_run):
    out, neutrals, _ = lost_run
    assert all(n is None for n in neutrals[:14])
    neutral = neutrals[14]
    assert neutral is not None and neutral.found
    assert all(s.confidence >= 0.5 for s in out[:15])
    mean = _assert_mean_but_open_eyes(neutral, out[:15])
    # d3 blinks its left eye in these frames, which the plain mean left a third shut
    assert geometry.eye_aperture(neutral.landmarks, True) > 1.2 * geometry.eye_aperture(mean, True)
    assert neutral.mouth_open == pytest.approx(np.mean([s.mouth_open for s in out[:15]]), abs=1e-6)
    assert neutral.yaw == pytest.approx(np.mean([s.yaw for s in out[:15]]), abs=1e-6)
    # it stays until calibrate() is called
    assert all(n is neutral for n in neutrals[14:100])


def test_lost_face_holds_then_eases_to_neutral(lost_run, d3_frames):
    out, neutrals, _ = lost_run
    neutral = neutrals[44]
    last = out[BLANK.start - 1]
    t_lost = d3_frames[BLANK.start].timestamp
    lost = out[BLANK]
    assert all(not s.found for s in lost)
    blends = [s.lost_blend for s in lost]
    assert all(b2 >= b1 for b1, b2 in zip(blends, blends[1:], strict=False)), blends
    for s in lost:
        dt = s.timestamp - t_lost
        if dt < 0.3 - 1e-6:  # hold the last state
            assert s.lost_blend == 0.0
            np.testing.assert_allclose(s.landmarks, last.landmarks, atol=1e-4)
            assert s.yaw == pytest.approx(last.yaw)
        elif dt >= 1.0 + 1e-6:  # fully at neutral
            assert s.lost_blend == 1.0
            np.testing.assert_allclose(s.landmarks, neutral.landmarks, atol=1e-3)
            assert s.mouth_open == pytest.approx(neutral.mouth_open, abs=1e-5)
            assert s.roll == pytest.approx(neutral.roll, abs=1e-4)
        else:
            assert 0.0 <= s.lost_blend <= 1.0
    # the ease is smooth: no step bigger than smoothstep's peak rate (1.5 x the mean step) allows
    dist = _mean_dist(last.landmarks, neutral.landmarks)
    steps = [_mean_dist(a.landmarks, b.landmarks) for a, b in zip(lost, lost[1:], strict=False)]
    frames_easing = 0.7 * 30
    assert max(steps) <= 1.6 * dist / frames_easing + 1e-3, (max(steps), dist)
    assert sum(steps) == pytest.approx(dist, rel=0.05)


def test_face_returns_without_a_jump(lost_run):
    out, _, _ = lost_run
    back = out[BLANK.stop :]
    before = out[BLANK.stop - 1]
    assert all(s.found for s in back)
    # the first frame back is exactly where the lost state was; then it eases in over 0.2 s
    np.testing.assert_allclose(back[0].landmarks, before.landmarks, atol=1e-3)
    assert back[0].lost_blend == pytest.approx(1.0)
    iod = back[8].face_scale
    gap = _mean_dist(before.landmarks, back[7].raw_landmarks)
    steps = [_mean_dist(a.landmarks, b.landmarks) for a, b in zip(back[:8], back[1:9], strict=False)]
    assert max(steps) <= 0.3 * gap + 0.02 * iod, (steps, gap)
    for s in back[7:]:  # after 0.2 s: live tracking
        assert s.lost_blend == 0.0
        assert _mean_dist(s.landmarks, s.raw_landmarks) < 0.03 * s.face_scale


def test_calibrate_retakes_the_neutral(lost_run):
    out, neutrals, calibrating = lost_run
    old = neutrals[99]
    assert not calibrating[99]
    assert all(calibrating[100:114]) and all(n is old for n in neutrals[100:114])
    new = neutrals[114]
    assert new is not old and not calibrating[114]
    _assert_mean_but_open_eyes(new, out[100:115])


def test_pause_holds_and_resumes_smoothly(d3_frames):
    with FaceTracker() as tracker:
        for f in d3_frames[:30]:
            last = tracker.process(f.image, f.timestamp)
        held = [tracker.hold(f.timestamp) for f in d3_frames[30:60]]
        assert all(np.array_equal(h.landmarks, last.landmarks) for h in held)
        assert held[-1].timestamp == d3_frames[59].timestamp
        resumed = tracker.process(d3_frames[60].image, d3_frames[60].timestamp)
        np.testing.assert_allclose(resumed.landmarks, last.landmarks, atol=1e-3)
        assert resumed.found


def test_smoothing_knob(d3_frames):
    """0 = raw landmarks; 2 = steadier than the default 1 on the clip's stillest second."""
    with FaceTracker() as tracker:
        raw = [tracker.measure(f.image, f.timestamp) for f in d3_frames]
    lm = np.array([r.raw_landmarks for r in raw])
    iod = np.array([r.face_scale for r in raw])
    st = find_still_stretch(lm, iod, 30)
    results = {}
    for amount in (0.0, 1.0, 2.0):
        tr = FaceTracker()
        tr.set_smoothing(amount)
        results[amount] = np.array([tr.update(r).landmarks for r in raw])
        tr.close()
    np.testing.assert_array_equal(results[0.0], lm)
    s1, s2 = shimmer(results[1.0][st], iod[st]), shimmer(results[2.0][st], iod[st])
    assert s2 < 0.8 * s1 < 0.8 * shimmer(lm[st], iod[st])


def test_head_angle_conventions_on_a_rotated_portrait():
    """roll > 0 is clockwise in the image; a mirrored face mirrors yaw and roll."""
    img = cv2.imread(str(SAMPLE_CHARACTER))
    h, w = img.shape[:2]

    def measure(image):
        with FaceTracker() as tracker:
            s = tracker.measure(image, 0.0)
        assert s.found
        return s

    base = measure(img)
    # OpenCV's positive angle is counter-clockwise on screen: -12 turns the picture clockwise
    rot = cv2.warpAffine(img, cv2.getRotationMatrix2D((w / 2, h / 2), -12, 1.0), (w, h))
    assert measure(rot).roll - base.roll == pytest.approx(12.0, abs=2.0)
    flipped = measure(cv2.flip(img, 1))
    assert flipped.roll == pytest.approx(-base.roll, abs=1.5)
    assert flipped.yaw == pytest.approx(-base.yaw, abs=1.5)
    assert flipped.pitch == pytest.approx(base.pitch, abs=1.5)
    # the subject's left eye appears on the image's right: mirroring swaps the eyes
    assert flipped.eye_open_left == pytest.approx(base.eye_open_right, rel=0.1)


def test_benchmark_tracking_reports_ms_per_frame(testdata):
    from worker.tools.bench import bench_tracking

    r = bench_tracking(testdata / "footage" / "driving" / "d0.mp4")
    assert (r["frames"], r["frames_with_face"], r["size"]) == (78, 78, [512, 512])
    for key in ("track_ms", "mesh_ms", "post_ms"):
        assert r[key]["n"] == 73 and 0 < r[key]["median"] <= r[key]["p95"]
    assert r["mesh_ms"]["median"] < r["track_ms"]["median"]
