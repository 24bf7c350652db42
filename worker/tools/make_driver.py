"""Make the demo's assets: a painted cut-out character and a driving clip, both from the astronaut.

The clip is ours: it is rendered by our own mesh-warp renderer from the public-domain sample
character, driven not by footage but by the script below (blinks, a head turn, a nod, a tilt,
talking, closed eyes). Run `python -m worker.tools.make_driver` to rebuild it after renderer
changes; the demo and the tests then track it like any webcam footage.

The demo's default character, `astronaut_toon.png`, is the same photograph turned into a
posterised painting with a transparent background (our own segmentation matte), so the demo
shows a non-photographic character with alpha being driven by a real-looking face.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from worker.characters.preprocess import preprocess_image
from worker.output.file import FileOutput
from worker.paths import DEMO_CHARACTER, SAMPLE_CHARACTER, SAMPLE_DRIVER
from worker.render import create_renderer
from worker.render.base import FrameInput
from worker.retarget.pose import TargetPose
from worker.track import landmark_ids as L
from worker.track.features import inter_ocular

FPS = 25
SECONDS = 9.0


def _bump(t: float, start: float, length: float) -> float:
    """0 -> 1 -> 0 over [start, start + length] (a smooth blink or mouth movement)."""
    u = (t - start) / length
    return math.sin(math.pi * u) ** 2 if 0.0 <= u <= 1.0 else 0.0


def script(t: float) -> dict[str, float]:
    """The performance at time `t` seconds: angles in degrees, mouth in IOD units, lids 0..1."""
    yaw = 22 * math.sin(2 * math.pi * (t - 1.6) / 2.4) if 1.6 <= t <= 4.0 else 0.0
    pitch = 12 * math.sin(2 * math.pi * (t - 4.0) / 1.2) if 4.0 <= t <= 5.2 else 0.0
    roll = 14 * math.sin(math.pi * (t - 5.2) / 1.2) if 5.2 <= t <= 6.4 else 0.0
    blink = max(_bump(t, 1.0, 0.28), _bump(t, 3.4, 0.28), _bump(t, 6.6, 0.28))
    closed = (
        1.0 if 8.0 <= t <= 8.5 else max(_bump(t, 7.7, 0.6) if t < 8.0 else 0.0, _bump(t, 8.2, 0.6) if t > 8.5 else 0.0)
    )
    talk = 0.0
    if 6.4 <= t <= 7.8:  # syllables at ~4 Hz with varying depth
        talk = 0.32 * abs(math.sin(2 * math.pi * 2.1 * (t - 6.4))) * (0.6 + 0.4 * math.sin(5.0 * t))
    ah = 0.45 * _bump(t, 0.3, 0.7)
    return {"yaw": yaw, "pitch": pitch, "roll": roll, "eyes": max(blink, closed), "mouth": max(talk, ah)}


def rotation(pitch: float, yaw: float, roll: float) -> np.ndarray:
    p, y, r = (math.radians(v) for v in (pitch, yaw, roll))
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return rz @ ry @ rx


def pose_at(lm0: np.ndarray, t: float) -> TargetPose:
    s = script(t)
    lm = lm0.astype(np.float64).copy()
    iod = inter_ocular(lm0)
    # mouth: the lower lip and jaw drop, most at the middle of the mouth, less towards the corners
    corners = lm0[[L.MOUTH_RIGHT_CORNER, L.MOUTH_LEFT_CORNER], :2].astype(np.float64)
    yc, xc = corners[:, 1].mean(), corners[:, 0].mean()
    half_w = abs(corners[1, 0] - corners[0, 0]) / 2
    chin_y = lm0[L.CHIN, 1]
    below = lm[:, 1] > yc
    depth = np.clip((lm[:, 1] - yc) / max(chin_y - yc, 1.0), 0.0, 1.0)
    across = np.clip(1.0 - np.abs(lm[:, 0] - xc) / (2.2 * half_w), 0.0, 1.0)
    w = np.where(below, np.maximum(depth, 0.35) ** 0.5 * across, 0.0)
    lower = list(L.LIPS_INNER_LOWER[1:-1]) + list(L.LIPS_OUTER_LOWER[1:-1])
    w[lower] = np.clip(1.0 - np.abs(lm[lower, 0] - xc) / (1.15 * half_w), 0.15, 1.0)
    lm[:, 1] += s["mouth"] * iod * w
    upper_inner = list(L.LIPS_INNER_UPPER[1:-1])
    lm[upper_inner, 1] -= 0.08 * s["mouth"] * iod * w[lower[: len(upper_inner)]]
    # eyelids: the upper lid comes down to where the lower lid is
    for up, lo in ((L.RIGHT_EYE_UPPER, L.RIGHT_EYE_LOWER), (L.LEFT_EYE_UPPER, L.LEFT_EYE_LOWER)):
        upper_lid, lower_lid = list(up[1:-1]), list(lo[1:-1])
        target = lm[upper_lid, 1] * 0.2 + lm[lower_lid, 1] * 0.8
        lm[upper_lid, 1] += s["eyes"] * (target - lm[upper_lid, 1])
    # head: rotate the 3-D points about a pivot inside the head
    centre = lm0.mean(axis=0).astype(np.float64) + np.array([0.0, 0.3 * iod, 0.9 * iod])
    r = rotation(s["pitch"], s["yaw"], s["roll"])
    lm = (lm - centre) @ r.T + centre
    head = np.hstack([r, (centre - r @ centre)[:, None]]).astype(np.float32)
    return TargetPose(
        landmarks=lm.astype(np.float32),
        head_matrix=head,
        mouth_open=s["mouth"],
        eye_close_left=s["eyes"],
        eye_close_right=s["eyes"],
        yaw=s["yaw"],
        pitch=s["pitch"],
        roll=s["roll"],
        timestamp=t,
    )


def make(out: Path = SAMPLE_DRIVER, size: int = 384, background=(196, 204, 214)) -> Path:
    assets = preprocess_image(SAMPLE_CHARACTER)
    renderer = create_renderer("meshwarp", size=assets.size)
    import cv2

    writer = FileOutput(out, fps=FPS, background=background, timing="fps", realtime=False)
    writer.start()
    for i in range(int(SECONDS * FPS)):
        t = i / FPS
        rgba = renderer.draw(assets, FrameInput.of_pose(pose_at(assets.landmarks, t)))
        if size != assets.size:
            rgba = cv2.resize(rgba, (size, size), interpolation=cv2.INTER_AREA)
        writer.send(np.ascontiguousarray(rgba), i, t)
    writer.close()
    return out


def make_toon(out: Path = DEMO_CHARACTER) -> Path:
    """A posterised, edge-preserving painting of the astronaut, cut out with our matte (RGBA PNG).

    The cut-out is the one a photo gets (`refine_cutout`: edges re-fitted to the painting, edge
    colours without the old background): the coarse matte alone left a light rim of the old
    background around the figure. Only the picture changes: the driving clip is made from the
    photograph itself (`make`).
    """
    import cv2

    from worker.characters.face_finder import shared_finder
    from worker.characters.matte import refine_cutout
    from worker.characters.preprocess import matte

    bgr = cv2.imread(str(SAMPLE_CHARACTER))
    # flat painted areas without the photo's texture, a few tones per channel
    toon = cv2.edgePreservingFilter(bgr, flags=cv2.RECURS_FILTER, sigma_s=40, sigma_r=0.3)
    toon = (np.round(toon.astype(np.float32) / 20) * 20).clip(0, 255).astype(np.uint8)
    toon = cv2.bilateralFilter(toon, 7, 30, 7)
    rgb = cv2.cvtColor(toon, cv2.COLOR_BGR2RGB)
    lm = shared_finder().mesh(rgb)
    if lm is None:
        raise RuntimeError("no face in the stylised astronaut")
    rgba = refine_cutout(rgb, matte(rgb, lm), lm)
    cv2.imwrite(str(out), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=SAMPLE_DRIVER)
    print(make_toon())
    print(make(ap.parse_args().out))
