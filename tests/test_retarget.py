"""Retarget stage: driver motion relative to its neutral -> the character's own geometry."""

from __future__ import annotations

import math

import numpy as np
import pytest

from worker.characters.preprocess import preprocess_image
from worker.errors import UserError
from worker.paths import SAMPLE_CHARACTER
from worker.retarget import Idle, Retargeter, RetargetOptions, geometry
from worker.tools.sweep import driver_from_character
from worker.track import landmark_ids as L
from worker.track.face_state import FaceState


@pytest.fixture(scope="module")
def char():
    return preprocess_image(SAMPLE_CHARACTER)


def _rt(char, **kw) -> Retargeter:
    # no extra smoothing: each call here is a separate, instantaneous check
    return Retargeter(char, RetargetOptions(idle=False, smooth_min_cutoff=0.0, steady_min_cutoff=0.0, **kw))


def _eye_line_deg(lm: np.ndarray) -> float:
    return math.degrees(geometry.canonical_frame(lm)[1])


def test_neutral_driver_gives_the_character_as_drawn(char):
    rt = _rt(char)
    neutral = driver_from_character(char)
    pose = rt.retarget(driver_from_character(char), neutral)
    assert np.abs(pose.landmarks - char.landmarks).max() < 1e-3
    assert pose.mouth_open == 0
    assert pose.eye_close_left == pytest.approx(0, abs=1e-6) and pose.eye_close_right == pytest.approx(0, abs=1e-6)


def test_a_different_driver_face_moves_only_by_its_motion(char):
    """A driver with another face shape: only the change from its neutral reaches the character."""
    rt = _rt(char)
    lm = char.landmarks.astype(np.float64) * 1.7 + [40.0, -30.0, 0.0]  # bigger, elsewhere
    lm[L.R_EYE_UPPER, 1] -= 3.0  # and another eye shape
    neutral = FaceState(found=True, landmarks=lm.astype(np.float32))
    pose = rt.retarget(FaceState(found=True, timestamp=1.0, landmarks=lm.astype(np.float32)), neutral)
    assert np.abs(pose.landmarks - char.landmarks).max() < 1e-2


def test_head_roll_and_translation_carry_over(char):
    rt = _rt(char)
    neutral = driver_from_character(char)
    pose = rt.retarget(driver_from_character(char, roll=15.0), neutral)
    assert pose.roll == pytest.approx(15.0, abs=0.5)
    assert _eye_line_deg(pose.landmarks) - _eye_line_deg(char.landmarks) == pytest.approx(15.0, abs=0.7)
    moved = driver_from_character(char)
    _, _, iod = geometry.canonical_frame(moved.landmarks)
    moved.landmarks = moved.landmarks + np.float32([0.3 * iod, 0, 0])
    pose = rt.retarget(moved, neutral)
    shift = (pose.landmarks - char.landmarks)[:, 0]
    assert shift.mean() == pytest.approx(0.3 * rt.iod, rel=0.05)


def test_yaw_uses_depth_not_a_squash(char):
    """Turning the head moves the nose tip sideways against the cheeks (parallax)."""
    rt = _rt(char)
    pose = rt.retarget(driver_from_character(char, yaw=20.0), driver_from_character(char))
    assert pose.yaw == pytest.approx(20.0, abs=1.0)
    d = pose.landmarks - char.landmarks
    nose = d[1, 0]
    cheeks = d[[234, 454], 0].mean()
    assert abs(nose - cheeks) > 0.15 * rt.iod
    # and the two eyes are foreshortened unequally (a squash would scale both alike)
    w = [
        np.linalg.norm(pose.landmarks[a, :2] - pose.landmarks[b, :2])
        / np.linalg.norm(char.landmarks[a, :2] - char.landmarks[b, :2])
        for a, b in (L.R_EYE_CORNERS, L.L_EYE_CORNERS)
    ]
    assert abs(w[0] - w[1]) > 0.03


def test_driver_eyes_shut_close_the_characters_eyes_fully(char):
    rt = _rt(char)
    pose = rt.retarget(driver_from_character(char, eyes=0.0), driver_from_character(char))
    assert pose.eye_close_left == 1.0 and pose.eye_close_right == 1.0
    for left in (True, False):
        assert geometry.eye_aperture(pose.landmarks, left) < 0.02
        assert geometry.eye_aperture(char.landmarks, left) > 0.15


