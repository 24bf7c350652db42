"""Track stage on real footage with real MediaPipe, cross-checked against dlib's 68-point model.

Each driving clip is tracked once (module-scoped fixture) with the default tracker; the tests
then read the cached series. dlib runs on every 4th frame (6th on the long d6 clip): its
detector costs ~20 ms even at half resolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from worker.capture import VideoFileSource
from worker.track import landmark_ids as L
from worker.track.face_state import N_LANDMARKS
from worker.track.mediapipe_tracker import FaceTracker
from worker.track.pose import HeadPoseSolver
from worker.track.smoothing_metrics import find_fast_stretch, find_still_stretch, lag_frames, shimmer

CLIPS = ("d0", "d3", "d6", "d9", "d12")
DLIB_STEP = {"d6": 6}


@dataclass
class Tracked:
    name: str
    frames: int
    size: tuple[int, int]
    fps: float
    found: np.ndarray  # (T,) bool
    t: np.ndarray
    lm: np.ndarray  # (T, 478, 3) smoothed
    raw: np.ndarray  # (T, 478, 3)
    pose: np.ndarray  # (T, 3) pitch, yaw, roll (smoothed)
    mouth: np.ndarray  # (T,)
    eyes: np.ndarray  # (T, 2)
    iod: np.ndarray  # (T,)
    conf: np.ndarray
    dlib_idx: np.ndarray  # frames dlib looked at and found a face on
    dlib_roll: np.ndarray
    dlib_mouth: np.ndarray


def _dlib_measures(gray: np.ndarray, detector, predictor) -> tuple[float, float] | None:
    """(roll in degrees, inner-lip gap / inter-ocular distance) from dlib's 68 points."""
    import cv2
    import dlib

    small = cv2.resize(gray, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    rects = detector(small, 0)
    if not rects:
        return None
    r = max(rects, key=lambda r: r.area())
    rect = dlib.rectangle(2 * r.left(), 2 * r.top(), 2 * r.right(), 2 * r.bottom())
    s = predictor(gray, rect)
    p = np.array([(s.part(i).x, s.part(i).y) for i in range(68)], np.float64)
    right_eye, left_eye = p[36:42].mean(axis=0), p[42:48].mean(axis=0)  # subject's right = image left
    d = left_eye - right_eye
    roll = np.degrees(np.arctan2(d[1], d[0]))
    gap = np.mean([np.linalg.norm(p[a] - p[b]) for a, b in ((61, 67), (62, 66), (63, 65))])
    return float(roll), float(gap / np.linalg.norm(d))


@pytest.fixture(scope="module")
def tracked(testdata) -> dict[str, Tracked]:
    import cv2
    import dlib
    import face_recognition_models

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())
    out = {}
    for name in CLIPS:
        path = testdata / "footage" / "driving" / f"{name}.mp4"
        step = DLIB_STEP.get(name, 4)
        rows, dl = [], []
        with VideoFileSource(path) as src, FaceTracker() as tracker:
            size, fps = src.size, src.fps
            for frame in src:
                s = tracker.process(frame.image, frame.timestamp)
                rows.append(s)
                if frame.index % step == 0:
                    m = _dlib_measures(cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY), detector, predictor)
                    if m is not None:
                        dl.append((frame.index, *m))
        dl_a = np.array(dl)
        empty = np.full((N_LANDMARKS, 3), np.nan, np.float32)
        out[name] = Tracked(
            name=name,
            frames=len(rows),
            size=size,
            fps=fps,
            found=np.array([s.found for s in rows]),
            t=np.array([s.timestamp for s in rows]),
            lm=np.array([s.landmarks if s.landmarks is not None else empty for s in rows]),
            raw=np.array([s.raw_landmarks if s.raw_landmarks is not None else empty for s in rows]),
            pose=np.array([(s.pitch, s.yaw, s.roll) for s in rows]),
            mouth=np.array([s.mouth_open for s in rows]),
            eyes=np.array([(s.eye_open_left, s.eye_open_right) for s in rows]),
            iod=np.array([s.face_scale for s in rows]),
            conf=np.array([s.confidence for s in rows]),
            dlib_idx=dl_a[:, 0].astype(int),
            dlib_roll=dl_a[:, 1],
            dlib_mouth=dl_a[:, 2],
        )
    return out


