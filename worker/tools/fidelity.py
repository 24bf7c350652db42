"""Fidelity of track -> retarget -> render on real footage, measured by re-tracking the output.

For each (driver clip, character) pair every frame is tracked, retargeted and rendered; the
rendered frame is tracked again by a second, independent MediaPipe graph, and the driver's and
the output's signals are compared:

* Pearson r of mouth openness, eye openness, head roll and head yaw (roll/yaw only where the
  driver's own varies by at least 1 / 2 degrees, mouth only where it opens by at least 0.05
  inter-ocular distances: a still signal has nothing to correlate but noise). The driver side
  is the tracker's output (what the pipeline is asked to follow); `*_raw` fields compare
  against the unsmoothed landmarks instead;
* the eyes: each eye's lid aperture on the face turned back to frontal (`eye_apertures`, what the
  retargeter follows), and on the output the mean of two readings of every frame, the video-mode
  tracker's and a per-frame one's (`FaceTracker(per_frame=True)`): their errors on a drawn eye are
  partly independent (the video mode's crop follows the last frame's whole face, jaw included), and
  the mean follows the drawn lids more closely than either (2026-12-07, all 16 pairs: r against the
  pose's own closure, median over the 32 eyes, 0.953 video, 0.957 per frame, 0.964 both);
* mouth gain: output 5-95 % range of mouth openness over the driver's (inter-ocular units);
* mouth lag: the shift (frames, sub-frame) that best aligns the output's mouth openness with the
  driver's, by cross-correlation (positive = the output is late): what smoothing costs the lips;
* jitter ratio: median frame-to-frame acceleration of stable points (nose tip, eye corners) in
  inter-ocular units, output over driver (raw landmarks on both sides);
* the share of output frames in which a face is found at all;
* `pose`: the jitter ratio of the retargeted pose itself (the stable points the renderer is asked
  to draw, which the warp follows exactly), over the same raw driver: how steady the character
  is on screen, with no second tracker in the way; `p_eye` and `p_roll` likewise: the r of the
  pose's eye openness and roll against the driver's. Where they are high and the re-tracked r
  low, what is lost is the second tracker's reading of the drawn face (on the portraits drawn
  turned, s9 / s10 / s12 at 17 / 33 / 10 degrees, MediaPipe's lids and eye line of a turned
  painting move with the turn and with the lids);
* `rigid` (with `--floor`): the jitter ratio of the unchanged character moved *rigidly* along
  the drawn head path (the 2-D part of each frame's head motion: turn, tilt, shift, scale), a
  perfectly smooth motion with no expression: the instrument's own floor for a moving picture;
* `still`: the jitter ratio the *unchanged* character scores (the same instrument re-tracking
  the same still picture frame after frame). MediaPipe's tracking mode does not settle on some
  faces: on the paintings s9 and s10 it wanders by 0.009-0.014 IOD per frame on a picture that
  never changes, more than the raw jitter of the real drivers (0.008), so no renderer that
  draws those characters can score below about 1 there. On the photos (s12, s42) it is ~0.1.
  MediaPipe's per-frame (static image) mode is no way out: it re-tracks a still picture exactly,
  but not a moving one any more steadily. With the drivers tracked that way too, on d0 and d3:
  `rigid` 0.34-1.66 (video mode 0.40-1.26), the output 0.61-2.21 (0.57-2.18), the same pairs
  over 0.8.

`python -m worker.tools.fidelity` prints the full table (takes a few minutes on one core; `--floor`
adds the `rigid` column, one more re-tracking pass).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TypedDict

import numpy as np

from worker.characters.assets import CharacterAssets
from worker.retarget import geometry
from worker.retarget.retargeter import RetargetOptions
from worker.tools.offline import OfflineFrame, StageTimes, animate, track_frames
from worker.track import landmark_ids as L
from worker.track.face_state import FaceState

DRIVERS = ("d0", "d3", "d9", "d12")
CHARACTERS = ("s9", "s10", "s12", "s42")


class Targets(TypedDict):
    """The pass marks of one pair: least r's, most jitter, (low, high) gains."""

    mouth_r: float
    eye_r: float
    roll_r: float
    yaw_r: float
    gain: tuple[float, float]
    jitter: float
    eye_each_r: float
    eye_each_gain: tuple[float, float]