def test_eyelids_go_by_ratio_of_the_characters_own_aperture(char):
    rt = _rt(char)
    half = rt.retarget(driver_from_character(char, eyes=0.65), driver_from_character(char))
    ap = geometry.eye_aperture(half.landmarks, True) / geometry.eye_aperture(char.landmarks, True)
    # driver at 65 % of its neutral gap: (0.65 - 0.3) / 0.7 = 0.5 of the character's
    assert ap == pytest.approx(0.5, abs=0.08)


def test_mouth_opening_in_inter_ocular_units(char):
    rt = _rt(char)
    neutral = driver_from_character(char)
    pose = rt.retarget(driver_from_character(char, mouth=0.3), neutral)
    assert pose.mouth_open == pytest.approx(0.3, rel=0.1)
    # a driver calibrated while talking (open neutral) still opens the character from shut
    talking = driver_from_character(char, mouth=0.12)
    pose2 = rt.retarget(driver_from_character(char, mouth=0.3, t=1.0), talking)
    assert pose2.mouth_open == pytest.approx(0.3, rel=0.1)
    closed = rt.retarget(driver_from_character(char, t=2.0), talking)
    assert closed.mouth_open < 0.02
    # lips never cross
    up, lo = closed.landmarks[L.INNER_UPPER, 1], closed.landmarks[L.INNER_LOWER, 1]
    assert (lo - up > -0.5).all()


def test_gaze_moves_the_iris_inside_the_eye(char):
    rt = _rt(char)
    neutral = driver_from_character(char)
    face = driver_from_character(char, t=1.0)
    for iris, corners in ((L.R_IRIS, L.R_EYE_CORNERS), (L.L_IRIS, L.L_EYE_CORNERS)):
        w = np.linalg.norm(face.landmarks[corners[0], :2] - face.landmarks[corners[1], :2])
        face.landmarks[iris : iris + 5, 0] += 0.15 * w  # look to the image's right
    pose = rt.retarget(face, neutral)
    assert pose.gaze[0] == pytest.approx(0.3, abs=0.05)
    for iris, corners in ((L.R_IRIS, L.R_EYE_CORNERS), (L.L_IRIS, L.L_EYE_CORNERS)):
        x = pose.landmarks[iris, 0]
        lo, hi = sorted(pose.landmarks[list(corners), 0])
        assert x > char.landmarks[iris, 0] + 1.0 and lo < x < hi


def test_strengths_and_mirror(char):
    neutral = driver_from_character(char)
    face = driver_from_character(char, roll=10.0, mouth=0.3)
    still = _rt(char, head_strength=0.0).retarget(face, neutral)
    assert still.roll == 0.0 and still.mouth_open == pytest.approx(0.3, rel=0.1)
    frozen = _rt(char, expression_strength=0.0).retarget(face, neutral)
    assert frozen.mouth_open < 0.01 and frozen.roll == pytest.approx(10.0, abs=0.5)
    mirrored = _rt(char, mirror=True)
    assert mirrored.retarget(face, neutral).roll == pytest.approx(-10.0, abs=0.5)
    # the driver's right eye shut -> the character's left one
    wink = driver_from_character(char, t=1.0)
    up, lo = L.R_EYE_UPPER, L.R_EYE_LOWER
    mid = (wink.landmarks[up, 1] + wink.landmarks[lo, 1]) / 2
    wink.landmarks[up, 1] = wink.landmarks[lo, 1] = mid
    p = _rt(char, mirror=True).retarget(wink, neutral)
    assert p.eye_close_left == 1.0 and p.eye_close_right == pytest.approx(0, abs=1e-6)
    p = _rt(char).retarget(wink, neutral)
    assert p.eye_close_right == 1.0 and p.eye_close_left == pytest.approx(0, abs=1e-6)


def test_bad_options_are_a_user_error(char):
    with pytest.raises(UserError, match="expression_strength"):
        Retargeter(char, RetargetOptions(expression_strength=5.0))


