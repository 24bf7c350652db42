"""Where a pair's re-tracked head roll is lost: the drawing or the second tracker's reading of it.

For each driver x character pair the whole pipeline is run three ways and re-tracked by
MediaPipe (as `worker.tools.fidelity` does), and the roll r against the driver is printed:

* `full`: as rendered (the fidelity table's roll r);
* `head`: expressions off (`RetargetOptions.expression_strength = 0`): the same head motion
  with the face as drawn, lids open;
* `rigid`: the unchanged picture turned rigidly in the picture plane by the driver's eye-line
  angle, frame by frame: what the tracker reads of a pure tilt of that picture.

And per character, `blink`: the head held still, both eyes closing and opening, the shift of
the re-tracked eye line (degrees, shut minus open) though nothing tilts: the drawn corners
stay where they are.

`python -m worker.tools.roll_reading --drivers d3,d9 --characters s9,s10`
"""

from __future__ import annotations

import argparse
import math
from dataclasses import replace
from pathlib import Path

import numpy as np

from worker.characters.assets import CharacterAssets
from worker.retarget import geometry
from worker.retarget.retargeter import Retargeter, RetargetOptions
from worker.tools import fidelity
from worker.track import landmark_ids as L
from worker.track.face_state import FaceState


def rigid_roll(assets: CharacterAssets, rolls: list[float], fps: float = 30.0) -> np.ndarray:
    """The re-tracked roll (degrees, NaN where no face) of the unchanged picture turned rigidly
    about its head by each of `rolls` (degrees, clockwise on screen as our roll is)."""
    import cv2

    from worker.track.mediapipe_tracker import FaceTracker

    out = fidelity.Signals()
    img = fidelity.flatten(assets.image)
    centre = tuple(float(v) for v in np.asarray(assets.landmarks)[L.SKULL, :2].mean(0))
    n = img.shape[0]
    with FaceTracker(smoothing=False) as tracker:
        for i, roll in enumerate(rolls):
            # OpenCV's angle turns counter-clockwise on screen
            m = cv2.getRotationMatrix2D(centre, -roll if math.isfinite(roll) else 0.0, 1.0)
            turned = cv2.warpAffine(img, m, (n, n), flags=cv2.INTER_LINEAR, borderValue=(128, 128, 128))
            res = tracker.measure(turned, i / fps)
            out.add(res.landmarks if res.found else None)
    return np.asarray(out.roll)


def rigid_roll_r(assets: CharacterAssets, states: list[FaceState]) -> float:
    """Roll r of the picture turned rigidly by the driver's eye-line angle, against the driver's."""
    drv = fidelity.Signals()
    for s in states:
        drv.add(s.landmarks if s.found else None)
    ref = float(np.nanmedian(drv.roll))
    return fidelity._pearson(drv.roll, list(rigid_roll(assets, [r - ref for r in drv.roll])))


def blink_shift(assets: CharacterAssets, frames: int = 120, period: int = 40) -> float:
    """Degrees the re-tracked eye line turns when the still character shuts both eyes (shut - open)."""
    from worker.render import create_renderer
    from worker.render.base import FrameInput
    from worker.track.mediapipe_tracker import FaceTracker

    rt = Retargeter(assets, RetargetOptions(idle=False))
    renderer = create_renderer("meshwarp", size=assets.size)
    openness, roll = [], []
    with FaceTracker(smoothing=False) as tracker:
        for i in range(frames):
            o = 0.5 + 0.5 * math.cos(2 * math.pi * i / period)
            pose = rt.neutral_pose(i / 30.0)
            pts = pose.landmarks.astype(np.float64)
            for left in (True, False):
                rt.eyes[left].apply(pts, pts, o, np.zeros(2))
            pose = replace(pose, landmarks=pts.astype(np.float32), eye_close_left=1 - o, eye_close_right=1 - o)
            res = tracker.measure(fidelity.flatten(renderer.draw(assets, FrameInput.of_pose(pose))), i / 30.0)
            if i >= period // 2 and res.found:  # after the first closing: the tracker has settled
                openness.append(o)
                roll.append(geometry.head_angles(np.asarray(res.landmarks, np.float64))[2])
    o_, r_ = np.asarray(openness), np.asarray(roll)
    return float(r_[o_ < 0.1].mean() - r_[o_ > 0.9].mean())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m worker.tools.roll_reading", description=__doc__.split("\n\n")[0])
    ap.add_argument("--drivers", default="d3,d9")
    ap.add_argument("--characters", default="s9,s10")
    ap.add_argument("--max-frames", type=int, default=None)
    a = ap.parse_args(argv)
    from worker.paths import shared_testdata

    root = shared_testdata()
    if root is None:
        raise SystemExit("shared test data not found (footage/driving, footage/portraits)")
    chars = {c: fidelity.portrait_character(c, root) for c in a.characters.split(",")}
    print(f"{'pair':10} {'full':>6} {'head':>6} {'rigid':>6}")
    for d in a.drivers.split(","):
        states, neutrals = fidelity.track_driver(Path(root) / "footage" / "driving" / f"{d}.mp4", a.max_frames)
        for c, assets in chars.items():
            full = fidelity.run_pair(d, states, neutrals, assets).roll_r
            head = fidelity.run_pair(
                d, states, neutrals, assets, RetargetOptions(idle=False, expression_strength=0)
            ).roll_r
            rigid = rigid_roll_r(assets, states)
            print(f"{d + 'x' + c:10} {_f(full)} {_f(head)} {_f(rigid)}", flush=True)
    for c, assets in chars.items():
        print(f"{c}: a still head's blink turns the re-tracked eye line by {blink_shift(assets):+.2f} degrees")
    return 0


def _f(v: float | None) -> str:
    return "  -   " if v is None else f"{v:6.3f}"


if __name__ == "__main__":
    raise SystemExit(main())
