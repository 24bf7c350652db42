"""Draw the bundled non-human sample character: a fox mascot, with its face marks.

The project's own picture (drawn here with OpenCV, nothing downloaded): a cartoon fox with big
ears, large eyes and a muzzle on a plain background, the kind of character the human face
tracker cannot read. It is saved as an opaque PNG (no alpha) so the figure cut-out has work to
do, beside `fox.face.json`, the marks this drawing's own geometry gives. Regenerate with
`python -m worker.tools.make_mascot` (deterministic: the same bytes every time).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from worker.paths import ASSETS_DIR

MASCOT_DIR = ASSETS_DIR / "mascots"
MASCOT = MASCOT_DIR / "fox.png"
SIZE = 640
SS = 4  # supersampling: drawn at 4x, shrunk with area averaging (smooth edges)

ORANGE = (226, 120, 44)
DARK_ORANGE = (176, 82, 30)
CREAM = (250, 238, 222)
INK = (46, 30, 28)
EAR_IN = (120, 60, 52)
IRIS = (92, 60, 34)


def _pt(x: float, y: float) -> tuple[int, int]:
    return int(round(x * SS)), int(round(y * SS))


def _ellipse(img, c, axes, colour, angle=0.0, thickness=-1) -> None:
    cv2.ellipse(
        img,
        _pt(*c),
        (int(axes[0] * SS), int(axes[1] * SS)),
        angle,
        0,
        360,
        colour,
        thickness if thickness < 0 else thickness * SS,
        cv2.LINE_AA,
    )


def _poly(img, pts, colour, thickness=-1) -> None:
    p = np.array([_pt(*q) for q in pts], np.int32)
    if thickness < 0:
        cv2.fillPoly(img, [p], colour, cv2.LINE_AA)
    else:
        cv2.polylines(img, [p], False, colour, thickness * SS, cv2.LINE_AA)


def draw_fox() -> tuple[np.ndarray, dict]:
    """(RGB uint8 picture, its face marks as the sidecar's JSON)."""
    n = SIZE * SS
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32) / n
    img = np.empty((n, n, 3), np.uint8)  # a soft blue-green backdrop, lighter at the top
    for ch, (top, bottom) in enumerate(((168, 120), (214, 186), (222, 200))):
        img[..., ch] = (top + (bottom - top) * yy + 6 * np.sin(9 * xx)).astype(np.uint8)
    cx = SIZE / 2
    # body: shoulders and a cream chest
    _ellipse(img, (cx, 610), (200, 180), DARK_ORANGE)
    _ellipse(img, (cx, 640), (92, 150), CREAM)
    # ears (behind the head), with dark tips and darker insides
    for s in (-1, 1):
        ear = [(cx + s * 70, 200), (cx + s * 190, 50), (cx + s * 200, 235)]
        _poly(img, ear, ORANGE)
        _poly(img, [(cx + s * 110, 205), (cx + s * 182, 92), (cx + s * 182, 225)], EAR_IN)
        _poly(img, [(cx + s * 172, 86), (cx + s * 190, 50), (cx + s * 196, 112)], INK)
    # head with cheek tufts, cream lower face
    _ellipse(img, (cx, 300), (170, 150), ORANGE)
    for s in (-1, 1):
        _poly(img, [(cx + s * 120, 330), (cx + s * 205, 385), (cx + s * 110, 410)], ORANGE)
        _poly(img, [(cx + s * 120, 350), (cx + s * 190, 388), (cx + s * 108, 405)], CREAM)
    _ellipse(img, (cx, 372), (112, 72), CREAM)
    _ellipse(img, (cx, 318), (40, 60), CREAM)
    # eyes: white, a large iris, a pupil and a highlight, with a dark rim
    eyes = {"left_eye": cx - 68, "right_eye": cx + 68}
    ey, erx, ery = 282, 34, 40
    for x in eyes.values():
        _ellipse(img, (x, ey), (erx + 4, ery + 4), INK)
        _ellipse(img, (x, ey), (erx, ery), (252, 252, 250))
        _ellipse(img, (x + 3, ey + 6), (21, 26), IRIS)
        _ellipse(img, (x + 3, ey + 8), (11, 14), (16, 12, 12))
        _ellipse(img, (x + 11, ey - 4), (6, 6), (255, 255, 255))
    # nose, and the muzzle's mouth line: a small "w" under the nose
    nose = (cx, 352)
    _ellipse(img, nose, (22, 14), INK)
    _ellipse(img, (cx - 6, 347), (7, 4), (110, 100, 100))
    _poly(img, [(cx, 366), (cx, 384)], INK, 3)
    _poly(img, [(cx - 38, 386), (cx - 20, 395), (cx, 384), (cx + 20, 395), (cx + 38, 386)], INK, 3)
    # a little fur texture (seeded: the same picture every time)
    rng = np.random.default_rng(7)
    small = cv2.resize(img, (SIZE, SIZE), interpolation=cv2.INTER_AREA).astype(np.float32)
    grain = cv2.GaussianBlur(rng.normal(0, 1, (SIZE, SIZE)).astype(np.float32), (0, 0), 1.2)
    small += grain[..., None] * 5.0
    rgb = np.clip(small + 0.5, 0, 255).astype(np.uint8)
    marks = {
        "left_eye": [eyes["left_eye"], ey],
        "right_eye": [eyes["right_eye"], ey],
        "left_eye_top": [eyes["left_eye"], ey - ery],
        "left_eye_bottom": [eyes["left_eye"], ey + ery],
        "right_eye_top": [eyes["right_eye"], ey - ery],
        "right_eye_bottom": [eyes["right_eye"], ey + ery],
        "nose": list(nose),
        "mouth_left": [cx - 38, 388],
        "mouth_right": [cx + 38, 388],
        "chin": [cx, 440],
        "left_ear": [cx - 190, 50],
        "right_ear": [cx + 190, 50],
        "kind": "animal",
    }
    return rgb, marks


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=path.suffix)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def main() -> None:
    MASCOT_DIR.mkdir(parents=True, exist_ok=True)
    rgb, marks = draw_fox()
    ok, png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    assert ok
    _write_atomic(MASCOT, png.tobytes())
    _write_atomic(MASCOT.with_name("fox.face.json"), (json.dumps(marks, indent=1) + "\n").encode())
    print(f"wrote {MASCOT} and {MASCOT.with_name('fox.face.json')}")


if __name__ == "__main__":
    main()