TARGETS: Targets = {
    "mouth_r": 0.97,  # issue 24's (was 0.95): met on all 12 talking pairs since 2026-12-07 (0.971-0.996)
    "eye_r": 0.9,
    "roll_r": 0.93,
    "yaw_r": 0.9,
    "gain": (0.7, 1.4),
    "jitter": 0.8,
    "eye_each_r": 0.9,
    "eye_each_gain": (0.8, 1.25),
}
# an eye's closure is judged only where the driver's same eye closes by this much (share of its open
# aperture, 5-95 % range): a clip with no blink has nothing to correlate but noise
EYE_MIN_RANGE = 0.3
# degrees (5-95 % range of the driver's). Roll is judged only where the driver tilts by 2 degrees or
# more: at 1-1.5 degrees MediaPipe's re-tracked tilt of a painted face is not reliable (decided on
# the earlier renderer targets).
ROLL_MIN_RANGE, YAW_MIN_RANGE = 2.0, 2.0
# The eye target holds on portraits drawn roughly frontal: MediaPipe reads the lids of a face drawn
# turned less surely, even frontalised (s9 17, s10 33 degrees; s12 10 and s42 1 are frontal).
FRONTAL_YAW = 15.0
MOUTH_MIN_RANGE = 0.05  # inter-ocular distances


def eye_apertures(lm: np.ndarray) -> tuple[float, float]:
    """(left, right) lid aperture of a face turned back to frontal (`geometry.frontalised` onto the
    canonical face): the measure the retargeter follows. On the face as seen, an eye's width shrinks
    with the head's turn (cos yaw) while its lid gap does not, so a turned eye read more open."""
    front = geometry.frontalised(np.asarray(lm, np.float64), _canonical())
    return geometry.eye_aperture(front, True), geometry.eye_aperture(front, False)


_CANONICAL: list[np.ndarray] = []


def _canonical() -> np.ndarray:
    if not _CANONICAL:
        from worker.track.canonical import load_canonical_face

        _CANONICAL.append(load_canonical_face().astype(np.float64))
    return _CANONICAL[0]


@dataclass
class Signals:
    """Per-frame measurements of one face track (NaN where no face)."""

    mouth: list[float] = field(default_factory=list)
    eyes: list[float] = field(default_factory=list)
    eye_l: list[float] = field(default_factory=list)  # each eye's own aperture (lid gap / eye width)
    eye_r: list[float] = field(default_factory=list)
    roll: list[float] = field(default_factory=list)
    yaw: list[float] = field(default_factory=list)
    stable: list[np.ndarray] = field(default_factory=list)  # (5, 2) pixels
    iod: list[float] = field(default_factory=list)

    def add(self, lm: np.ndarray | None) -> None:
        if lm is None:
            for s in (self.mouth, self.eyes, self.eye_l, self.eye_r, self.roll, self.yaw):
                s.append(float("nan"))
            self.stable.append(np.full((len(L.STABLE), 2), np.nan))
            self.iod.append(float("nan"))
            return
        lm = np.asarray(lm, np.float64)
        _, _, iod = geometry.canonical_frame(lm)
        self.mouth.append(geometry.mouth_gap(lm) / iod)
        left, right = eye_apertures(lm)
        self.eyes.append((left + right) * 0.5)
        self.eye_l.append(left)
        self.eye_r.append(right)
        yaw, _, roll = geometry.head_angles(lm)
        self.roll.append(roll)
        self.yaw.append(yaw)
        self.stable.append(lm[L.STABLE, :2])
        self.iod.append(iod)

    def read_twice(self, other: Signals) -> Signals:
        """These signals with each eye's aperture the mean of this reading and `other`'s (the same
        frames read again): where one reading lost the face, the other's."""
        out = replace(self)  # the other lists are shared, not changed
        for name in ("eye_l", "eye_r", "eyes"):
            both = np.array([getattr(self, name), getattr(other, name)], np.float64)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # a frame neither reading found
                setattr(out, name, list(np.nanmean(both, axis=0)))
        return out

    def jitter(self) -> float:
        """Median acceleration of the stable points over the clip's median inter-ocular distance.

        One scale for the whole clip: dividing each frame by its own (noisy) distance would
        add that noise to the positions.
        """
        p = np.stack(self.stable)  # (T, 5, 2)
        acc = np.linalg.norm(p[2:] - 2 * p[1:-1] + p[:-2], axis=-1)
        acc = acc[np.isfinite(acc)]
        iod = np.nanmedian(np.asarray(self.iod)) if np.isfinite(self.iod).any() else float("nan")
        return float(np.median(acc) / iod) if len(acc) else float("nan")


