"""A synthetic mouth interior, drawn inside the warped inner-lip contour.

A still character usually has a closed mouth, so there is no texture for the inside: when the
lips part, the warp would only stretch the lip line. We paint a dark cavity (darker towards the
corners and the back), the upper teeth just under the upper lip, and a shaded tongue at the
bottom, all in the mouth's own coordinates (u across the corners, v from upper to lower inner
lip) so the shapes follow whatever contour the lips make. Colours come from the character's own
lips and skin (see `mouth_palette`).
"""

from __future__ import annotations

import cv2
import numpy as np

from worker.retarget import regions as R

_UPPER = [R.MOUTH_CORNERS[0], *R.INNER_UPPER, R.MOUTH_CORNERS[1]]
_LOWER = [R.MOUTH_CORNERS[0], *R.INNER_LOWER, R.MOUTH_CORNERS[1]]
_CONTOUR = R.inner_lip_contour()
_TEETH_SEPARATIONS = np.array([0.0, 0.19, 0.4, 0.62], np.float32)  # |u| of the gaps between teeth


def _smooth(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, np.float32(0.0), np.float32(1.0))
    return x * x * (np.float32(3.0) - np.float32(2.0) * x)


def draw_mouth_interior(out: np.ndarray, lm: np.ndarray, palette: np.ndarray, iod: float,
                        strength: float) -> None:
    """Composite the interior into `out` (RGBA uint8, in place) inside the inner lips of `lm`."""
    if strength <= 0.01:
        return
    h_img, w_img = out.shape[:2]
    poly = lm[_CONTOUR, :2].astype(np.float32)
    lo_xy = np.floor(poly.min(0)).astype(int) - 2
    hi_xy = np.ceil(poly.max(0)).astype(int) + 3
    x0, y0 = max(lo_xy[0], 0), max(lo_xy[1], 0)
    x1, y1 = min(hi_xy[0], w_img), min(hi_xy[1], h_img)
    if x1 - x0 < 3 or y1 - y0 < 2:
        return
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    # 2 fractional bits: sub-pixel, anti-aliased edge (no stair-steps on a slowly opening mouth)
    pts = np.round((poly - [x0, y0]) * 4).astype(np.int32)
    cv2.fillPoly(mask, [pts], 255, lineType=cv2.LINE_AA, shift=2)
    if not mask.any():
        return

    cl, cr = lm[R.MOUTH_CORNERS[0], :2].astype(np.float64), lm[R.MOUTH_CORNERS[1], :2].astype(np.float64)
    half = max(float(np.linalg.norm(cr - cl)) * 0.5, 1.0)
    ax = (cr - cl) / (2 * half)
    nrm = np.array([-ax[1], ax[0]])
    mid = (cl + cr) * 0.5
    # float32 throughout: this runs per pixel of the mouth every frame
    f = np.float32
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    qx, qy = xs - f(mid[0]), ys - f(mid[1])
    u = (qx * f(ax[0]) + qy * f(ax[1])) * f(1.0 / half)
    w = qx * f(nrm[0]) + qy * f(nrm[1])

    def curve(ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
        d = lm[ids, :2] - mid
        cu, cw = d @ ax / half, d @ nrm
        o = np.argsort(cu)
        return cu[o], cw[o]

    uu, wu = curve(_UPPER)
    ul, wl = curve(_LOWER)
    w_up = np.interp(u, uu, wu).astype(np.float32)
    w_lo = np.interp(u, ul, wl).astype(np.float32)
    gap = np.maximum(w_lo - w_up, f(0.5))
    v = (w - w_up) / gap
    max_gap = float(gap.max())

    lip, skin = palette[0].astype(np.float32), palette[1].astype(np.float32)
    sat, bright = float(palette[2][0]), float(palette[2][1])
    u2 = np.minimum(u * u, f(1.0))
    # cavity: a darkened lip colour, deepest at the corners and at the back (top)
    cavity = (lip * 0.18 + 4.0).astype(np.float32)
    shade = (f(0.35) + f(0.65) * _smooth(v)) * (f(1.0) - f(0.6) * u2)
    col = cavity[None, None, :] * shade[..., None]

    # tongue: a lobe rising from the lower lip, visible once the mouth is open enough
    tongue_amt = float(_smooth(np.array(max_gap / (0.16 * iod))))
    if tongue_amt > 0.01:
        tongue = (lip * 0.78 + np.array([30.0, 8.0, 12.0]) * sat).astype(np.float32)
        dist = (u / 0.66) ** 2 + ((v - 1.12) / 0.62) ** 2
        t_mask = _smooth((1.0 - dist) / 0.25) * tongue_amt
        t_shade = 0.55 + 0.45 * _smooth((1.0 - dist) / 0.8)
        col = col * (1 - t_mask[..., None]) + (tongue * t_shade[..., None]) * t_mask[..., None]

    # upper teeth: a band under the upper lip, shaded round towards the corners
    teeth_px = min(0.085 * iod, 0.45 * max_gap)
    if teeth_px > 0.8:
        white = np.array([214.0, 208.0, 194.0]) * (0.5 + 0.45 * bright)
        grey = white.mean()
        white = grey + (white - grey) * min(1.0, 0.4 + sat)
        teeth = (0.85 * white + 0.15 * skin).astype(np.float32)
        depth = (w - w_up)  # pixels below the upper lip
        edge = _smooth((teeth_px - depth) / 1.5) * _smooth((0.86 - np.abs(u)) / 0.12)
        au = np.abs(u)
        lines = np.abs(au - _TEETH_SEPARATIONS[0])
        for sep in _TEETH_SEPARATIONS[1:]:
            np.minimum(lines, np.abs(au - sep), out=lines)
        lines *= f(half)
        t_shade = (1.0 - 0.55 * u2) * (0.9 + 0.1 * _smooth(lines / 1.0))
        t_shade *= 1.0 - 0.25 * _smooth(depth / max(teeth_px, 1.0))  # lower edge a bit darker
        col = col * (1 - edge[..., None]) + (teeth * t_shade[..., None]) * edge[..., None]

    # the upper lip casts a thin shadow into the mouth
    col *= (0.6 + 0.4 * _smooth((w - w_up) / 2.5))[..., None]

    a = (mask.astype(np.float32) * (strength / 255.0))[..., None]
    region = out[y0:y1, x0:x1]
    region[..., :3] = (col * a + region[..., :3].astype(np.float32) * (f(1.0) - a) + f(0.5)).astype(np.uint8)
    region[..., 3] = np.maximum(region[..., 3], (a[..., 0] * 255).astype(np.uint8))