def test_idle_life_when_the_face_is_lost(char):
    rt = Retargeter(char, RetargetOptions(idle=True, smooth_min_cutoff=0.0))
    poses = [rt.retarget(FaceState(found=False, timestamp=t), None) for t in np.arange(0, 12, 1 / 30)]
    rolls = np.array([p.roll for p in poses])
    assert rolls.std() > 0.2 and np.abs(np.diff(rolls)).max() < 0.2  # sways, smoothly
    assert max(p.eye_close_left for p in poses) > 0.9  # blinks
    assert all(p.idle == 1.0 for p in poses)
    # a tracked face with lost_blend 0 gets no idle motion; blends in with lost_blend
    neutral = driver_from_character(char)
    face = driver_from_character(char, t=3.3)
    assert rt.retarget(face, neutral).roll == pytest.approx(0.0, abs=1e-9)
    face.lost_blend = 0.5
    half = rt.retarget(face, neutral)
    idle = Idle().sample(3.3)
    assert half.roll == pytest.approx(0.5 * idle.roll, abs=1e-6)


def test_smoothing_holds_a_trembling_head_still(char):
    rng = np.random.default_rng(1)
    neutral = driver_from_character(char)
    smooth = Retargeter(char, RetargetOptions(idle=False, smooth_min_cutoff=1.0))
    raw = _rt(char)
    a, b = [], []
    for i in range(60):
        f = driver_from_character(char, roll=0.3 * rng.standard_normal(), t=i / 30)
        a.append(smooth.retarget(f, neutral).roll)
        b.append(raw.retarget(f, neutral).roll)
    assert np.std(np.diff(a[10:])) < 0.5 * np.std(np.diff(b[10:]))


def test_head_shift_is_limited_by_the_room_beside_the_face(char):
    """A face drawn close to the picture's foot may move down only a little (its neck would fold
    between the chin and the frame's edge); the other ways it moves as far as the driver."""
    from dataclasses import replace

    from worker.retarget.retargeter import ROOM_SHARE

    lm = char.landmarks.copy()
    room = 40.0
    lm[:, 1] += char.size - room - lm[L.FACE_OVAL, 1].max()  # chin 40 px above the foot
    low = replace(char, landmarks=lm, key=char.key + "-low")
    rt = _rt(low)
    neutral = driver_from_character(low)
    _, _, iod = geometry.canonical_frame(neutral.landmarks)

    def shifted(dy: float) -> float:
        moved = driver_from_character(low)
        moved.landmarks = moved.landmarks + np.float32([0, dy * iod, 0])
        return float((rt.retarget(moved, neutral).landmarks - lm)[:, 1].mean())

    assert shifted(0.35) == pytest.approx(ROOM_SHARE * room, rel=0.05)
    assert shifted(-0.3) == pytest.approx(-0.3 * rt.iod, rel=0.05)


def test_an_outline_point_lying_on_the_lips_moves_with_them(char):
    """A face drawn turned has its hidden far-side outline on top of the mouth: there it must
    move with the lips (else the warp folds between the two), while an outline point clear of
    everything keeps its own motion."""
    from dataclasses import replace

    lm = char.landmarks.copy()
    lm[234, :2] = lm[84, :2] + [1.0, 2.0]  # an outline point (the temple's: no jaw motion of its own) on the lip
    turned = replace(char, landmarks=lm, key=char.key + "-turned")
    neutral = driver_from_character(char)
    face = driver_from_character(char, mouth=0.3)
    rt = _rt(turned)
    moved = rt.retarget(face, neutral).landmarks[:, :2] - lm[:, :2]
    rt._outline_mix = None  # the same without the blend: the outline point keeps still
    alone = rt.retarget(face, neutral).landmarks[:, :2] - lm[:, :2]
    assert moved[84, 1] > 0.2 * rt.iod  # the lip drops
    assert abs(alone[234, 1]) < 0.05 * moved[84, 1]
    assert moved[234, 1] > 0.4 * moved[84, 1]  # blended, the outline on it drops along (with the lips round it)
    assert np.abs(moved[10]).max() < 0.02 * rt.iod  # the forehead's outline point stays