EXPECTED_FRAMES = {"d0": 78, "d3": 354, "d6": 1008, "d9": 587, "d12": 183}


def test_face_found_on_every_frame(tracked):
    for name, tr in tracked.items():
        assert tr.frames == EXPECTED_FRAMES[name]
        missing = np.flatnonzero(~tr.found)
        assert missing.size == 0, f"{name}: no face on frames {missing[:10]}"


def test_state_fields_are_filled_and_plausible(tracked):
    for name, tr in tracked.items():
        w, h = tr.size
        assert tr.lm.shape == (tr.frames, N_LANDMARKS, 3)
        # landmarks in pixels: the face is inside the frame
        c = tr.lm[:, :, :2].mean(axis=1)
        assert (c[:, 0] > 0).all() and (c[:, 0] < w).all() and (c[:, 1] > 0).all() and (c[:, 1] < h).all()
        assert (tr.iod > 0.1 * min(w, h)).all(), name  # the clips are face close-ups
        assert (tr.conf > 0.5).all(), f"{name}: confidence {tr.conf.min():.2f}"
        assert (np.abs(tr.pose) < 45).all(), name
        assert (tr.eyes > 0).all() and (tr.eyes < 0.8).all(), name
        assert (tr.mouth >= 0).all() and (tr.mouth < 1.5).all(), name
        # the iris centres lie between their eye's corners (x) in every frame
        for iris, a, b in ((L.RIGHT_IRIS_CENTER, 33, 133), (L.LEFT_IRIS_CENTER, 362, 263)):
            x = tr.lm[:, iris, 0]
            lo = np.minimum(tr.lm[:, a, 0], tr.lm[:, b, 0])
            hi = np.maximum(tr.lm[:, a, 0], tr.lm[:, b, 0])
            assert ((x > lo) & (x < hi)).mean() > 0.99, name


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


def test_roll_agrees_with_dlib(tracked):
    """Per clip, centred (people hold their heads differently), and pooled over all clips.

    dlib's roll is the angle of its eye-centre line; ours is a 3-D fit on other points, smoothed,
    so they differ by both models' noise. Measured (every 4th frame): r = 0.94, 0.88, 0.95, 0.91
    on the clips that tilt (d3, d6, d9, d12; dlib spread 2.7-3.0 degrees), 0.91 pooled. d0 barely
    tilts (0.5 degree spread, all noise) and only counts in the pooled value. Our own eye-line
    angle agrees with dlib's no better (0.89-0.96), so that is the ceiling. 0.85 / 0.88 fail for
    a wrong sign or axis, or for a series a few frames late.
    """
    xs, ys = [], []
    for name, tr in tracked.items():
        ours = tr.pose[tr.dlib_idx, 2]
        theirs = tr.dlib_roll
        if theirs.std() > 2.0:
            r = _pearson(ours, theirs)
            assert r > 0.85, f"{name}: roll r = {r:.3f}"
        xs.append(ours - ours.mean())
        ys.append(theirs - theirs.mean())
    r_all = _pearson(np.concatenate(xs), np.concatenate(ys))
    assert r_all > 0.88, f"pooled roll r = {r_all:.3f}"


def test_mouth_openness_agrees_with_dlib(tracked):
    """dlib's inner-lip gap over its eye distance against our mouth_open.

    Measured: r = 0.998, 0.997, 0.80, 0.85, 0.95 (d0, d3, d6, d9, d12), 0.92 pooled. d6 (tongue
    out, extreme expressions) and d9 (small speech movements, beard) are where the two models'
    inner-lip contours disagree; the raw, unsmoothed MediaPipe value scores the same (0.79 and
    0.87), so it is the models, not our smoothing. 0.75 per clip and 0.88 pooled fail for a
    wrong lip pair, a wrong normaliser or a lagging series.
    """
    xs, ys = [], []
    for name, tr in tracked.items():
        ours = tr.mouth[tr.dlib_idx]
        theirs = tr.dlib_mouth
        r = _pearson(ours, theirs)
        assert r > 0.75, f"{name}: mouth r = {r:.3f}"
        xs.append(ours)
        ys.append(theirs)
    r_all = _pearson(np.concatenate(xs), np.concatenate(ys))
    assert r_all > 0.88, f"pooled mouth r = {r_all:.3f}"


