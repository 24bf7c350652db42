"""Each vowel's mouth as a viewer sees it: rendered from the voice, measured by re-tracking.

For every vowel the character is drawn with the voice mouth fully open on that vowel alone (no
speech synthesis: the shape the analysis would ask for at its widest), MediaPipe tracks the
rendered picture, and the inner lips' width (corner to corner) and height (the central gap) are
read in inter-ocular distances. The camera's mouth takes the same path from the driver's lips,
so this is the shape table the voice and the camera share (`lipsync.VOWEL_SHAPES`).

`python -m worker.tools.vowel_shapes [--character IMG]` prints the table.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from worker.retarget import geometry as G
from worker.retarget.mouth_signal import VOWELS, MouthSignal
from worker.track import landmark_ids as L


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
    from worker.track.face_state import FaceState
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


def format_shapes(shapes: list[VowelShape]) -> str:
    lines = [f"{'vowel':6} {'width':>6} {'height':>6} {'h/w':>5}"]
    lines += [f"{s.vowel:6} {s.width:6.3f} {s.height:6.3f} {s.roundness:5.2f}" for s in shapes]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from worker.paths import DEMO_CHARACTER

    ap = argparse.ArgumentParser(prog="python -m worker.tools.vowel_shapes", description=__doc__.split("\n\n")[0])
    ap.add_argument("--character", default=str(DEMO_CHARACTER))
    a = ap.parse_args(argv)
    print(format_shapes(vowel_shapes(a.character)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
