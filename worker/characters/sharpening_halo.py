"""The dark (or light) line a sharpened photo draws just inside a figure's edge, taken out of a cut-out.

Sharpening (an unsharp mask, in a camera or an editor) steepens every edge by pushing each side
away from the other: against a light wall a figure gets a dark line 1-2 px inside its edge, and the
wall a light line beside it (s6, a photo of a terracotta statue: luma 122 a few px in, 87 one px
in, the wall 236 rising to 248 next to the figure). The line belongs to the old background, not the
figure: over a new scene it shows as a dark rim the statue does not have. Drawn outlines and real
dark contours have no such partner on the background's side, and keep theirs.

`lift_sharpening_halo` finds the partner (the background just outside the cut lighter, or darker,
than the background a few px further out) and moves the lightness of each edge pixel of the
figure that lies beyond the figure's own range just inside it (darker than its darkest there, or
lighter than its lightest) back to that range, hue kept. Pure numpy/OpenCV, once per character.
"""

from __future__ import annotations

import cv2
import numpy as np

LUMA = np.array([0.299, 0.587, 0.114], np.float32)
EDGE = 3.0  # px: the sharpening's line inside the edge lies this close to it
REF = (3.0, 7.0)  # px: the figure's own lightness range is taken this deep inside, ...
WINDOW = 4  # ... within this many px of each edge pixel
NEAR, FAR = (0.0, 2.5), (4.0, 10.0)  # px outside the cut: the background beside it, and further out
SPREAD = 6  # px: the background's partner line is judged over this much of the edge
PARTNER = 4.0 / 255.0  # the line beside the figure must stand this far off the background (luma) ...
FULL = 10.0 / 255.0  # ... and counts fully from this far


def _masked_mean(x: np.ndarray, where: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray]:
    k = (2 * r + 1, 2 * r + 1)
    w = cv2.blur(where.astype(np.float32), k)
    return cv2.blur(x * where, k) / np.maximum(w, 1e-6), w


def lift_sharpening_halo(rgb: np.ndarray, fg: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """`fg` (float 0..1 foreground colours, (h, w, 3)) with the sharpening's line along the cut
    lifted back into the figure's own lightness (see the module doc); `rgb` the picture (uint8),
    `alpha` the cut-out's (float 0..1). Pixels away from the edge are returned unchanged."""
    solid = (alpha >= 0.5).astype(np.uint8)
    if not solid.any() or solid.all():
        return fg
    depth = cv2.distanceTransform(solid, cv2.DIST_L2, 5)
    out_d = cv2.distanceTransform(1 - solid, cv2.DIST_L2, 5)
    luma = (rgb.astype(np.float32) / 255.0) @ LUMA
    clear = alpha < 0.02
    near, w_near = _masked_mean(luma, clear & (out_d > NEAR[0]) & (out_d <= NEAR[1]), SPREAD)
    far, w_far = _masked_mean(luma, clear & (out_d > FAR[0]) & (out_d <= FAR[1]), SPREAD)
    partner = np.where((w_near > 0.02) & (w_far > 0.02), near - far, 0.0)  # + a light line beside it
    weight = np.clip((np.abs(partner) - PARTNER) / (FULL - PARTNER), 0.0, 1.0)
    edge = (solid > 0) & (depth <= EDGE) & (weight > 0)
    if not edge.any():
        return fg
    lf = fg @ LUMA
    ref = (depth > REF[0]) & (depth <= REF[1])
    k = np.ones((2 * WINDOW + 1, 2 * WINDOW + 1), np.uint8)
    lowest = cv2.erode(np.where(ref, lf, 2.0).astype(np.float32), k)
    highest = cv2.dilate(np.where(ref, lf, -1.0).astype(np.float32), k)
    known = (lowest <= 1.0) & (highest >= 0.0)
    # a dark line inside pairs with a light one beside it, a light line with a dark one
    lift = np.where(partner > 0, np.maximum(lowest - lf, 0.0), -np.maximum(lf - highest, 0.0))
    lift = np.where(edge & known, lift * weight, 0.0).astype(np.float32)
    return np.clip(fg + lift[..., None], 0.0, 1.0)