@dataclass
class PairResult:
    driver: str
    character: str
    frames: int
    faces_found: int
    mouth_r: float | None
    eye_r: float
    roll_r: float | None
    yaw_r: float | None
    gain: float | None
    jitter: float
    driver_roll_range: float
    driver_yaw_range: float
    driver_mouth_range: float
    render_ms: float
    still: float = float("nan")  # jitter ratio of the unchanged character (the instrument's floor)
    pose_jitter: float = float("nan")  # jitter ratio of the retargeted pose (what is drawn)
    pose_r: dict = field(default_factory=dict)  # eye_r, roll_r of the retargeted pose against the driver
    rigid: float = float("nan")  # jitter ratio of the picture moved rigidly along the head path (floor=True)
    texture: float = float("nan")  # optical-flow texture jitter, output / driver (worker.tools.texture_jitter)
    character_yaw: float = 0.0  # the portrait's own head turn, degrees
    raw: dict = field(default_factory=dict)  # the same r's against the unsmoothed driver
    # each eye on its own ("left" / "right": the picture's left and right as MediaPipe names them):
    # (r, gain) of its closure against the driver's same eye (see `eye_closure`)
    eye_each: dict = field(default_factory=dict)
    # the same for the retargeted pose's lids (what the renderer is asked to draw, no second tracker)
    pose_each: dict = field(default_factory=dict)
    mouth_lag: float | None = None  # frames the output's mouth trails the driver's (`lag_frames`)

    def failures(self) -> list[str]:
        t = TARGETS
        bad = []
        if self.faces_found < self.frames:
            bad.append(f"face found in {self.faces_found}/{self.frames} frames")
        if self.mouth_r is not None and not self.mouth_r >= t["mouth_r"]:
            bad.append(f"mouth r {self.mouth_r:.3f} < {t['mouth_r']}")
        if abs(self.character_yaw) <= FRONTAL_YAW and not self.eye_r >= t["eye_r"]:
            bad.append(f"eye r {self.eye_r:.3f} < {t['eye_r']}")
        if abs(self.character_yaw) <= FRONTAL_YAW:
            for side, (r, g) in self.eye_each.items():
                if r is not None and not r >= t["eye_each_r"]:
                    bad.append(f"{side} eye r {r:.2f} < {t['eye_each_r']}")
                if g is not None and not t["eye_each_gain"][0] <= g <= t["eye_each_gain"][1]:
                    bad.append(f"{side} eye gain {g:.2f} outside {t['eye_each_gain']}")
        if self.roll_r is not None and not self.roll_r >= t["roll_r"]:
            bad.append(f"roll r {self.roll_r:.3f} < {t['roll_r']}")
        if self.yaw_r is not None and not self.yaw_r >= t["yaw_r"]:
            bad.append(f"yaw r {self.yaw_r:.3f} < {t['yaw_r']}")
        if self.gain is not None and not t["gain"][0] <= self.gain <= t["gain"][1]:
            bad.append(f"gain {self.gain:.2f} outside {t['gain']}")
        # jitter as a viewer sees it (texture, optical flow); MediaPipe's re-tracked `jitter` wanders
        # on paintings by itself, so it is shown but not judged
        if np.isfinite(self.texture) and not self.texture <= t["jitter"]:
            bad.append(f"texture jitter {self.texture:.2f} > {t['jitter']}")
        return bad


_STILL: dict[str, float] = {}


def still_jitter(assets: CharacterAssets, frames: int = 45) -> float:
    """Median acceleration (IOD) of the stable points when the unchanged picture is re-tracked."""
    from worker.track.mediapipe_tracker import FaceTracker

    if assets.key not in _STILL:
        img = flatten(assets.image)
        sig = Signals()
        with FaceTracker(smoothing=False) as retrack:
            for i in range(frames):
                m = retrack.measure(img, i / 30.0)
                sig.add(m.landmarks if m.found else None)
        _STILL[assets.key] = sig.jitter()
    return _STILL[assets.key]


