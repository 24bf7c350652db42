"""Each vowel's mouth as a viewer sees it: rendered from the voice, measured by re-tracking.

For every vowel the character is drawn with the voice mouth fully open on that vowel alone (no
speech synthesis: the shape the analysis would ask for at its widest), MediaPipe tracks the
rendered picture, and the inner lips' width (corner to corner) and height (the central gap) are
read in inter-ocular distances. The camera's mouth takes the same path from the driver's lips,
so this is the shape table the voice and the camera share (`lipsync.VOWEL_SHAPES`).

The camera path (`camera_vowel_shapes`) is measured the same way from real footage: in a
driving clip the frames where the person's mouth is open and unrounded (A), rounded (O/U: the
corners pulled in to at most `ROUND_MAX` of the driver's neutral width) and spread (I/E: at
least `SPREAD_MIN`) are picked from the driver's own tracked lips; each picked frame is held
(fed again and again until the retargeting's filters settle), drawn, and re-tracked like the
voice's vowels. A driver does not say a vowel the voice analysis could name for certain (its
weights on real speech stay under 0.5), so the frames are chosen by shape; the driver's own
shape is shown beside the output's, so the table says whether the camera path keeps it.

`python -m worker.tools.vowel_shapes [--character IMG] [--camera d12,d6]` prints the tables.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from worker.retarget import geometry as G
from worker.retarget.mouth_signal import VOWELS, MouthSignal
from worker.retarget.retargeter import RetargetOptions
from worker.track import landmark_ids as L
from worker.track.face_state import FaceState


@dataclass
class VowelShape:
    vowel: str  # "rest" for the character as drawn
    width: float  # inner-lip corner distance, inter-ocular units
    height: float  # inner-lip gap (three central pairs), inter-ocular units

    @property
    def roundness(self) -> float:
        """height / width: an O or U reads round, an I or E spread."""
        return self.height / max(self.width, 1e-6)


def _measure(lm: np.ndarray) -> tuple[float, float]:
    _, _, iod = G.canonical_frame(lm)
    a, b = lm[L.MOUTH_CORNERS[0], :2], lm[L.MOUTH_CORNERS[1], :2]
    return float(np.linalg.norm(b - a)) / iod, G.mouth_gap(lm) / iod


def vowel_shapes(character: str | Path, size: int = 512) -> list[VowelShape]:
    """The re-tracked mouth of `character` at rest and on each vowel (openness 1)."""
    from worker.characters.preprocess import PreprocessSettings, preprocess_image
    from worker.render import create_renderer
    from worker.render.meshwarp import MeshWarpRenderer
    from worker.retarget import Retargeter, RetargetOptions
    from worker.tools.fidelity import flatten
    from worker.track.mediapipe_tracker import FaceTracker

    assets = preprocess_image(character, PreprocessSettings(size=size))
    renderer = create_renderer("meshwarp", size=size)
    assert isinstance(renderer, MeshWarpRenderer)  # this measure draws a pose with the CPU renderer
    out = []
    try:
        for label in ("rest", *VOWELS):
            w = np.zeros(len(VOWELS), np.float32)
            if label != "rest":
                w[VOWELS.index(label)] = 1.0
            sig = MouthSignal(openness=1.0 if label != "rest" else 0.0, weights=w, voiced=label != "rest")
            r = Retargeter(assets, RetargetOptions(lipsync="always", idle=False))
            rgba = renderer.render(assets, r.retarget(FaceState(found=False, timestamp=1.0), None, sig))
            # a fresh graph per picture: tracking mode would carry the last face over
            with FaceTracker(smoothing=False) as tracker:
                m = tracker.measure(flatten(rgba), 0.0)
            if not m.found:
                raise RuntimeError(f"{label}: no face found in the rendered picture")
            out.append(VowelShape(label, *_measure(np.asarray(m.landmarks, np.float64))))
    finally:
        renderer.close()
    return out


# the camera path's vowel classes, by the driver's inner-lip width over its neutral width
ROUND_MAX = 0.85  # O / U: corners pulled in
SPREAD_MIN = 1.15  # I / E: corners pulled out
OPEN_MIN = 0.15  # inter-ocular units of inner-lip gap for A and O/U; I / E need only SPREAD_OPEN
SPREAD_OPEN = 0.08
PICK = 5  # frames per class (the most typical ones)
HOLD = 15  # times a picked frame is fed to the retargeter (its filters settle within ~10 at 30 fps)
CAMERA_DRIVERS = ("d12", "d6")  # a man talking, a woman pulling faces (pouts, a wide grin)


@dataclass
class CameraVowel:
    label: str  # "A", "O/U", "I/E"
    frames: list[int]  # the driver frames picked
    driver: VowelShape  # the driver's own lips there (medians)
    output: VowelShape  # the character's re-tracked lips (medians)


def pick_vowel_frames(lips: np.ndarray, neutral_width: float) -> dict[str, list[int]]:
    """{class: frame indices} from a driver's (n, 2) inner-lip (width, gap), inter-ocular units."""
    ratio, gap = lips[:, 0] / max(neutral_width, 1e-6), lips[:, 1]
    ok = np.isfinite(ratio) & np.isfinite(gap)
    opened = ok & (gap >= OPEN_MIN)
    out = {}
    a = np.flatnonzero(opened & (ratio > ROUND_MAX) & (ratio < SPREAD_MIN))
    out["A"] = a[np.argsort(-gap[a])][:PICK].tolist()  # the widest open
    r = np.flatnonzero(opened & (ratio <= ROUND_MAX))
    out["O/U"] = r[np.argsort(ratio[r])][:PICK].tolist()  # the most rounded
    sp = np.flatnonzero(ok & (gap >= SPREAD_OPEN) & (ratio >= SPREAD_MIN))
    out["I/E"] = sp[np.argsort(-ratio[sp])][:PICK].tolist()  # the most spread
    return out


