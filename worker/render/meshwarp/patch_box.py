"""The pixel box of a full-resolution patch (eyelids, lips) drawn in a part's own frame."""

from __future__ import annotations

import math

import numpy as np


def patch_box(
    origin: np.ndarray,
    half: float,
    ax: np.ndarray,
    n: np.ndarray,
    u_reach: float,
    top: float,
    bot: float,
    shape: tuple[int, ...],
) -> tuple[int, int, int, int] | None:
    """Pixels (y0, y1, x0, x1) covering |u| <= u_reach, top <= v <= bot of the frame (origin,
    half width, axis, normal), clipped to an image of `shape`; None when too small to patch."""
    # plain floats: four points, every frame, where numpy's per-call cost would dominate
    ox, oy, ux, uy, nx, ny = (float(v) for v in (origin[0], origin[1], ax[0], ax[1], n[0], n[1]))
    xs, ys = [], []
    for u in (-u_reach, u_reach):
        for v in (top, bot):
            xs.append(ox + half * (u * ux + v * nx))
            ys.append(oy + half * (u * uy + v * ny))
    h, w = shape[:2]
    x0, y0 = max(math.floor(min(xs)), 0), max(math.floor(min(ys)), 0)
    x1, y1 = min(math.ceil(max(xs)) + 1, w), min(math.ceil(max(ys)) + 1, h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return int(y0), int(y1), int(x0), int(x1)
