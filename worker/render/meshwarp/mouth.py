"""A synthetic mouth interior, drawn inside the warped inner-lip contour.

A still character usually has a closed mouth, so there is no texture for the inside: when the
lips part, the warp would only stretch the lip line. We paint a dark cavity (darker towards the
corners and the back), the upper teeth just under the upper lip, and a shaded tongue at the
bottom, all in the mouth's own coordinates (u across the corners, v from upper to lower inner
lip) so the shapes follow whatever contour the lips make. Colours come from the character's own
lips and skin (see `mouth_palette`).

What the second tracker (MediaPipe re-tracking the output) keys on decides the shapes as much as
the looks: a dark gap with nothing light in it reads as the shadow line of closed lips, above all
under a moustache (s12: openings of 0.12-0.16 eye distances re-tracked as 0.00-0.02). Upper teeth
in the middle of the opening, and no tongue filling its lower half in the lower lip's tones until
the mouth is wide open, make it read as open (`python -m worker.tools.fidelity`). A tongue in the
lips' tones touching the lower lip read as more lip (s10's widest openings re-tracked up to 0.1 eye
distances smaller): a dark floor keeps the lip's edge where it is drawn.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from worker.track import landmark_ids as L

_UPPER = [L.MOUTH_CORNERS[0], *L.INNER_UPPER, L.MOUTH_CORNERS[1]]
_LOWER = [L.MOUTH_CORNERS[0], *L.INNER_LOWER, L.MOUTH_CORNERS[1]]
_LIPS = np.array(_UPPER + _LOWER)
_CONTOUR = L.inner_lip_contour()
TEETH_OPEN = (0.05, 0.10)  # opening (inter-ocular units) over which the upper teeth fade in
# the teeth reach down this share of the opening below the upper lip, at most this many inter-ocular
# units (the visible part of an incisor: more read as a lower lip on a wide-open mouth)
TEETH_DEPTH = (0.42, 0.08)
TEETH_U2 = 0.25  # (u across the mouth)^2 where the teeth fade out: the middle half shows them
TONGUE_OPEN = (0.16, 0.28)  # opening over which the tongue rises: below, it filled the opening's lower half
# a dark floor this tall (inter-ocular units) between a human tongue and the lower lip: a tongue in the
# lip's tones touching it read as more lower lip, and a wide-open mouth as a smaller one (s10); 0.045
# read the light-lipped toon's A wider and taller, its U no rounder than A (0.02-0.045 swept)
TONGUE_CLEAR = 0.03
# a human tongue: the lips' colour darkened, a little redder as the picture is saturated
TONGUE_SHADE = 0.78
TONGUE_TINT = (30.0, 8.0, 12.0)


def _smooth(x: np.ndarray, scale: float = 1.0, offset: float = 0.0) -> np.ndarray:
    """Smoothstep of `x * scale + offset` clipped to 0..1, as a new (h, w) float32 array.

    In place where possible and clipped with `cv2.threshold`: this runs a few times per pixel
    of the mouth every frame, where numpy's call overhead is most of the cost.
    """
    t = x * np.float32(scale)
    if offset:
        t += np.float32(offset)
    cv2.threshold(t, 1.0, 1.0, cv2.THRESH_TRUNC, dst=t)  # min(t, 1)
    cv2.threshold(t, 0.0, 0.0, cv2.THRESH_TOZERO, dst=t)  # max(t, 0)
    s = t * t
    t *= np.float32(-2.0)
    t += np.float32(3.0)
    s *= t
    return s


def draw_mouth_interior(
    out: np.ndarray,
    lm: np.ndarray,
    palette: np.ndarray,
    iod: float,
    strength: float,
    teeth: bool = True,
    drawn: np.ndarray | None = None,
) -> None:
    """Composite the interior into `out` (RGBA uint8, in place) inside the inner lips of `lm`.

    `teeth` False (animal and drawn characters: no human teeth unless the picture shows them)
    leaves the teeth out: a dark mouth with a tongue. `drawn`: the character's own landmarks;
    where its picture shows the mouth open (teeth, a parted smile), that part of the interior,
    which the lip patch carries along under the upper lip (`mouth_rig`), is left showing and the
    painted cavity begins below it, with no synthetic teeth."""
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
    col, keep = _interior_colour(lm, palette, iod, x0, y0, x1, y1, teeth, drawn)
    a = mask.astype(np.float32)
    a *= np.float32(strength / 255.0)
    if keep is not None:
        a *= keep
    a3 = cv2.merge([a, a, a])  # same-shape operands: numpy is slow at broadcasting a last axis of 3
    region = out[y0:y1, x0:x1]
    rgb = cv2.cvtColor(region, cv2.COLOR_RGBA2RGB).astype(np.float32)  # contiguous, unlike region[..., :3]
    col *= a3
    np.subtract(np.float32(1.0), a3, out=a3)
    rgb *= a3
    rgb += col
    rgb += np.float32(0.5)
    mixed = cv2.cvtColor(rgb.astype(np.uint8), cv2.COLOR_RGB2RGBA)
    a *= np.float32(255.0)
    mixed[..., 3] = np.maximum(region[..., 3], a.astype(np.uint8))
    region[...] = mixed


def _interior_colour(
    lm: np.ndarray,
    palette: np.ndarray,
    iod: float,
    x0: int,
    y0: int,
    x1: int,
    y1: int,
    with_teeth: bool = True,
    drawn: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """(h, w, 3) float32 colour of the mouth interior over the box [y0:y1, x0:x1], and where
    the picture's own open mouth shows instead (0 there, 1 painted; None: painted everywhere).

    Each layer (cavity, tongue, upper teeth) is a per-pixel weight times its colour, so the
    pixel work is on single-channel float32 arrays and one `cv2.transform` mixes the colours.
    """
    (lx, ly), (rx, ry) = lm[L.MOUTH_CORNERS[0], :2].tolist(), lm[L.MOUTH_CORNERS[1], :2].tolist()
    half = max(math.hypot(rx - lx, ry - ly) * 0.5, 1.0)
    ax = ((rx - lx) / (2 * half), (ry - ly) / (2 * half))  # along the mouth; its normal points down
    mx, my = (lx + rx) * 0.5, (ly + ry) * 0.5
    # float32 throughout: this runs per pixel of the mouth every frame
    f = np.float32
    qx = np.arange(x0, x1, dtype=np.float32)[None, :] - f(mx)
    qy = np.arange(y0, y1, dtype=np.float32)[:, None] - f(my)
    u = qx * f(ax[0] / half) + qy * f(ax[1] / half)  # across the corners, -1..1
    w = qy * f(ax[0]) - qx * f(ax[1])  # pixels along the mouth's downward normal
    # the inner lips as curves w(u), each sorted along u
    d = lm[_LIPS, :2].astype(np.float64) - (mx, my)
    cu = (d[:, 0] * ax[0] + d[:, 1] * ax[1]) / half
    cw = d[:, 1] * ax[0] - d[:, 0] * ax[1]
    n = len(_UPPER)
    o_up, o_lo = np.argsort(cu[:n]), n + np.argsort(cu[n:])
    uu, wu, ul, wl = cu[o_up], cw[o_up], cu[o_lo], cw[o_lo]
    w_up = np.interp(u, uu, wu).astype(np.float32)
    depth = w - w_up  # pixels below the upper lip
    gap = np.interp(u, ul, wl).astype(np.float32)
    gap -= w_up
    np.maximum(gap, f(0.5), out=gap)
    v = depth / gap  # 0 at the upper inner lip, 1 at the lower
    rise = gap - depth  # pixels above the lower lip
    max_gap = float(gap.max())
    keep = None
    human = with_teeth  # (a picture's own open mouth leaves the teeth out below)
    own = _drawn_gap(drawn, u, half) if drawn is not None else None
    if own is not None:  # the picture's own interior, carried under the upper lip
        keep = _smooth(depth - own, 1 / 1.5)
        depth = depth - own
        np.maximum(depth, f(0.0), out=depth)
        with_teeth = False

    lip, skin = palette[0].astype(np.float64), palette[1].astype(np.float64)
    sat, bright = float(palette[2][0]), float(palette[2][1])
    u2 = np.minimum(u * u, f(1.0))
    # the upper lip casts a thin shadow into the mouth
    lip_shadow = _smooth(depth, 1 / 2.5)
    lip_shadow *= f(0.4)
    lip_shadow += f(0.6)
    # cavity: a darkened lip colour, deepest at the corners and at the back (top)
    cavity = (f(0.35) + f(0.65) * _smooth(v)) * (f(1.0) - f(0.6) * u2)
    cavity *= lip_shadow
    tongue = teeth = None

    # tongue: a lobe rising from the lower lip, visible once a human mouth is wide open (a
    # muzzle's pink tongue shows at once: no second tracker reads it)
    if human:
        tongue_amt = min(max((max_gap / iod - TONGUE_OPEN[0]) / (TONGUE_OPEN[1] - TONGUE_OPEN[0]), 0.0), 1.0)
    else:
        tongue_amt = min(max(max_gap / (0.16 * iod), 0.0), 1.0)
        tongue_amt = tongue_amt * tongue_amt * (3.0 - 2.0 * tongue_amt)
    if tongue_amt > 0.01:
        dv = (v - f(1.12)) * f(1 / 0.62)
        dist = u * f(1 / 0.66)
        dist *= dist
        dist += dv * dv
        t_mask = _smooth(dist, -1 / 0.25, 1 / 0.25)
        t_mask *= f(tongue_amt)
        tongue = _smooth(dist, -1 / 0.8, 1 / 0.8)
        tongue *= f(0.45)
        tongue += f(0.55)
        tongue *= t_mask
        tongue *= lip_shadow
        if human:  # the lower lip's edge stays dark (a muzzle's tongue may hang over it)
            clear = _smooth(rise, 1 / (TONGUE_CLEAR * iod), -0.2)
            t_mask *= clear
            tongue *= clear
        cavity *= f(1.0) - t_mask

    # Upper teeth as soon as the lips part by a tenth of the eye distance (as a talking driver's
    # do), over the middle of the mouth only (a band across the whole width read as braces): a
    # row under the upper lip, shaded towards its lower edge. They are painted, not left showing:
    # `keep` is only where the picture's own interior shows.
    open_amt = min(max((max_gap / iod - TEETH_OPEN[0]) / (TEETH_OPEN[1] - TEETH_OPEN[0]), 0.0), 1.0)
    if with_teeth and open_amt > 0.01:
        reach = np.minimum(gap * f(TEETH_DEPTH[0]), f(TEETH_DEPTH[1] * iod))
        reach -= depth  # > 0 above the teeth's lower edge
        edge = _smooth(reach, 1 / max(0.1 * max_gap, 0.8), 0.5)
        edge *= _smooth(u2, -1 / 0.1, TEETH_U2 / 0.1 + 0.5)
        edge *= f(open_amt * open_amt * (3.0 - 2.0 * open_amt))
        teeth = f(1.0) - f(0.25) * _smooth(v, 1 / 0.4)
        teeth *= edge
        hole = f(1.0) - edge
        cavity *= hole
        if tongue is not None:
            tongue *= hole

    colours = [lip * 0.18 + 4.0]
    layers = [cavity]
    if tongue is not None:
        if human:  # (`with_teeth` is off where the picture's own open mouth shows: still a human's)
            colours.append(lip * TONGUE_SHADE + np.array(TONGUE_TINT) * sat)
        else:  # a muzzle's lip colour is its fur: the tongue is pink, as bright as the picture
            colours.append(np.array([196.0, 92.0, 104.0]) * (0.55 + 0.4 * bright))
        layers.append(tongue)
    if teeth is not None:
        # ivory lighter than the picture's own skin, half its tint: teeth a shade of the skin's
        # colour read as more lip, and the opening as shut
        ivory = skin + (np.array([245.0, 240.0, 228.0]) - skin) * 0.55
        grey = float(ivory.mean())
        colours.append(grey + (ivory - grey) * 0.5)
        layers.append(teeth)
    mix = np.array(colours, np.float32).T  # (rgb, layer)
    if len(layers) == 1:
        return cv2.merge([layers[0] * f(c) for c in mix[:, 0]]), keep
    return cv2.transform(cv2.merge(layers), mix), keep


OWN_MIN_GAP = 0.03  # inter-ocular units: a drawn mouth open this far shows its own interior


def _drawn_gap(drawn: np.ndarray, u: np.ndarray, half_now: float) -> np.ndarray | None:
    """The picture's own inner-lip gap at each pixel's u, in pixels of the posed mouth (scaled by
    its width), or None where the drawn mouth is (nearly) shut."""
    from worker.retarget import geometry

    _, _, iod = geometry.canonical_frame(drawn)
    if geometry.mouth_gap(drawn) < OWN_MIN_GAP * iod:
        return None
    (lx, ly), (rx, ry) = drawn[L.MOUTH_CORNERS[0], :2].tolist(), drawn[L.MOUTH_CORNERS[1], :2].tolist()
    half = max(math.hypot(rx - lx, ry - ly) * 0.5, 1.0)
    ax = ((rx - lx) / (2 * half), (ry - ly) / (2 * half))
    d = drawn[_LIPS, :2].astype(np.float64) - ((lx + rx) * 0.5, (ly + ry) * 0.5)
    cu = (d[:, 0] * ax[0] + d[:, 1] * ax[1]) / half
    cw = d[:, 1] * ax[0] - d[:, 0] * ax[1]
    n = len(_UPPER)
    o_up, o_lo = np.argsort(cu[:n]), n + np.argsort(cu[n:])
    ts = np.linspace(-1.0, 1.0, 41)
    g = np.maximum(np.interp(ts, cu[o_lo], cw[o_lo]) - np.interp(ts, cu[o_up], cw[o_up]), 0.0)
    g *= half_now / half
    return np.interp(u.ravel(), ts, g).reshape(u.shape).astype(np.float32)