def driver_vowel_frames(states: list, neutrals: list) -> dict[str, list[int]]:
    """{"A" | "O/U" | "I/E": frame indices, best first} of a tracked driver (`fidelity.track_driver`),
    chosen by the shape of the person's own inner lips against their first neutral's width."""
    lips = np.array([_measure(s.landmarks) if s.landmarks is not None else (np.nan, np.nan) for s in states])
    first = next((n for n in neutrals if n is not None and n.landmarks is not None), states[0])
    if first.landmarks is None:  # a clip with no face has no vowel to pick
        return {}
    return pick_vowel_frames(lips, _measure(first.landmarks)[0])


def camera_vowel_shapes(
    character: str | Path,
    driver: str | Path,
    size: int = 512,
    tracked: tuple[list, list] | None = None,
    options: RetargetOptions | None = None,
) -> list[CameraVowel]:
    """The re-tracked mouth of `character` driven by the frames of the clip `driver` where the
    person's mouth is A-, O/U- and I/E-shaped (`pick_vowel_frames`), each frame held still.
    `tracked`: the clip's (states, neutrals) from `fidelity.track_driver`, if already tracked."""
    from worker.characters.preprocess import PreprocessSettings, preprocess_image
    from worker.render import create_renderer
    from worker.render.base import FrameInput
    from worker.retarget import Retargeter
    from worker.tools.fidelity import flatten, track_driver
    from worker.track.mediapipe_tracker import FaceTracker

    states, neutrals = tracked or track_driver(Path(driver))
    lips = np.array([_measure(s.landmarks) if s.landmarks is not None else (np.nan, np.nan) for s in states])
    first = next((n for n in neutrals if n is not None and n.landmarks is not None), states[0])
    picks = driver_vowel_frames(states, neutrals)
    assets = preprocess_image(character, PreprocessSettings(size=size))
    renderer = create_renderer("meshwarp", size=size)
    out = []
    try:
        for label, idx in picks.items():
            if not idx:
                continue
            seen = []
            for i in idx:
                r = Retargeter(assets, options or RetargetOptions(idle=False))
                neutral = neutrals[i] or first
                for k in range(HOLD):
                    pose = r.retarget(replace(states[i], timestamp=k / 30.0), neutral)
                rgba = renderer.draw(assets, FrameInput.of_pose(pose))
                with FaceTracker(smoothing=False) as tracker:
                    m = tracker.measure(flatten(rgba), 0.0)
                if m.found:
                    seen.append(_measure(np.asarray(m.landmarks, np.float64)))
            if seen:
                d, o = np.median(lips[idx], 0), np.median(np.array(seen), 0)
                out.append(CameraVowel(label, idx, VowelShape(label, *d), VowelShape(label, *o)))
    finally:
        renderer.close()
    return out


