"""Lips at full resolution.

The coarse warp grid (about 13 px between nodes) cannot part two lips that lie a few pixels
apart: a mouth opened by a twentieth of the eye distance would stay shut in the picture, with
only the painted interior showing as a dark line over closed lips. So, as for the eyelids
(`eyes`), a per-column patch of the backward map at full resolution moves the
inner lip lines from wherever the spline put them onto the pose's: the upper lip and the skin
above it stretch or squeeze between the nose and the lip line, the lower lip and the chin
likewise, and what lies between the lips is the interior that `mouth` paints.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from worker.render.meshwarp.patch_box import patch_box
from worker.track import landmark_ids as L

U_REACH = 1.2  # columns rewritten: this far past the inner corners (units of half mouth width)
ABOVE, BELOW = 0.5, 0.8  # rows rewritten above / below the lips (half mouth widths): lip + skin
MIN_DEV_PX = 0.3  # the spline put the lips this close to the pose's already: no patch
MAX_SQUEEZE = 0.9  # a stretch of skin keeps at least 1 - this of its height
_TABLE = 96  # samples of the lip curves across the mouth
_TU = np.linspace(-U_REACH, U_REACH, _TABLE)  # where they are sampled
# fading to 0 past the inner corners: the patch meets the rest of the map without a seam
_FADE = np.clip((U_REACH - np.abs(_TU)) / (U_REACH - 1.0), 0.0, 1.0)
_H = 0.5  # px: step of the central differences in `_placed`
_PROBE = np.array([[0, 0], [_H, 0], [-_H, 0], [0, _H], [0, -_H]], np.float32)[:, None, :]


class MouthRig:
    """Parts a character's lips: works in the pose's mouth frame (u across the corners, v down)."""

    def __init__(self, upper_xy: np.ndarray, lower_xy: np.ndarray) -> None:
        """The character's inner lips (L.INNER_UPPER / L.INNER_LOWER order), in its own pixels."""
        self.src = np.concatenate([upper_xy, lower_xy]).astype(np.float32)

    def remap_lips(self, full_map: np.ndarray, lm: np.ndarray) -> tuple[int, int, int, int] | None:
        """Rewrite `full_map` (output px -> character px) around the mouth for the lips of `lm`.

        Returns the box it rewrote (y0, y1, x0, x1), or None when the lips are as drawn.
        """
        frame = _frame(lm[list(L.MOUTH_CORNERS), :2])
        origin, half, ax, n = frame
        target = np.concatenate([lm[L.INNER_UPPER, :2], lm[L.INNER_LOWER, :2]]).astype(np.float32)
        # where the spline really put the drawn lips (near the pose's, but a coarse grid cannot
        # part two lines a few pixels apart): the patch moves them from there onto the pose's
        placed = self._placed(full_map, target)
        if np.abs(placed - target).max() < MIN_DEV_PX:
            return None
        n_up = len(L.INNER_UPPER)
        up_t, lo_t = _curve(target[:n_up], frame), _curve(target[n_up:], frame)
        placed = _uv(placed, *frame)
        up_d = _sorted_closed(placed[:n_up])
        lo_d = _sorted_closed(placed[n_up:])
        top = min(up_d[:, 1].min(), up_t[:, 1].min()) - ABOVE
        bot = max(lo_d[:, 1].max(), lo_t[:, 1].max()) + BELOW
        box = patch_box(origin, half, ax, n, U_REACH, top, bot, full_map.shape)
        if box is None:
            return None
        y0, y1, x0, x1 = box
        # Per column u the patch moves each pixel along the mouth's normal by d(v), piecewise
        # linear through 0 at `top`, (drawn - target) at both lip lines and 0 at `bot`: tabulate
        # the pieces' coefficients over u once, look them up per pixel.
        tu, fade = _TU, _FADE
        ut = np.interp(tu, up_t[:, 0], up_t[:, 1])
        lt = np.maximum(np.interp(tu, lo_t[:, 0], lo_t[:, 1]), ut)
        d1 = (np.interp(tu, up_d[:, 0], up_d[:, 1]) - ut) * fade
        d2 = (np.maximum(np.interp(tu, lo_d[:, 0], lo_d[:, 1]), ut + d1) - lt) * fade
        # v -> v + d(v) must keep its order on each piece (slope of d > -1), or the patch folds
        # (only a lip asked to move further than the skin beside it can give, at extreme poses)
        d1 = np.clip(d1, -MAX_SQUEEZE * (ut - top), 0.5 * MAX_SQUEEZE * (bot - ut))
        d2 = np.clip(d2, d1 - MAX_SQUEEZE * (lt - ut), MAX_SQUEEZE * (bot - lt))
        k1 = d1 / np.maximum(ut - top, 1e-4)
        k2 = (d2 - d1) / np.maximum(lt - ut, 1e-4)
        k3 = d2 / np.maximum(bot - lt, 1e-4)
        table = np.stack([ut, lt, d1, k1, k2, k3], -1).astype(np.float32)[None]  # one 6-channel look-up
        f = np.float32
        dx = (np.arange(x0, x1, dtype=np.float32) - f(origin[0]))[None, :] / f(half)
        dy = (np.arange(y0, y1, dtype=np.float32) - f(origin[1]))[:, None] / f(half)
        u = dx * f(ax[0]) + dy * f(ax[1])
        v = dx * f(n[0]) + dy * f(n[1])
        idx = (u + f(U_REACH)) * f((_TABLE - 1) / (2 * U_REACH))
        c = cv2.remap(table, idx, np.zeros_like(idx), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        ut_p, lt_p = c[..., 0], c[..., 1]
        above = np.maximum(v - f(top), f(0.0)) * c[..., 3]
        # between the lips the drawn interior (teeth, where the picture shows them) rides on the
        # upper lip unstretched, down to the drawn lower lip's edge (what lies below is the
        # cavity `mouth` paints); a mouth closing past its drawing squeezes it as before
        d2_p = (lt_p - ut_p) * c[..., 4] + c[..., 2]
        between = np.minimum(c[..., 2], (lt_p - v) + d2_p)
        below = np.maximum(f(bot) - v, f(0.0)) * c[..., 5]
        d = np.where(v < ut_p, above, np.where(v < lt_p, between, below))
        d *= f(half)
        qx = d * f(n[0]) + (dx * f(half) + f(origin[0]))
        qy = d * f(n[1]) + (dy * f(half) + f(origin[1]))
        full_map[y0:y1, x0:x1] = cv2.remap(full_map, qx, qy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return box

    def _placed(self, full_map: np.ndarray, start: np.ndarray, steps: int = 1) -> np.ndarray:
        """Output positions x with full_map(x) = the drawn inner lips: Newton from `start` (the
        pose's lips, a few pixels off), with the map's Jacobian by central differences (it is far
        from the identity where a mouth opens: the drawn pixels between the lips are stretched
        over the whole gap). One step lands within ~0.3 px, the same as three."""
        x = start.astype(np.float32)
        for _ in range(steps):
            pts = (x[None] + _PROBE).reshape(1, -1, 2)  # x, then a half pixel right, left, down, up
            at = cv2.remap(full_map, pts[..., 0], pts[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)[
                0
            ].reshape(5, -1, 2)
            jx, jy = (at[1] - at[2]) / (2 * _H), (at[3] - at[4]) / (2 * _H)  # d map / dx, d map / dy
            r = at[0] - self.src
            det = jx[:, 0] * jy[:, 1] - jy[:, 0] * jx[:, 1]
            ok = np.abs(det) > 1e-3
            det = np.where(ok, det, 1.0)
            dx = np.where(ok, (jy[:, 1] * r[:, 0] - jy[:, 0] * r[:, 1]) / det, r[:, 0])
            dy = np.where(ok, (jx[:, 0] * r[:, 1] - jx[:, 1] * r[:, 0]) / det, r[:, 1])
            step = np.empty_like(x)
            step[:, 0], step[:, 1] = dx, dy
            x -= np.minimum(np.maximum(step, -8.0, out=step), 8.0, out=step)
        return x.astype(np.float64)


def _sorted_closed(uv: np.ndarray) -> np.ndarray:
    uv = np.concatenate([uv, [[-1.0, 0.0], [1.0, 0.0]]])
    return uv[np.argsort(uv[:, 0])]


def _frame(corners: np.ndarray) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """Mouth frame from the inner corners: origin, half width, axis across, normal (down)."""
    (ax0, ay0), (bx0, by0) = np.asarray(corners, np.float64).tolist()  # plain floats: two points
    if ax0 > bx0:
        ax0, ay0, bx0, by0 = bx0, by0, ax0, ay0
    half = max(math.hypot(bx0 - ax0, by0 - ay0) * 0.5, 1e-3)
    ux, uy = (bx0 - ax0) / (2 * half), (by0 - ay0) / (2 * half)
    return np.array([(ax0 + bx0) * 0.5, (ay0 + by0) * 0.5]), half, np.array([ux, uy]), np.array([-uy, ux])


def _uv(p: np.ndarray, origin: np.ndarray, half: float, ax: np.ndarray, n: np.ndarray) -> np.ndarray:
    return (np.asarray(p, np.float64) - origin) @ (np.array([ax, n]).T / half)


def _curve(p: np.ndarray, frame: tuple) -> np.ndarray:
    """A lip line in the frame, closed at both corners (u = -1, 1; v = 0), sorted by u."""
    return _sorted_closed(_uv(p, *frame))
