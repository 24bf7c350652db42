"""Cut out the whole figure of a non-human character: OpenCV's GrabCut, seeded from the face.

The person-segmentation model knows people only: on a fox it keeps an oval around the face and
drops the ears and body. GrabCut instead learns the colours of the figure and of the backdrop
from seeds: the marked face (its oval, grown a little, and the ear tips when marked) is surely
figure, a band along the picture's top and sides is surely backdrop (not the bottom: a figure
is usually cut off there), everything else is left to the colour models and the graph cut. It
runs at most WORK_PX wide (a few tens of ms); the mask is scaled back up and its edge feathered.
"""

from __future__ import annotations

import cv2
import numpy as np

from worker.track import landmark_ids as L

WORK_PX = 256  # GrabCut's working size (its cost grows with the pixel count)
ITERATIONS = 5
BORDER = 0.03  # share of the side taken as surely backdrop along each edge


def figure_alpha(
    rgb: np.ndarray, landmarks: np.ndarray, extra_fg: np.ndarray | None = None, inside: np.ndarray | None = None
) -> np.ndarray:
    """(h, w) uint8 alpha of the figure in `rgb` whose face has `landmarks` (478, >=2, pixels).

    `extra_fg` are more points surely on the figure (ear tips), `inside` the part of `rgb` that
    shows the picture at all (a crop that ran past its edge): outside it is surely backdrop.
    """
    h, w = rgb.shape[:2]
    s = min(1.0, WORK_PX / max(h, w))
    small = cv2.resize(rgb, (max(8, round(w * s)), max(8, round(h * s))), interpolation=cv2.INTER_AREA)
    sh, sw = small.shape[:2]
    mask = np.full((sh, sw), cv2.GC_PR_BGD, np.uint8)
    lm = np.asarray(landmarks, np.float64)[:, :2] * s
    iod = float(np.linalg.norm(lm[L.LEFT_IRIS_CENTER] - lm[L.RIGHT_IRIS_CENTER]))
    # around the face the figure is likely (head, ears, shoulders): probable foreground
    c = lm[list(L.FACE_OVAL)].mean(0)
    cv2.ellipse(mask, _ipt(c), (int(2.2 * iod), int(3.2 * iod)), 0, 0, 360, int(cv2.GC_PR_FGD), -1)
    x0, x1 = int(c[0] - 2.5 * iod), int(c[0] + 2.5 * iod)  # ... and the body below it
    mask[int(c[1]) :, max(x0, 0) : max(x1, 0)] = cv2.GC_PR_FGD
    # the face itself: surely figure (the oval, grown by a tenth of the eye distance)
    face = np.zeros_like(mask)
    cv2.fillConvexPoly(face, cv2.convexHull(lm[list(L.FACE_OVAL)].astype(np.float32)).astype(np.int32), 1)
    g = max(1, int(0.1 * iod))
    face = cv2.dilate(face, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * g + 1, 2 * g + 1)))
    mask[face > 0] = cv2.GC_FGD
    if extra_fg is not None:
        for p in np.asarray(extra_fg, np.float64).reshape(-1, 2) * s:
            q = p + (c - p) * 0.12  # a little inside the tip: the tip itself is an edge
            cv2.circle(mask, _ipt(q), max(1, int(0.06 * iod)), int(cv2.GC_FGD), -1)
    b = max(1, int(BORDER * max(sh, sw)))
    keep_fg = mask == cv2.GC_FGD
    # the top and the sides are backdrop; the bottom edge often cuts through the body: left open
    mask[:b], mask[:, :b], mask[:, -b:] = (cv2.GC_BGD,) * 3
    mask[keep_fg] = cv2.GC_FGD  # a face running off the picture stays figure
    if inside is not None:
        out = cv2.resize(inside, (sw, sh), interpolation=cv2.INTER_AREA) < 128
        mask[out & ~keep_fg] = cv2.GC_BGD
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(np.ascontiguousarray(small), mask, None, bgd, fgd, ITERATIONS, cv2.GC_INIT_WITH_MASK)
    fg = ((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)).astype(np.uint8)
    fg = _largest_with_face(fg, face)
    alpha = cv2.resize(fg * 255, (w, h), interpolation=cv2.INTER_LINEAR)
    feather = max(0.6, 0.6 / s)
    alpha = cv2.GaussianBlur(alpha, (0, 0), feather)
    # sharpen back to a thin soft edge
    a = np.clip((alpha.astype(np.float32) - 64.0) * (255.0 / 128.0), 0, 255)
    if inside is not None:
        a = np.minimum(a, inside.astype(np.float32))
    return (a + 0.5).astype(np.uint8)


def _largest_with_face(fg: np.ndarray, face: np.ndarray) -> np.ndarray:
    """Only the connected parts of `fg` that touch the face (specks of backdrop are dropped)."""
    n, labels = cv2.connectedComponents(fg, connectivity=8)
    if n <= 2:
        return fg
    keep = np.unique(labels[(face > 0) & (fg > 0)])
    keep = keep[keep > 0]
    out = np.isin(labels, keep).astype(np.uint8)
    # fill holes inside the figure (an eye's white read as backdrop)
    inv = (1 - out).astype(np.uint8)
    n2, lab2 = cv2.connectedComponents(inv, connectivity=4)
    border = np.unique(np.concatenate([lab2[0], lab2[-1], lab2[:, 0], lab2[:, -1]]))
    out[(inv > 0) & ~np.isin(lab2, border)] = 1
    return out


def _ipt(p: np.ndarray) -> tuple[int, int]:
    return int(round(float(p[0]))), int(round(float(p[1])))
