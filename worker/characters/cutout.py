"""Keep one person in the cut-out: other faces in the picture (and their hair) are made transparent.

A picture with two faces animates the largest; without this, the segmentation matte keeps the
other head too, and it would sit half-cropped beside the character, frozen.
"""

from __future__ import annotations

import cv2
import numpy as np

from worker.track import landmark_ids as L

Box = tuple[float, float, float, float]


def erase_other_faces(alpha: np.ndarray, boxes: list[Box], main: Box, m: np.ndarray, landmarks: np.ndarray) -> int:
    """Zero `alpha` (the crop's, in place) over every face of `boxes` (source pixels) but `main`,
    grown to take in hair, never over the animated face (`landmarks`, crop pixels). `m` maps
    source to crop pixels. Returns how many faces were erased."""
    n = alpha.shape[0]
    keep = np.zeros(alpha.shape, np.uint8)
    hull = cv2.convexHull(landmarks[L.FACE_OVAL, :2].astype(np.float32)).astype(np.int32)
    cv2.fillConvexPoly(keep, hull, 255)
    face = float(np.ptp(landmarks[:, 1]))
    grow = max(3, int(0.15 * face))
    keep = cv2.dilate(keep, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
    mx, my = (main[0] + main[2]) / 2, (main[1] + main[3]) / 2
    erased = 0
    for x0, y0, x1, y1 in boxes:
        if x0 <= mx <= x1 and y0 <= my <= y1:  # the animated face itself
            continue
        w, h = x1 - x0, y1 - y0
        corners = np.array([[x0 - 0.45 * w, y0 - 0.7 * h], [x1 + 0.45 * w, y1 + 0.35 * h]], np.float64)
        (cx0, cy0), (cx1, cy1) = corners @ m[:, :2].T + m[:, 2]
        ix0, iy0 = max(0, int(cx0)), max(0, int(cy0))
        ix1, iy1 = min(n, int(np.ceil(cx1))), min(n, int(np.ceil(cy1)))
        if ix1 <= ix0 or iy1 <= iy0:
            continue  # outside the crop
        region = alpha[iy0:iy1, ix0:ix1]
        region[keep[iy0:iy1, ix0:ix1] == 0] = 0
        erased += 1
    return erased
