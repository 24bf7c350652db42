"""The pixel box of a full-resolution patch (eyelids, lips) drawn in a part's own frame."""

from __future__ import annotations

import numpy as np


def patch_box(origin: np.ndarray, half: float, ax: np.ndarray, n: np.ndarray, u_reach: float, top: float,
              bot: float, shape: tuple[int, ...]) -> tuple[int, int, int, int] | None:
    """Pixels (y0, y1, x0, x1) covering |u| <= u_reach, top <= v <= bot of the frame (origin,
    half width, axis, normal), clipped to an image of `shape`; None when too small to patch."""
    corners = np.array([[-u_reach, top], [u_reach, top], [-u_reach, bot], [u_reach, bot]])
    pts = origin + half * (corners[:, :1] * ax + corners[:, 1:] * n)
    h, w = shape[:2]
    x0, y0 = np.maximum(np.floor(pts.min(0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(pts.max(0)).astype(int) + 1, [w, h])
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return int(y0), int(y1), int(x0), int(x1)
