"""Each eye on its own: a wink stays a wink, a blink closes both, and a blink while the neutral
is taken does not leave that eye half shut for good.

The rendered output is read back by MediaPipe (the same tracker the driver goes through), so
what is checked is what a viewer would see, not only where the pose puts the lids.
"""

from __future__ import annotations

import numpy as np
import pytest

from worker.characters.preprocess import preprocess_image
from worker.paths import SAMPLE_CHARACTER
from worker.render.meshwarp import MeshWarpRenderer
from worker.retarget import Retargeter, RetargetOptions, geometry
from worker.tools.fidelity import flatten
from worker.tools.sweep import driver_from_character
from worker.track.blend import mean_state
from worker.track.features import eye_openness


@pytest.fixture(scope="module")
def char():
    return preprocess_image(SAMPLE_CHARACTER)


def _driver(char, eyes, t: float = 0.0, yaw: float = 0.0):
    """A fake driver face with (left, right) openness, its openness scalars filled in as the tracker does."""
    face = driver_from_character(char, eyes=eyes, t=t, yaw=yaw)
    face.eye_open_left, face.eye_open_right = eye_openness(face.landmarks)
    return face


def _read_back(char, eyes) -> tuple[float, float]:
    """(left, right) closure of the rendered character as MediaPipe reads it: 1 - aperture / open."""
    from worker.track.mediapipe_tracker import FaceTracker

    renderer = MeshWarpRenderer(size=char.size, warm_start=False)
    rt = Retargeter(char, RetargetOptions(idle=False))
    neutral = _driver(char, 1.0)
    out = []
    for e in ((1.0, 1.0), eyes):
        img = flatten(renderer.render(char, rt.retarget(_driver(char, e), neutral)))
        with FaceTracker(smoothing=False) as tracker:
            m = tracker.measure(img, 0.0)
        assert m.found
        out.append((geometry.eye_aperture(m.landmarks, True), geometry.eye_aperture(m.landmarks, False)))
    (l0, r0), (l1, r1) = out
    return 1.0 - l1 / l0, 1.0 - r1 / r0


@pytest.mark.parametrize("side", ["left", "right"])
def test_a_wink_stays_a_wink(char, side):
    """One eye shut in the driver: that eye reads shut in the output, the other stays open."""
    eyes = (0.0, 1.0) if side == "left" else (1.0, 0.0)
    left, right = _read_back(char, eyes)
    shut, other = (left, right) if side == "left" else (right, left)
    # measured on the bundled photo: the winking eye reads 0.95 (left) and 0.90 (right) closed, the
    # other within 0.06 of open (before the lid blended into its socket: 0.88 and 0.73; before the
    # lash line and the evened-out lid: 0.85 and 0.59)
    assert shut >= 0.8, (left, right)
    assert abs(other) <= 0.12, (left, right)


def test_a_blink_closes_both(char):
    left, right = _read_back(char, (0.0, 0.0))
    # measured: 0.96 and 0.94 (before the lid blended into its socket: 0.96 and 0.84; before the lash
    # line and the evened-out lid: 0.95 and 0.68)
    assert left >= 0.85 and right >= 0.85, (left, right)


def test_an_eye_in_a_dark_socket_reads_shut(testdata):
    """s12's right eye sits in a dark socket: its shut lid, the pale skin between crease and lashes
    stretched down, read as a pale eyeball under the socket's rim. Blended into the socket it reads
    shut at a blink and half shut at half a blink."""
    from worker.tools.fidelity import portrait_character

    char = portrait_character("s12", testdata)
    _, blink = _read_back(char, (0.0, 0.0))
    _, half = _read_back(char, (0.5, 0.5))
    # measured: 0.61 and 0.47 (before: 0.38 and 0.20)
    assert blink >= 0.5 and half >= 0.35, (blink, half)


def test_a_neutral_taken_during_a_wink_keeps_that_eye_open(char):
    """15 frames of calibration, the left eye shut in 5 of them (a wink): the neutral's left eye is
    as open as when the eye is open (a plain average made it a third shut), the right untouched."""
    faces = [_driver(char, (0.0 if 4 <= i < 9 else 1.0, 1.0), t=i / 30) for i in range(15)]
    neutral = mean_state(faces)
    open_face = _driver(char, 1.0)
    for left in (True, False):
        want = geometry.eye_aperture(open_face.landmarks, left)
        got = geometry.eye_aperture(neutral.landmarks, left)
        assert got == pytest.approx(want, rel=0.03), (left, got, want)
    assert neutral.eye_open_left == pytest.approx(open_face.eye_open_left, rel=0.03)
    # ... and a closure after it reaches shut as the driver's does: the ratio the lids go by
    plain = np.mean([f.landmarks for f in faces], axis=0)
    assert geometry.eye_aperture(plain, True) < 0.75 * geometry.eye_aperture(open_face.landmarks, True)