def _pearson(a: list[float], b: list[float]) -> float:
    x, y = np.asarray(a), np.asarray(b)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 3 or x.std() < 1e-9 or y.std() < 1e-9:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def lag_frames(driver: list[float], output: list[float], max_lag: int = 6) -> float:
    """Frames by which `output` trails `driver` (negative: leads), from the peak of their
    normalised cross-correlation over shifts of up to `max_lag` frames, refined to a fraction of
    a frame by a parabola through the peak and its neighbours. NaN frames are left out."""
    x, y = np.asarray(driver, np.float64), np.asarray(output, np.float64)
    n = len(x)
    corr = []
    for k in range(-max_lag, max_lag + 1):  # output[t + k] against driver[t]
        a, b = (x[: n - k], y[k:]) if k >= 0 else (x[-k:], y[: n + k])
        corr.append(_pearson(list(a), list(b)))
    c = np.nan_to_num(np.asarray(corr), nan=-1.0)
    i = int(np.argmax(c))
    shift = 0.0
    if 0 < i < len(c) - 1:
        den = c[i - 1] - 2 * c[i] + c[i + 1]
        shift = 0.5 * (c[i - 1] - c[i + 1]) / den if den < 0 else 0.0
    return float(i - max_lag + shift)


def eye_closure(aperture: list[float]) -> np.ndarray:
    """1 - aperture / the eye's open aperture (its 90th percentile): 0 open, 1 shut, in each
    face's own units, so a driver's and a character's eyes of different shapes compare."""
    x = np.asarray(aperture, np.float64)
    ok = np.isfinite(x)
    if not ok.any():
        return x
    return 1.0 - x / max(float(np.percentile(x[ok], 90)), 1e-6)


def eye_each(drv: Signals, out: Signals) -> dict[str, tuple[float | None, float | None]]:
    """{"left"/"right": (r, gain)} of each eye's closure, output against the driver's same eye;
    (None, None) where the driver's eye closes by less than EYE_MIN_RANGE."""
    res: dict[str, tuple[float | None, float | None]] = {}
    for side, d, o in (("left", drv.eye_l, out.eye_l), ("right", drv.eye_r, out.eye_r)):
        dc, oc = eye_closure(d), eye_closure(o)
        rng = _range(list(dc))
        if rng < EYE_MIN_RANGE:
            res[side] = (None, None)
            continue
        res[side] = (_pearson(list(dc), list(oc)), _range(list(oc)) / rng)
    return res


def _range(a: list[float]) -> float:
    x = np.asarray(a)
    x = x[np.isfinite(x)]
    return float(np.percentile(x, 95) - np.percentile(x, 5)) if len(x) else 0.0


def read_video(path: Path, max_frames: int | None = None):
    """(bgr, timestamp) of each frame of a video file."""
    import av

    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        for i, fr in enumerate(c.decode(stream)):
            if max_frames is not None and i >= max_frames:
                return
            t = float(fr.time) if fr.time is not None else i / float(stream.average_rate or 30)
            yield fr.to_ndarray(format="bgr24"), t


# Tracked clips and driver texture jitters kept for the process, keyed by the clip's content: the test
# suite and the tools measure the same driver against several characters, and MediaPipe over a whole
# clip (5-10 s) is the repeated part.
_TRACKED: dict[tuple[str, int | None], tuple[list[FaceState], list[FaceState | None]]] = {}
_DRIVER_TEXTURE: dict[tuple[str, int | None], float] = {}


def _clip_key(path: Path, max_frames: int | None) -> tuple[str, int | None]:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest(), max_frames


def track_driver(path: Path, max_frames: int | None = None) -> tuple[list[FaceState], list[FaceState | None]]:
    """Every frame's tracked state (smoothed, as the live pipeline has it) and the neutral then.

    Tracked once per clip content and frame count in a process; each caller gets its own copy."""
    import copy

    from worker.track.mediapipe_tracker import FaceTracker

    key = _clip_key(path, max_frames)
    if key not in _TRACKED:
        states: list[FaceState] = []
        neutrals: list[FaceState | None] = []
        with FaceTracker() as tracker:
            for f in track_frames(read_video(path, max_frames), tracker, StageTimes()):
                assert f.face is not None  # track_frames fills in every frame's face
                states.append(f.face)
                neutrals.append(f.neutral)
        _TRACKED[key] = (states, neutrals)
    return copy.deepcopy(_TRACKED[key])  # one deepcopy: a neutral shared by many frames stays shared