@dataclass
class PairedVowel:
    vowel: str
    voice: VowelShape  # the voice path's re-tracked mouth
    camera: VowelShape  # the camera path's, from a driver whose mouth makes the vowel's shape


def paired_vowel_shapes(character: str | Path, neutral: FaceState, size: int = 512) -> list[PairedVowel]:
    """Each vowel from the voice and from a camera whose driver makes that vowel's mouth.

    The driver is a real person's tracked neutral face (`neutral`) with the lips moved to the
    vowel's shape (`lipsync.VOWEL_SHAPES`: a person's mouth, without the drawn rounding; the inner
    gap the vowel's, so a neutral mouth a little open opens by that much less), held
    until the retargeting's filters settle; both are drawn and re-tracked alike. The same vowel
    must read the same whichever path it came by.
    """
    from worker.characters.preprocess import PreprocessSettings, preprocess_image
    from worker.render import create_renderer
    from worker.render.base import FrameInput
    from worker.retarget import Retargeter
    from worker.retarget.lipsync import VoiceMouth, shape_of
    from worker.tools.fidelity import flatten
    from worker.track.mediapipe_tracker import FaceTracker

    assert neutral.landmarks is not None  # a neutral with no face has no mouth to shape
    n = np.asarray(neutral.landmarks, np.float64)
    centre, roll, iod = G.canonical_frame(n)
    person = VoiceMouth(n, round_gain=0.0)  # the vowel as a mouth makes it
    n_gap = G.mouth_gap(n) / iod  # a neutral mouth a little open already
    assets = preprocess_image(character, PreprocessSettings(size=size))
    renderer = create_renderer("meshwarp", size=size)

    def seen(pose) -> VowelShape:
        rgba = renderer.draw(assets, FrameInput.of_pose(pose))
        with FaceTracker(smoothing=False) as tracker:
            m = tracker.measure(flatten(rgba), 0.0)
        if not m.found:
            raise RuntimeError(f"{vowel}: no face found in the rendered picture")
        return VowelShape(vowel, *_measure(np.asarray(m.landmarks, np.float64)))

    out = []
    try:
        for vowel in VOWELS:
            w = np.zeros(len(VOWELS), np.float32)
            w[VOWELS.index(vowel)] = 1.0
            sig = MouthSignal(openness=1.0, weights=w, voiced=True)
            r = Retargeter(assets, RetargetOptions(lipsync="always", idle=False))
            voice = seen(r.retarget(FaceState(found=False, timestamp=1.0), None, sig))
            e = person.expression(sig)
            gap = shape_of(sig)[0]  # the vowel's inner gap: what the person's lips open to from shut
            e[:, 1] *= max(gap - n_gap, 0.0) / gap
            face = n + (e @ G.rot_z(roll).T) * iod  # canonical -> the driver's picture
            r = Retargeter(assets, RetargetOptions(idle=False))
            for k in range(HOLD):
                pose = r.retarget(replace(neutral, landmarks=face.astype(np.float32), timestamp=k / 30.0), neutral)
            out.append(PairedVowel(vowel, voice, seen(pose)))
    finally:
        renderer.close()
    return out