def _mouth_width(lm: np.ndarray) -> float:
    return float(np.linalg.norm(lm[L.MOUTH_CORNERS[1], :2] - lm[L.MOUTH_CORNERS[0], :2]))


@pytest.mark.parametrize("pull", [0.1, 0.3])
def test_rounded_lips_are_pulled_in_further_past_the_dead_zone(char, pull):
    """Lips pulled in by more than ROUND_DEAD of their width are drawn narrower again (round_gain);
    a jaw's own small narrowing is left as the driver's."""
    from worker.retarget.lipsync import ROUND_DEAD

    neutral = driver_from_character(char)
    face = driver_from_character(char, t=1.0)
    lm = face.landmarks
    mid = lm[list(L.MOUTH_CORNERS), :2].mean(0)
    lips = np.linalg.norm(lm[:, :2] - mid, axis=1) < 0.6 * _mouth_width(lm)
    lm[lips, 0] = mid[0] + (lm[lips, 0] - mid[0]) * (1.0 - pull)  # the whole mouth narrower by `pull`
    w0 = _mouth_width(char.landmarks)
    own = _mouth_width(_rt(char, round_gain=0.0).retarget(face, neutral).landmarks) / w0
    more = _mouth_width(_rt(char, round_gain=2.0).retarget(face, neutral).landmarks) / w0
    assert own == pytest.approx(1.0 - pull, abs=0.03)
    if pull < ROUND_DEAD:
        assert more == pytest.approx(own, abs=1e-6)
    else:
        assert more == pytest.approx(own - 2.0 * (pull - ROUND_DEAD), abs=0.05)


def test_a_portrait_drawn_turned_still_turns_both_ways(char):
    """A three-quarter view (turned 33 degrees, as s10) turns YAW_AWAY_MIN further away and
    YAW_BACK_MIN back towards the viewer: pinned at 3 / 12 degrees, the painting stood still
    through half of a driver's head turns (`YAW_AWAY_MIN`); eased into those limits (YAW_KNEE), it
    keeps moving a little with the driver past them instead of sitting pinned."""
    from dataclasses import replace

    from worker.retarget.retargeter import YAW_AWAY_MIN, YAW_BACK_MIN, YAW_KNEE, soft_clip

    lm = char.landmarks.astype(np.float64)
    pivot = lm[list(L.SKULL)].mean(0)
    turn = geometry.from_euler_yxz(math.radians(33.0), 0.0, 0.0)
    turned = replace(char, landmarks=((lm - pivot) @ turn.T + pivot).astype(np.float32), key=char.key + "-33")
    rt = _rt(turned)
    assert abs(rt.rest_yaw) == pytest.approx(33.0, abs=4.0)
    away = math.copysign(1.0, rt.rest_yaw)  # the driver's yaw that turns the portrait further away
    neutral = driver_from_character(char)

    def drawn(yaw: float) -> float:
        return away * rt.retarget(driver_from_character(char, yaw=away * yaw), neutral).yaw

    back_free = -YAW_BACK_MIN + YAW_KNEE  # towards the viewer, as the driver until this far
    assert drawn(back_free + 1.0) == pytest.approx(back_free + 1.0, abs=0.5)
    seen = [drawn(y) for y in np.arange(-30.0, 30.5, 2.0)]
    assert (np.diff(seen) > 0).all(), seen  # rising all the way: never pinned
    assert max(np.diff(seen)) <= 2.0 + 0.5, seen  # and never faster than the driver (no jolt)
    assert seen[-1] == pytest.approx(YAW_AWAY_MIN, abs=0.05) and seen[-1] <= YAW_AWAY_MIN + 0.01
    assert seen[0] == pytest.approx(-YAW_BACK_MIN, abs=0.05) and seen[0] >= -YAW_BACK_MIN - 0.01
    # between, the eased limit itself: at its limit's angle the head is 3.6 of its 5 degrees there
    assert drawn(YAW_AWAY_MIN) == pytest.approx(soft_clip(YAW_AWAY_MIN, -YAW_BACK_MIN, YAW_AWAY_MIN, YAW_KNEE), abs=0.3)