def test_smoothing_reduces_shimmer_on_a_still_head(tracked):
    """On each clip's stillest second (of head motion), the rigid points' frame-to-frame noise
    (RMS second difference, % IOD) against the raw tracker's. Measured ratios: 0.45, 0.34, 0.43,
    0.27, 0.65 (d12's camera shakes even in its stillest second). Limits: each < 0.75, mean < 0.5."""
    ratios = {}
    for name, tr in tracked.items():
        fps = int(round(tr.fps))
        st = find_still_stretch(tr.raw, tr.iod, fps)
        ratios[name] = shimmer(tr.lm[st], tr.iod[st]) / shimmer(tr.raw[st], tr.iod[st])
    assert max(ratios.values()) < 0.75, ratios
    assert np.mean(list(ratios.values())) < 0.5, ratios


def test_smoothing_adds_at_most_a_frame_of_lag_on_fast_motion(tracked):
    """Lag of the smoothed landmarks behind the raw ones on each clip's fastest head motion
    (measured 0.15-0.6 frames), and of the smoothed yaw behind yaw fitted to the raw landmarks
    on the fastest turn (measured 0.4-0.8 frames on turns of 15-33 degrees)."""
    lags = {}
    for name, tr in tracked.items():
        fs = find_fast_stretch(tr.raw, tr.iod, 20)
        sl = slice(max(0, fs.start - 10), fs.stop + 10)
        scale = float(tr.iod[sl].mean())
        lm_lag = lag_frames(tr.raw[sl, :468, :2] / scale, tr.lm[sl, :468, :2] / scale)
        solver = HeadPoseSolver()
        raw_yaw = np.array([solver.solve(p, tr.size).yaw for p in tr.raw])
        speed = np.convolve(np.abs(np.diff(raw_yaw)), np.ones(20), "valid")
        k = int(np.argmax(speed))
        ysl = slice(max(0, k - 10), k + 30)
        yaw_lag = lag_frames(raw_yaw[ysl], tr.pose[ysl, 1])
        lags[name] = (lm_lag, yaw_lag, float(np.ptp(raw_yaw[ysl])))
    for lm_lag, yaw_lag, yaw_range in lags.values():
        assert -0.25 <= lm_lag <= 1.0, lags
        if yaw_range > 8.0:  # a real turn; on d0 yaw barely moves and its lag is ill-defined
            assert -0.25 <= yaw_lag <= 1.0, lags


def test_yaw_and_pitch_follow_the_nose(tracked):
    """Angle signs and axes against a plain image measure: yaw > 0 puts the nose tip towards the
    image's right of the face's sides; pitch > 0 (looking down) brings it closer to the mouth.
    Measured r: yaw 0.99-1.0; pitch 0.66-0.93 (the proxy also moves with mouth opening)."""
    for name in ("d3", "d6", "d9", "d12"):
        lm, pose = tracked[name].lm, tracked[name].pose
        sides = 0.5 * (lm[:, 234] + lm[:, 454])
        width = np.linalg.norm(lm[:, 454, :2] - lm[:, 234, :2], axis=1)
        yaw_proxy = (lm[:, L.NOSE_TIP, 0] - sides[:, 0]) / width
        eyes = lm[:, [33, 133, 362, 263]].mean(axis=1)
        mouth = 0.5 * (lm[:, L.MOUTH_RIGHT_CORNER] + lm[:, L.MOUTH_LEFT_CORNER])
        pitch_proxy = (lm[:, L.NOSE_TIP, 1] - eyes[:, 1]) / (mouth[:, 1] - eyes[:, 1])
        assert _pearson(pose[:, 1], yaw_proxy) > 0.95, name
        assert _pearson(pose[:, 0], pitch_proxy) > 0.55, name