def format_paired(shapes: list[PairedVowel]) -> str:
    by = {s.vowel: s for s in shapes}
    a = by.get("A")
    lines = [f"{'vowel':6} {'voice w/h/w:A':>16}  {'camera w/h/w:A':>16}"]
    for s in shapes:
        vw = s.voice.width / a.voice.width if a else float("nan")
        cw = s.camera.width / a.camera.width if a else float("nan")
        lines.append(
            f"{s.vowel:6} {s.voice.width:5.3f} {s.voice.height:5.3f} {vw:4.2f}  "
            f"{s.camera.width:5.3f} {s.camera.height:5.3f} {cw:4.2f}"
        )
    return "\n".join(lines)


def format_camera(shapes: list[CameraVowel]) -> str:
    by = {s.label: s for s in shapes}
    a = by.get("A")
    lines = [f"{'class':6} {'frames':>22}  {'driver w/h/w:A':>16}  {'output w/h/w:A':>16}"]
    for s in shapes:
        dw = s.driver.width / a.driver.width if a else float("nan")
        ow = s.output.width / a.output.width if a else float("nan")
        lines.append(
            f"{s.label:6} {','.join(map(str, s.frames)):>22}  "
            f"{s.driver.width:5.3f} {s.driver.height:5.3f} {dw:4.2f}  "
            f"{s.output.width:5.3f} {s.output.height:5.3f} {ow:4.2f}"
        )
    return "\n".join(lines)


def format_shapes(shapes: list[VowelShape]) -> str:
    lines = [f"{'vowel':6} {'width':>6} {'height':>6} {'h/w':>5}"]
    lines += [f"{s.vowel:6} {s.width:6.3f} {s.height:6.3f} {s.roundness:5.2f}" for s in shapes]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from worker.paths import DEMO_CHARACTER

    ap = argparse.ArgumentParser(prog="python -m worker.tools.vowel_shapes", description=__doc__.split("\n\n")[0])
    ap.add_argument("--character", default=str(DEMO_CHARACTER))
    ap.add_argument(
        "--camera",
        default="",
        help="driving clips (names in the shared test footage, or paths) for the camera path, e.g. d12,d6",
    )
    a = ap.parse_args(argv)
    print("voice path (inner lips, inter-ocular units):")
    print(format_shapes(vowel_shapes(a.character)))
    for d in filter(None, a.camera.split(",")):
        from worker.tools.fidelity import track_driver

        tracked = track_driver(_driver_path(d))
        print(f"\ncamera path, driver {d} (width, height, width over A's):")
        print(format_camera(camera_vowel_shapes(a.character, _driver_path(d), tracked=tracked)))
        print(f"\nthe same vowel by voice and by camera ({d}'s neutral face with the vowel's mouth):")
        print(format_paired(paired_vowel_shapes(a.character, driver_neutral(tracked))))
    return 0


def driver_neutral(tracked: tuple[list, list]) -> FaceState:
    """The first calibrated neutral of a tracked clip (`fidelity.track_driver`), else its first face."""
    states, neutrals = tracked
    n = next((n for n in neutrals if n is not None and n.landmarks is not None), None)
    n = n or next(s for s in states if s.landmarks is not None)
    return n


def _driver_path(name: str) -> Path:
    """A clip of the shared test footage by name (d12), or a path."""
    from worker.paths import shared_testdata

    p = Path(name)
    if p.suffix or p.exists():
        return p
    root = shared_testdata()
    if root is None:
        raise SystemExit(f"--camera {name}: shared test data not found (footage/driving); give a path")
    return root / "footage" / "driving" / f"{name}.mp4"


if __name__ == "__main__":
    raise SystemExit(main())