def _drawn_at(backward: np.ndarray, guess: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Where the backward map (output px -> picture px) draws the picture's point `source`: the
    nearest pixel near `guess`, refined by the map's local affine (sub-pixel)."""
    x0, y0 = (np.round(guess) - 25).astype(int)
    win = backward[y0 : y0 + 51, x0 : x0 + 51]
    yy, xx = np.unravel_index(((win - source) ** 2).sum(-1).argmin(), win.shape[:2])
    jac = np.stack([win[yy, xx + 1] - win[yy, xx], win[yy + 1, xx] - win[yy, xx]], 1)
    return np.array([x0 + xx, y0 + yy], np.float64) + np.linalg.solve(jac, source - win[yy, xx])


@pytest.mark.parametrize("yaw", [-25.0, 25.0])
def test_a_turned_heads_eyes_are_drawn_where_the_pose_puts_them(char, yaw):
    """The spline's coarse grid bends too little beside the nose of a turned head: each eye's
    corners came out up to 3.6 px off (the near eye drawn wide, the far one narrow), and
    MediaPipe reads a wider eye as a narrower aperture. Pinned, they land within a fraction of a
    pixel."""
    from worker.track import landmark_ids as L

    pose = Retargeter(char, RetargetOptions(idle=False)).retarget(
        driver_from_character(char, yaw=yaw), driver_from_character(char)
    )
    backward = MeshWarpRenderer(size=char.size, warm_start=False).backward_map(char, pose)
    for i in L.R_EYE_CORNERS + L.L_EYE_CORNERS:
        want = pose.landmarks[i, :2].astype(np.float64)
        got = _drawn_at(backward, want, char.landmarks[i, :2].astype(np.float64))
        # measured: 0.2 px at most (before: 2.1 / 3.2 px at yaw -25, 3.6 / 2.1 px at +25)
        assert np.abs(got - want).max() < 0.6, (i, got, want)


def _drawn_aperture(char, yaw: float, eyes: float) -> tuple[float, float]:
    """(left, right) aperture of the lids as the warp draws them (the backward map inverted at the
    picture's own lid points) over the pose's: how far the drawing is off what is asked."""
    from worker.tools.eye_frames import lid_points

    pose = Retargeter(char, RetargetOptions(idle=False)).retarget(_driver(char, eyes, yaw=yaw), _driver(char, 1.0))
    backward = MeshWarpRenderer(size=char.size, warm_start=False).backward_map(char, pose)
    asked = np.asarray(pose.landmarks, np.float64)
    drawn = asked.copy()
    out = []
    for left in (True, False):
        for i in lid_points(left):
            drawn[i, :2] = _drawn_at(backward, asked[i, :2], char.landmarks[i, :2].astype(np.float64))
        out.append(geometry.eye_aperture(drawn, left) / geometry.eye_aperture(asked, left))
    return out[0], out[1]


@pytest.mark.parametrize("eyes", [1.0, 0.75])
def test_a_turned_heads_lids_are_drawn_as_a_frontal_ones(char, eyes):
    """A turn narrows or widens the eye between its pinned corners but the spline keeps its height,
    so the lid patch, taking the picture's open lids in half widths, drew a turned eye's lids off the
    pose (d12 x s12's right eye 0.09 of its aperture more shut below yaw -4 deg, 0.10 less above +12).
    With the open lids turned with the head, drawn / asked stays near what it is frontal."""
    front = _drawn_aperture(char, 0.0, eyes)
    for yaw in (-25.0, 25.0):
        turned = _drawn_aperture(char, yaw, eyes)
        # measured: at most 0.11 off frontal (the right eye at +25 deg, drawn a little more shut);
        # before: up to 0.13 (open) and 0.30 (3/4 open) off, the left eye at -25 deg drawn wider
        assert max(abs(t - f) for t, f in zip(turned, front, strict=True)) <= 0.12, (yaw, turned, front)
