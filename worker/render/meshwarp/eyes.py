"""Eyelids at full resolution.

The coarse warp grid (about 10 px between nodes) cannot close a 10 px tall eye: the lids would
stop half way. So the spline only moves each eye as a whole (its lids ride rigidly on the
corners), and a per-eye patch remaps each column of the eye at full resolution: the skin above
the upper lid stretches down over the eyeball as the lid closes, the lower lid rises a little.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import cv2
import numpy as np

from worker.render.meshwarp.patch_box import patch_box
from worker.track import landmark_ids as L

_TABLE_U = np.linspace(-1.3, 1.3, 96)  # where the lid curves are tabulated (u across the eye)
# A shut lid: the skin stretched down over the eye, evened out to its own broad tone (the crease and
# the socket's shadows it drags along are what made it read as a dark smear, a bruise, on paintings,
# and as a pale eyeball in a dark socket), with the picture's own lash colour (`lid_colours`) as a
# soft line where the lids meet. Chosen by what MediaPipe reads back from a full blink and from each
# wink on the bundled photo and s9, s10, s12, s42, each also mirrored (mean closure read, 1 = shut):
# the earlier darkening (12 % towards the lashes, 16 % on a 0.12-wide lash line) 0.59 blink, 0.42
# the worst eye on average, 0.54 winks; this 0.73, 0.62, 0.71 (no lash line 0.54-0.59; no evening
# out 0.69, 0.55, 0.68; the skin's tone replaced by one colour 0.45: a flat lid reads as an eyeball).
# Where the eye sits in a dark socket (s12's right eye) that still read as a pale almond under a dark
# rim: the pale lid skin between the crease and the lashes, stretched, with the socket's shadow above
# (MediaPipe put the upper lid on that rim: a full blink read 0.38 shut, half shut 0.20). Stretching
# from further above (SKIN_ABOVE 1.3 -> 2.5) and evening out at a broader scale from further up
# (LID_BROAD 0.6 -> 2, LID_RAMP 0.5 -> 2, LID_TONE 0.5 -> 0.8) blends the lid into the socket: that
# eye's blink then reads 0.61, half shut 0.47, and s12's re-tracked right eye follows the driver's at
# r 0.93-0.94 on d0, d3, d9 (was 0.84-0.90; `bench --fidelity`).
LID_TONE = 0.8  # a shut lid takes on this much of its broad tone (detail finer than LID_GRAIN stays)
LID_RAMP = 2.0  # ... fading in from this far above the open lid line (share of the eye's open aperture)
LID_GRAIN = 0.1  # share of the aperture: finer detail is the skin's own grain
LID_SIDE_FADE = 0.35  # the evening out fades over this much of the half width before each corner
LID_BROAD = 2.0  # share of the aperture: the scale of the lid's broad tone
LASH_INK = 1.0  # the lash line of a shut eye: this much of the picture's lash colour at its centre
LASH_WIDTH = 0.4  # ... over this half-width (share of the eye's open aperture), thinner at the corners
LASH_BAND = -0.12  # the drawn lashes: this far inside the open upper lid line (share of the aperture)
CORNER_FADE = 0.5  # the lids meet fully where the open eye is at least this tall (share of its aperture)
LOWER_PULL = 0.3  # a shut eye's lower lid margin is drawn from this far below the open one (share of the aperture)
SKIN_ABOVE = 2.5  # the skin stretched over a closing eye reaches this far above the open lid (share of the aperture)
SKIN_BELOW = 0.8  # ... and below the lower lid
PIN_HEIGHT = 1.0  # an eye's corners are pinned where the pose puts them this far above and below its axis
PIN_FADE = 1.0  # ... the correction fading out over this much further (half widths of the eye)


class EyeRig:
    """One eye of a character: its neutral lids in the eye's own frame (units of half width)."""

    def __init__(self, lm: np.ndarray, left: bool) -> None:
        self.left = left
        c = L.L_EYE_CORNERS if left else L.R_EYE_CORNERS
        self.corners = list(c) if lm[c[0], 0] < lm[c[1], 0] else [c[1], c[0]]  # image left, right
        self.upper = np.array(L.L_EYE_UPPER if left else L.R_EYE_UPPER)
        self.lower = np.array(L.L_EYE_LOWER if left else L.R_EYE_LOWER)
        self.iris = L.L_IRIS if left else L.R_IRIS
        origin, half, ax, n = self.frame(lm)
        uv = self._uv(lm[:, :2], origin, half, ax, n)
        self.up_uv = self._sorted(uv[self.upper])
        self.lo_uv = self._sorted(uv[self.lower])
        self.iris_uv = uv[self.iris]
        self.rest_corners = lm[self.corners, :2].astype(np.float32)
        # the eye's axis in 3-D and its upward direction in the picture plane, to turn with the head
        self._axis3 = (lm[self.corners[1], :3] - lm[self.corners[0], :3]) if lm.shape[1] >= 3 else None
        self._up3 = np.array([n[0], n[1], 0.0])
        self.aperture = float(
            np.mean(np.interp(self.up_uv[:, 0], self.lo_uv[:, 0], self.lo_uv[:, 1]) - self.up_uv[:, 1])
        )
        # the look-up table of lid curves over u: final upper, final lower, open upper, open lower
        # (the open ones never change: filled in once; a frame writes only the first two columns)
        self._table = np.zeros((1, len(_TABLE_U), 4), np.float32)
        self._table[0, :, 2] = np.interp(_TABLE_U, self.up_uv[:, 0], self.up_uv[:, 1])
        self._table[0, :, 3] = np.interp(_TABLE_U, self.lo_uv[:, 0], self.lo_uv[:, 1])
        self._lids = np.concatenate([self.upper, self.lower])

    @staticmethod
    def _sorted(uv: np.ndarray) -> np.ndarray:
        # close the curve at both corners (u = -1, 1; v = 0) so it falls to identity there
        uv = np.concatenate([uv, [[-1.0, 0.0], [1.0, 0.0]]])
        return uv[np.argsort(uv[:, 0])]

    def frame(self, lm: np.ndarray) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
        """The eye's frame in `lm`: origin (between the corners), half width, axis, normal."""
        (ax0, ay0), (bx0, by0) = lm[self.corners, :2].tolist()  # plain floats: two points
        half = max(math.hypot(bx0 - ax0, by0 - ay0) * 0.5, 1e-3)
        ux, uy = (bx0 - ax0) / (2 * half), (by0 - ay0) / (2 * half)
        return np.array([(ax0 + bx0) * 0.5, (ay0 + by0) * 0.5]), half, np.array([ux, uy]), np.array([-uy, ux])

    @staticmethod
    def _uv(p: np.ndarray, origin, half, ax, n) -> np.ndarray:
        return (p - origin) @ (np.array([ax, n]).T / half)

    def open_targets(self, lm: np.ndarray, gaze: tuple[float, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Upper lid, lower lid, iris centre as they would be with the eye open (for the spline)."""
        origin, half, ax, n = self.frame(lm)
        uv = self._uv(lm[self._lids, :2], origin, half, ax, n)
        n_up = len(self.upper)
        uv[:n_up, 1] = np.interp(uv[:n_up, 0], self.up_uv[:, 0], self.up_uv[:, 1])
        uv[n_up:, 1] = np.interp(uv[n_up:, 0], self.lo_uv[:, 0], self.lo_uv[:, 1])
        iris = self.iris_uv + np.array([gaze[0], gaze[1]])
        xy = np.concatenate([uv, iris[None]]) @ (np.array([ax, n]) * half) + origin
        return xy[:n_up], xy[n_up:-1], xy[-1]

    def pin_corners(self, full_map: np.ndarray, lm: np.ndarray) -> tuple[int, int, int, int] | None:
        """Make `full_map` (output px -> character px) draw this eye's corners where `lm` puts them.

        The spline field lives on a coarse grid: where it bends hard, as beside the nose of a
        turned head, the eye comes out a few pixels off (d12 x s12 at yaw -12...-25 deg: the near
        eye's inner corner 3.4 px towards the nose, the eye 8 % wider than the pose; the far
        eye 6-8 % narrower), and MediaPipe reads a wider eye as a narrower aperture. The error at
        each corner is added back to the map, across the eye (interpolated corner to corner) and
        fading out over PIN_FADE half widths around it. Returns the box it rewrote, or None.
        """
        origin, half, ax, n = self.frame(lm)
        ends = lm[self.corners, :2].astype(np.float32)
        drawn = cv2.remap(full_map, ends[:, :1].copy(), ends[:, 1:].copy(), cv2.INTER_LINEAR)[:, 0]
        err = self.rest_corners - drawn
        if float(np.abs(err).max()) < 0.15:
            return None
        reach = 1.0 + PIN_FADE
        box = patch_box(origin, half, ax, n, reach, -PIN_HEIGHT - PIN_FADE, PIN_HEIGHT + PIN_FADE, full_map.shape)
        if box is None:
            return None
        y0, y1, x0, x1 = box
        f = np.float32
        dx = (np.arange(x0, x1, dtype=np.float32) - f(origin[0]))[None, :] / f(half)
        dy = (np.arange(y0, y1, dtype=np.float32) - f(origin[1]))[:, None] / f(half)
        u = dx * f(ax[0]) + dy * f(ax[1])
        v = dx * f(n[0]) + dy * f(n[1])
        w = _unit((f(reach) - np.abs(u)) / f(PIN_FADE)) * _unit((f(PIN_HEIGHT + PIN_FADE) - np.abs(v)) / f(PIN_FADE))
        s = _unit((u + f(1.0)) * f(0.5))
        fix = (err[0] + s[..., None] * (err[1] - err[0])) * w[..., None]
        full_map[y0:y1, x0:x1] += fix
        return box

    def turn_scale(self, head: np.ndarray | None) -> float:
        """Output half widths per picture half width up and down the eye once `head` (3 x 4) turns it.

        The corners are pinned where the turned head puts them, so across the eye the patch's units
        follow the turn, but up and down the eye keeps its height while a turn narrows or widens
        it: in half widths its lids lie further apart or closer (d12 x s12's right eye drawn 0.09
        of its aperture more shut than the pose below yaw -4 deg, 0.10 less above +12).
        """
        if head is None or self._axis3 is None:
            return 1.0
        a = np.asarray(head, np.float64)[:2, :3]
        wx = a @ self._axis3
        width = float(np.hypot(*wx))
        if width < 1e-6:
            return 1.0
        n_out = np.array([-wx[1], wx[0]]) / width
        rest = float(np.hypot(*self._axis3[:2]))
        s = float((a @ self._up3) @ n_out) * rest / width
        return s if 0.5 < s < 2.0 else 1.0

    def remap_lids(self, full_map: np.ndarray, lm: np.ndarray, head: np.ndarray | None = None) -> LidPatch | None:
        """Rewrite `full_map` (output px -> character px) inside this eye for the lids of `lm`.

        Returns the box it rewrote and the shading for a shut lid there (see `LidPatch`), or None
        when the lids are as drawn. Runs every frame on a box of a few thousand pixels, where
        numpy's per-call cost outweighs the arithmetic: float32 scalars, tables built once,
        minimum/maximum rather than clip.
        """
        origin, half, ax, n = self.frame(lm)
        uv = self._uv(lm[self._lids, :2], origin, half, ax, n)
        n_up = len(self.upper)
        up_f, lo_f = self._sorted(uv[:n_up]), self._sorted(uv[n_up:])
        kv = np.float32(self.turn_scale(head))  # the open lids in this frame's units
        up_o, lo_o = self.up_uv[:, 1] * kv, self.lo_uv[:, 1] * kv
        dev = max(
            np.abs(np.interp(up_f[:, 0], self.up_uv[:, 0], up_o) - up_f[:, 1]).max(),
            np.abs(np.interp(lo_f[:, 0], self.lo_uv[:, 0], lo_o) - lo_f[:, 1]).max(),
        )
        if dev * half < 0.15:
            return None
        ap = max(self.aperture, 0.2) * float(kv)
        top = min(float(up_o.min()), float(up_f[:, 1].min())) - SKIN_ABOVE * ap
        bot = max(float(lo_o.max()), float(lo_f[:, 1].max())) + SKIN_BELOW * ap
        box = patch_box(origin, half, ax, n, 1.3, top, bot, full_map.shape)
        if box is None:
            return None
        y0, y1, x0, x1 = box
        # the lid curves depend on u only: tabulate them once, look them up per pixel in one go
        k, tu, table = len(_TABLE_U), _TABLE_U, self._table
        uf_t = np.interp(tu, up_f[:, 0], up_f[:, 1])  # final upper lid
        table[0, :, 0] = uf_t
        table[0, :, 1] = np.maximum(np.interp(tu, lo_f[:, 0], lo_f[:, 1]), uf_t)
        # float32 scalars throughout: a float64 one would turn every per-pixel array float64
        f = np.float32
        one, eps = f(1.0), f(1e-4)
        dx = (np.arange(x0, x1, dtype=np.float32) - f(origin[0]))[None, :] / f(half)
        dy = (np.arange(y0, y1, dtype=np.float32) - f(origin[1]))[:, None] / f(half)
        u = dx * f(ax[0]) + dy * f(ax[1])
        v = dx * f(n[0]) + dy * f(n[1])
        idx = (u + f(1.3)) * f((k - 1) / 2.6)
        look = cv2.remap(table, idx, np.zeros_like(idx), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        uf, lf, uo, lo = look[..., 0], look[..., 1], look[..., 2] * kv, look[..., 3] * kv
        ap_32 = f(ap)
        top_32, bot_32 = f(top), f(bot)
        # shut lids meet on the upper lash line; the lid margins are pulled a little away from
        # the eyeball as they close, else its dark rim shows as a slit between them
        open_gap = lo - uo
        closed = _unit(one - (lf - uf) / np.maximum(open_gap, eps))
        closed *= _unit(open_gap / (f(CORNER_FADE) * ap_32))  # and fades out towards the corners
        uo_s = uo + closed * (f(LASH_BAND) * ap_32)
        lo_s = lo + closed * (f(LOWER_PULL) * ap_32)
        above = top_32 + (v - top_32) * (uo_s - top_32) / np.maximum(uf - top_32, eps)
        inside = uo_s + (v - uf) * (lo_s - uo_s) / np.maximum(lf - uf, eps)
        below = lo_s + (v - lf) * (bot_32 - lo_s) / np.maximum(bot_32 - lf, eps)
        vs = np.where(v < uf, above, np.where(v < lf, inside, below))
        vs = np.where((v < top_32) | (v > bot_32) | (np.abs(u) > f(1.3)), v, vs)
        qx = f(origin[0]) + f(half) * (u * f(ax[0]) + vs * f(n[0]))
        qy = f(origin[1]) + f(half) * (u * f(ax[1]) + vs * f(n[1]))
        full_map[y0:y1, x0:x1] = cv2.remap(full_map, qx, qy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        # Shut, the stretched lid is skin from above the eye, creases and socket shadows included:
        # toned to the skin just above the eye, with the lash line where the lids meet (see
        # LID_TONE). Fades in as the eye shuts; only over the lid's own box: from a little above
        # the open lid down past the lash line, corner to corner.
        lid = patch_box(
            origin,
            half,
            ax,
            n,
            1.0,
            float(up_o.min()) - LID_RAMP * float(ap_32),
            float(up_f[:, 1].max()) + LASH_WIDTH * float(ap_32),
            full_map.shape,
        )
        if lid is None:
            return LidPatch(box, None)
        ly0, ly1 = max(lid[0], y0), min(lid[1], y1)
        lx0, lx1 = max(lid[2], x0), min(lid[3], x1)
        if ly1 <= ly0 or lx1 <= lx0:
            return LidPatch(box, None)
        sub = (slice(ly0 - y0, ly1 - y0), slice(lx0 - x0, lx1 - x0))
        closed, u, v, uo, uf = closed[sub], u[sub], v[sub], uo[sub], uf[sub]
        t = _unit((closed - f(0.3)) * f(2.0))
        if not t.any():
            return LidPatch(box, None)
        t *= t * (f(3.0) - f(2.0) * t)
        ramp = f(LID_RAMP) * ap_32
        tone = _unit((v - uo + ramp) / ramp)
        tone[v > uf] = 0.0  # below the lashes is the lower lid: as drawn
        # faded out towards the corners, else the evened-out patch shows its box's sides
        tone *= t * f(LID_TONE) * _unit((one - np.abs(u)) / f(LID_SIDE_FADE))
        # thinner towards the corners, where the lids meet less (`closed` fades out there)
        ink = _unit(one - np.abs(v - uf) / (f(LASH_WIDTH * ap_32) * (f(0.35) + f(0.65) * closed)))
        ink *= t * f(LASH_INK)
        scale = float(ap_32) * half  # px per aperture
        grains = (max(1.0, LID_GRAIN * scale), max(2.0, LID_BROAD * scale))
        return LidPatch(box, np.stack([tone, ink], -1), (ly0, ly1, lx0, lx1), grains)


def _unit(a: np.ndarray) -> np.ndarray:
    """`a` clipped to [0, 1] in place (np.clip costs several times more on small arrays)."""
    np.maximum(a, np.float32(0.0), out=a)
    return np.minimum(a, np.float32(1.0), out=a)


class LidPatch(NamedTuple):
    """What `EyeRig.remap_lids` rewrote: its box (y0, y1, x0, x1) of the output, and how a shut
    lid is drawn over `shade_box` (None: not shut enough to need it)."""

    box: tuple[int, int, int, int]
    shade: np.ndarray | None  # (h, w, 2): weight of the lid's broad tone, of the lash colour
    shade_box: tuple[int, int, int, int] | None = None  # where `shade` lies (inside `box`)
    grains: tuple[float, float] = (1.0, 2.0)  # px: the skin's grain, the lid's broad tone

    def apply(self, out: np.ndarray, lash: np.ndarray) -> None:
        """Draw the shut lid into the RGBA `out` (in place) with the `lash` colour (RGB); the alpha stays."""
        if self.shade is None:
            return
        y0, y1, x0, x1 = self.shade_box or self.box
        region = out[y0:y1, x0:x1]
        rgb = region[..., :3].astype(np.float32)
        tone, ink = self.shade[..., :1], self.shade[..., 1:]
        fine = cv2.GaussianBlur(rgb, (0, 0), self.grains[0])
        broad = cv2.GaussianBlur(rgb, (0, 0), self.grains[1])
        rgb += tone * (broad - fine)  # creases and shadows evened out, the grain kept
        rgb += ink * (np.asarray(lash, np.float32) - rgb)
        np.clip(rgb, 0.0, 255.0, out=rgb)
        rgb += np.float32(0.5)
        region[..., :3] = rgb.astype(np.uint8)


def lid_colours(image: np.ndarray, lm: np.ndarray, left: bool) -> np.ndarray:
    """(2, 3) float32: the lid (the fur or skin just around the eye) and the lash line (the
    darkest tenth there) of a character, from the picture itself."""
    idx = list(L.LEFT_EYE if left else L.RIGHT_EYE)
    pts = np.round(lm[idx, :2]).astype(np.int32)
    h, w = image.shape[:2]
    eye = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(eye, cv2.convexHull(pts), 255)
    r = max(2, int(0.25 * float(np.ptp(lm[idx, 0]))))
    ring = cv2.dilate(eye, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))) & ~eye
    ring &= (image[..., 3] > 200).astype(np.uint8) * 255
    sel = image[..., :3][ring > 0].reshape(-1, 3).astype(np.float32)
    if len(sel) < 10:
        return np.array([[160.0, 120.0, 100.0], [40.0, 30.0, 30.0]], np.float32)
    luma = sel @ np.array([0.3, 0.59, 0.11], np.float32)
    dark = sel[np.argsort(luma)[: max(1, len(sel) // 10)]].mean(0)  # the rim / lash line
    # the lid is what lies above the eye (a lid comes down from there), not the dark rim
    above = ring.copy()
    above[int(lm[idx, 1].min()) :] = 0
    up = image[..., :3][above > 0].reshape(-1, 3).astype(np.float32)
    up = up if len(up) >= 10 else sel
    lu = up @ np.array([0.3, 0.59, 0.11], np.float32)
    lid = np.median(up[np.argsort(lu)[len(up) // 3 :]], axis=0)
    return np.array([lid, dark], np.float32)


def paint_lids(out: np.ndarray, rig: EyeRig, lm: np.ndarray, colours: np.ndarray) -> None:
    """A non-human character's lids, painted in its own colours (RGBA `out`, in place).

    Stretching the skin above the lid (as for a photo) smears a drawn eye's thick rim and bright
    white; instead the lid is a flat shape in the colour around the eye, from the open upper lid
    down to where the lid is now, edged with the picture's own line colour.
    """
    origin, half, ax, n = rig.frame(lm)
    uv = rig._uv(lm[rig._lids, :2], origin, half, ax, n)
    n_up = len(rig.upper)
    up = rig._sorted(uv[:n_up])
    lo = rig._sorted(uv[n_up:])
    us = np.linspace(-1.0, 1.0, 33)
    open_up = np.interp(us, rig.up_uv[:, 0], rig.up_uv[:, 1])
    now_up = np.maximum(np.interp(us, up[:, 0], up[:, 1]), open_up)
    now_lo = np.interp(us, lo[:, 0], lo[:, 1])
    now_up = np.minimum(now_up, np.maximum(now_lo, open_up))
    shut = float(np.max(now_up - open_up)) / max(rig.aperture, 1e-3)
    if shut < 0.04:
        return
    rim = 0.06 * max(rig.aperture, 0.2)  # cover the drawn rim too: a shut lid hides it
    top = np.stack([us, open_up - rim], 1)
    edge = np.stack([us, now_up], 1)
    basis = np.array([ax, n]) * half
    poly = np.concatenate([top, edge[::-1]]) @ basis + origin
    line = edge @ basis + origin
    thick = max(1, int(round(0.08 * half)))
    h, w = out.shape[:2]  # draw on the eye's box only (a copy: cv2 wants contiguous RGB)
    x0, y0 = np.maximum(np.floor(poly.min(0)).astype(int) - thick - 2, 0)
    x1, y1 = np.minimum(np.ceil(poly.max(0)).astype(int) + thick + 3, (w, h))
    if x1 <= x0 or y1 <= y0:
        return
    scale = 4  # 2 fractional bits
    off = np.array([x0, y0], np.float64)
    lid, ink = colours[0].tolist(), colours[1].tolist()
    rgb = np.ascontiguousarray(out[y0:y1, x0:x1, :3])
    cv2.fillPoly(rgb, [np.round((poly - off) * scale).astype(np.int32)], lid, cv2.LINE_AA, shift=2)
    cv2.polylines(rgb, [np.round((line - off) * scale).astype(np.int32)], False, ink, thick, cv2.LINE_AA, shift=2)
    out[y0:y1, x0:x1, :3] = rgb