def test_soft_clip_is_the_value_inside_and_eases_into_each_limit():
    from worker.retarget.retargeter import soft_clip

    assert soft_clip(0.0, -10.0, 10.0, 4.0) == 0.0 and soft_clip(5.9, -10.0, 10.0, 4.0) == 5.9
    assert soft_clip(1e6, -10.0, 10.0, 4.0) == pytest.approx(10.0)
    assert soft_clip(-1e6, -10.0, 10.0, 4.0) == pytest.approx(-10.0)
    xs = np.linspace(-30.0, 30.0, 601)
    ys = np.array([soft_clip(float(x), -10.0, 10.0, 4.0) for x in xs])
    slope = np.diff(ys) / np.diff(xs)
    assert (slope > 0).all() and (slope <= 1.0 + 1e-9).all()  # rising, never steeper than the input
    assert abs(soft_clip(6.0 + 1e-9, -10.0, 10.0, 4.0) - 6.0) < 1e-6  # no step where the easing starts
    assert soft_clip(3.0, -1.0, 1.0, 4.0) < 1.0  # a knee wider than the range: at most half of it
    assert soft_clip(12.0, -10.0, 10.0, 0.0) == 10.0  # no knee: the plain clip


def _lip_gaps(lm: np.ndarray) -> np.ndarray:
    """The inner lips' vertical gap at each of their nine point pairs, corner to corner."""
    return lm[list(L.INNER_LOWER), 1] - lm[list(L.INNER_UPPER), 1]


def _corner_share(lm: np.ndarray, drawn: np.ndarray) -> float:
    """How far the lips part beyond `drawn`'s next to the corners, as a share of the middle's: ~1 for
    a rectangle."""
    g = _lip_gaps(lm) - _lip_gaps(drawn)
    return float((g[0] + g[-1]) * 0.5 / g[len(g) // 2])


def test_a_rounded_mouth_opens_as_an_oval_from_camera_and_voice(char):
    """An O is not a narrowed A: past the dead zone the lips part less towards the corners (the
    ellipse's height there) and more in the middle; an unrounded mouth keeps every pair alike."""
    from worker.retarget.lipsync import OVAL_LIFT
    from worker.retarget.mouth_signal import VOWELS, MouthSignal

    neutral = driver_from_character(char)
    drawn = {}
    for pull, mouth in ((0.0, 0.3), (0.3, 0.3), (0.0, None), (0.3, None)):  # None: the driver's lips meet
        face = driver_from_character(char, mouth=mouth or 0.0, t=1.0)
        lm = face.landmarks
        if mouth is None:
            lm[list(L.INNER_LOWER), 1] = lm[list(L.INNER_UPPER), 1]
        mid = lm[list(L.MOUTH_CORNERS), :2].mean(0)
        lips = np.linalg.norm(lm[:, :2] - mid, axis=1) < 0.6 * _mouth_width(lm)
        lm[lips, 0] = mid[0] + (lm[lips, 0] - mid[0]) * (1.0 - pull)
        drawn[pull, mouth] = _rt(char).retarget(face, neutral).landmarks
    assert _corner_share(drawn[0.0, 0.3], char.landmarks) > 0.9
    assert _corner_share(drawn[0.3, 0.3], char.landmarks) < 0.75
    lift = OVAL_LIFT * _mouth_width(char.landmarks)  # pixels: pulled in past OVAL_FULL, parted past OVAL_OPEN
    assert _lip_gaps(drawn[0.3, 0.3])[4] > _lip_gaps(drawn[0.0, 0.3])[4] + 0.8 * lift
    # pursed lips that meet stay shut: no opening drawn in
    assert abs(_lip_gaps(drawn[0.3, None])[4] - _lip_gaps(drawn[0.0, None])[4]) < 0.1 * lift

    def voiced(v: str) -> np.ndarray:
        w = np.zeros(len(VOWELS), np.float32)
        w[VOWELS.index(v)] = 1.0
        sig = MouthSignal(openness=1.0, weights=w, voiced=True)
        r = _rt(char, lipsync="always")
        return r.retarget(FaceState(found=False, timestamp=1.0), None, sig).landmarks

    assert _corner_share(voiced("A"), char.landmarks) > 0.9
    for v in "OU":
        assert _corner_share(voiced(v), char.landmarks) < 0.75, v