def flatten(rgba: np.ndarray, grey: int = 128) -> np.ndarray:
    """RGBA over a flat grey, as BGR (what a viewer, and a tracker, would see)."""
    a = rgba[..., 3:4].astype(np.float32) / 255.0
    rgb = rgba[..., :3].astype(np.float32) * a + grey * (1.0 - a)
    return np.ascontiguousarray(rgb[..., ::-1].astype(np.uint8))


class _RigidMover:
    """The unchanged picture moved by the 2-D part of a pose's head motion (no warp at all)."""

    def __init__(self, assets: CharacterAssets) -> None:
        self.image = assets.image
        self.pivot_z = float(np.asarray(assets.landmarks)[L.SKULL, 2].mean())

    def __call__(self, pose) -> np.ndarray:
        import cv2

        h = np.asarray(pose.head_matrix, np.float64)
        m = np.concatenate([h[:2, :2], (h[:2, 3] + h[:2, 2] * self.pivot_z)[:, None]], 1)
        n = self.image.shape[0]
        return cv2.warpAffine(self.image, m, (n, n), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def run_pair(
    driver_name: str,
    states: list[FaceState],
    neutrals: list[FaceState | None],
    assets: CharacterAssets,
    options: RetargetOptions | None = None,
    renderer=None,
    floor: bool = False,
    driver_texture: float | None = None,
) -> PairResult:
    """Retarget + render every tracked frame onto `assets`, re-track the output, compare.

    `floor`: also re-track the picture moved rigidly along the same head path (`rigid`).
    `driver_texture`: the driver video's texture jitter (`driver_texture_jitter`); with it the
    output's is measured on the rendered frames too (`texture`, the ratio).
    """
    from worker.render import create_renderer
    from worker.tools.texture_jitter import TextureJitter
    from worker.track.mediapipe_tracker import FaceTracker

    renderer = renderer or create_renderer("meshwarp", size=assets.size)
    drv, raw, out, drawn, rigid, once = Signals(), Signals(), Signals(), Signals(), Signals(), Signals()
    moved = _RigidMover(assets) if floor else None
    tex = TextureJitter() if driver_texture else None
    found = 0
    times = StageTimes()
    tracked = (
        OfflineFrame(i, None, face.timestamp, face, neutral)
        for i, (face, neutral) in enumerate(zip(states, neutrals, strict=True))
    )
    floor_ctx = FaceTracker(smoothing=False) if floor else contextlib.nullcontext()
    with (
        FaceTracker(smoothing=False) as retrack,
        FaceTracker(smoothing=False, per_frame=True) as reread,
        floor_ctx as floor_track,
    ):
        for f in animate(tracked, assets, renderer, times, options or RetargetOptions(idle=False)):
            face, pose = f.face, f.pose
            # the frames are tracked, and a pose-drawing renderer fills in the pose and the picture
            assert face is not None and pose is not None and f.rgba is not None
            drv.add(face.landmarks if face.landmarks is not None and face.found else None)
            raw.add(face.raw_landmarks if face.found else None)
            drawn.add(pose.landmarks)
            seen = flatten(f.rgba)
            with times.stage("retrack"):
                m = retrack.measure(seen, face.timestamp)
            if tex is not None:
                tex.add(np.ascontiguousarray(seen[..., ::-1]))
            found += int(m.found)
            out.add(m.landmarks if m.found else None)
            with times.stage("retrack"):
                m = reread.measure(seen, face.timestamp)
            once.add(m.landmarks if m.found else None)
            if moved is not None and floor_track is not None:  # both with `floor`
                m = floor_track.measure(flatten(moved(pose)), face.timestamp)
                rigid.add(m.landmarks if m.found else None)
    out = out.read_twice(once)  # each eye read twice: see the module's doc
    d_roll, d_yaw, d_mouth = _range(drv.roll), _range(drv.yaw), _range(drv.mouth)
    use_mouth = d_mouth >= MOUTH_MIN_RANGE

    def rs(d: Signals, o: Signals = out) -> dict:
        return {
            "mouth_r": _pearson(d.mouth, o.mouth) if use_mouth else None,
            "eye_r": _pearson(d.eyes, o.eyes),
            "roll_r": _pearson(d.roll, o.roll) if d_roll >= ROLL_MIN_RANGE else None,
            "yaw_r": _pearson(d.yaw, o.yaw) if d_yaw >= YAW_MIN_RANGE else None,
        }

    drawn_r = rs(drv, drawn)

    return PairResult(
        driver=driver_name,
        character=assets.name,
        frames=len(states),
        faces_found=found,
        **rs(drv),
        gain=_range(out.mouth) / max(d_mouth, 1e-9) if use_mouth else None,
        jitter=out.jitter() / max(raw.jitter(), 1e-9),
        driver_roll_range=d_roll,
        driver_yaw_range=d_yaw,
        driver_mouth_range=d_mouth,
        render_ms=times.median_ms("render"),
        still=still_jitter(assets) / max(raw.jitter(), 1e-9),
        raw=rs(raw),
        pose_jitter=drawn.jitter() / max(raw.jitter(), 1e-9),
        pose_r={k: drawn_r[k] for k in ("eye_r", "roll_r")},
        rigid=rigid.jitter() / max(raw.jitter(), 1e-9) if floor else float("nan"),
        texture=tex.result().median / driver_texture if tex is not None and driver_texture else float("nan"),
        character_yaw=portrait_yaw(assets),
        eye_each=eye_each(drv, out),
        pose_each=eye_each(drv, drawn),
        mouth_lag=lag_frames(drv.mouth, out.mouth) if use_mouth else None,
    )


def portrait_yaw(assets: CharacterAssets) -> float:
    """How far the character's own face is drawn turned, degrees (head pose of its landmarks)."""
    from worker.track.pose import HeadPoseSolver

    return float(HeadPoseSolver().solve(assets.landmarks[:, :2], (assets.size, assets.size)).yaw)


def driver_texture_jitter(path: Path, max_frames: int | None = None) -> float:
    """The driver video's own texture jitter (median acceleration, IOD per frame^2)."""
    from worker.tools.texture_jitter import read_rgb, texture_jitter

    key = _clip_key(path, max_frames)
    if key not in _DRIVER_TEXTURE:
        _DRIVER_TEXTURE[key] = texture_jitter(read_rgb(path, max_frames)).median
    return _DRIVER_TEXTURE[key]


_ASSETS: dict[str, CharacterAssets] = {}


def portrait_character(name: str, root: Path | None = None) -> CharacterAssets:
    """A test portrait (footage/portraits/<name>.jpg) preprocessed, kept for the process."""
    from worker.characters.preprocess import preprocess_image
    from worker.paths import shared_testdata

    if name not in _ASSETS:
        root = root or shared_testdata()
        if root is None:
            raise FileNotFoundError("shared test data not found (footage/portraits)")
        _ASSETS[name] = preprocess_image(root / "footage" / "portraits" / f"{name}.jpg")
    return _ASSETS[name]


def fidelity_table(
    drivers=DRIVERS,
    characters=CHARACTERS,
    max_frames: int | None = None,
    options: RetargetOptions | None = None,
    root: Path | None = None,
    floor: bool = False,
) -> list[PairResult]:
    """Every driver x character pair (drivers are tracked once and reused)."""
    from worker.paths import shared_testdata

    root = root or shared_testdata()
    if root is None:
        raise FileNotFoundError("shared test data not found (footage/driving)")
    results = []
    for d in drivers:
        path = root / "footage" / "driving" / f"{d}.mp4"
        states, neutrals = track_driver(path, max_frames)
        tex = driver_texture_jitter(path, max_frames)
        for c in characters:
            results.append(
                run_pair(d, states, neutrals, portrait_character(c, root), options, floor=floor, driver_texture=tex)
            )
    return results


def format_table(results: list[PairResult]) -> str:
    def f(v, fmt="{:.3f}"):
        return "  -  " if v is None else fmt.format(v)

    head = (
        f"{'pair':10} {'frames':>6} {'faces':>6} {'mouth_r':>7} {'eye_r':>6} {'roll_r':>6} {'yaw_r':>6} "
        f"{'gain':>5} {'lag':>5} {'tex':>5} {'jitter':>6} {'pose':>5} {'p_eye':>5} {'p_rol':>5} {'rigid':>5} "
        f"{'still':>5} "
        f"{'ms':>5} "
        f"{'d_rol':>5} {'d_mou':>5} {'eye_l r/g':>9} {'eye_r r/g':>9} {'p_l r/g':>9} {'p_r r/g':>9}  result"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        bad = r.failures()
        lines.append(
            f"{r.driver + 'x' + r.character:10} {r.frames:6d} {r.faces_found:6d} {f(r.mouth_r):>7} {f(r.eye_r):>6} "
            f"{f(r.roll_r):>6} {f(r.yaw_r):>6} {f(r.gain, '{:.2f}'):>5} {f(r.mouth_lag, '{:+.2f}'):>5} "
            f"{f(r.texture if np.isfinite(r.texture) else None, '{:.2f}'):>5} {f(r.jitter, '{:.2f}'):>6} "
            f"{f(r.pose_jitter, '{:.2f}'):>5} {f(r.pose_r.get('eye_r'), '{:.2f}'):>5} "
            f"{f(r.pose_r.get('roll_r'), '{:.2f}'):>5} {f(r.rigid if np.isfinite(r.rigid) else None, '{:.2f}'):>5} "
            f"{f(r.still, '{:.2f}'):>5} "
            f"{r.render_ms:5.1f} {r.driver_roll_range:5.1f} {r.driver_mouth_range:5.2f} "
            f"{_each(r.eye_each.get('left')):>9} {_each(r.eye_each.get('right')):>9} "
            f"{_each(r.pose_each.get('left')):>9} {_each(r.pose_each.get('right')):>9}  "
            f"{'ok' if not bad else '; '.join(bad)}"
        )
    lines.append(
        f"targets: {TARGETS} (roll/yaw only where the driver's varies >= "
        f"{ROLL_MIN_RANGE}/{YAW_MIN_RANGE} deg, mouth r and gain where it opens >= "
        f"{MOUTH_MIN_RANGE} IOD, eye r on portraits drawn within {FRONTAL_YAW:g} deg of frontal; "
        "'tex' = texture jitter (optical flow in the face), output / driver, the judged jitter; "
        "'lag' = frames the output's mouth trails the driver's (cross-correlation); "
        "'jitter' = MediaPipe's re-tracked one, shown only; '-' = not applicable; "
        "'pose' = the jitter ratio of the retargeted pose, what is drawn; "
        "'p_eye', 'p_rol' = its eye and roll r against the driver; "
        "'rigid' (--floor) = that of the picture moved rigidly along the head path; "
        "'eye_l/eye_r r/g' = each eye's closure r and gain against the driver's same eye "
        f"(where it closes by >= {EYE_MIN_RANGE:g} of its open aperture), 'p_l/p_r r/g' the same for the "
        "lids the pose draws (no second tracker in the way); "
        "'still' = the jitter ratio of the unchanged picture, "
        "the instrument's own floor)"
    )
    return "\n".join(lines)


def _each(rg: tuple | None) -> str:
    """'r/gain' of one eye's closure, '-' where its driver's eye does not close enough."""
    if not rg or rg[0] is None:
        return "-"
    return f"{rg[0]:.2f}/{rg[1]:.2f}"


def print_table(**kwargs) -> list[PairResult]:
    """Run `fidelity_table(**kwargs)`, print it, return the results (for the bench command)."""
    res = fidelity_table(**kwargs)
    print(format_table(res))
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m worker.tools.fidelity", description=__doc__.split("\n\n")[0])
    ap.add_argument("--drivers", default=",".join(DRIVERS))
    ap.add_argument("--characters", default=",".join(CHARACTERS))
    ap.add_argument("--max-frames", type=int, default=None)
    ap.add_argument("--floor", action="store_true", help="also the 'rigid' column (one more re-tracking pass)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    res = fidelity_table(a.drivers.split(","), a.characters.split(","), a.max_frames, floor=a.floor)
    if a.json:
        print(json.dumps([asdict(r) | {"failures": r.failures()} for r in res], indent=1))
    else:
        print(format_table(res))
    return 0 if all(not r.failures() for r in res) else 1


if __name__ == "__main__":
    raise SystemExit(main())
