"""Clean cut-out edges for characters whose picture has no alpha of its own.

The coarse matte (MediaPipe selfie segmentation, upsampled from 256 px) is blurry and sits a few
pixels off the picture's real edges, leaves islands of the picture's own background, and the
edge pixels still carry the old background's colour, which shows as a light or dark fringe over
a green or dark scene. `refine_cutout` fixes the three in order:

1. islands: only the parts of the matte connected to the face are kept; and patches of the old
   background that the segmentation took for the figure where they open onto the background, at
   the picture's border or the matte's outside (the sky between a statue's hair knots, a strip of
   wall beside a cheek, a painting's dark ground behind a neck) are dropped when their colour is
   the background's and not the figure's; parts of the figure the segmentation missed (a suit's
   shoulder beyond a helmet ring) are added by GrabCut (`extend_figure`);
2. edges: in a thin band around the coarse boundary, alpha is re-fitted to the picture's own
   edges from local figure/background colours, with a guided filter (He et al., ECCV 2010;
   `cv2.ximgproc`) where colours cannot tell; on a plain backdrop, pixels off it in hue are
   figure and those on it backdrop (`off_backdrop`: a render's lilac-lit hair on a grey-blue wall);
3. colour: the foreground colour in the edge band is estimated by blur fusion (Forte & Pitie,
   "Approximate fast foreground colour estimation", ICIP 2021): I = aF + (1-a)B solved for F
   with local means of F and B, so no old background colour remains; fully transparent pixels
   get the nearby foreground colour, which also keeps warping from bleeding dark borders in.
   A sharpened photo's dark (or light) line just inside the figure's edge, partnered by a light
   (or dark) one on the old background beside it, is lifted into the figure's own lightness
   (`worker.characters.sharpening_halo`).

A PNG's own alpha is never passed through here (see `worker.characters.preprocess`).
`halo` measures the old-background colour left in a composite; `matte_doubt` says when a
matte looks wrong enough for `check` to warn. Pure numpy/OpenCV functions; nothing per frame.
The before/after sheet of the README is drawn by `python -m worker.tools.matte_sheet`.
"""

from __future__ import annotations

import cv2
import numpy as np

from worker.characters.sharpening_halo import lift_sharpening_halo

GREEN = (0, 255, 0)
FACES_PER_SIDE = 2.4  # a character's crop is this many face sizes (PreprocessSettings.margin)


def _disk(radius: int) -> np.ndarray:
    r = max(1, int(radius))
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


def _as_unit(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a.astype(np.float32)


def keep_connected(alpha: np.ndarray, keep: np.ndarray, reach: int = 3) -> np.ndarray:
    """`alpha` (float 0..1) without the islands not connected to `keep` (bool, e.g. the face).

    Connected means: part of a solid (alpha >= 0.5) component that overlaps `keep`; if none does,
    the largest component stands for the figure. The soft fringe within `reach` px of the kept
    parts stays; every other pixel (faint blobs included) becomes transparent.
    """
    solid = (alpha >= 0.5).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(solid, connectivity=8)
    if n <= 1:
        return alpha
    ids = np.unique(labels[keep & (solid > 0)])
    ids = ids[ids > 0]
    if ids.size == 0:
        ids = np.array([1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))])
    kept = np.isin(labels, ids).astype(np.uint8)
    near = cv2.dilate(kept, _disk(reach)) > 0
    return np.where(near, alpha, 0.0).astype(np.float32)


def drop_background_patches(
    rgb: np.ndarray, alpha: np.ndarray, face: np.ndarray, side: int, border: np.ndarray | None = None
) -> np.ndarray:
    """`alpha` (float 0..1) without the solid patches that look like the old background and open
    onto it: they touch the picture's border (`border`, bool; default the outermost pixels) or the
    clear outside of the matte.

    A patch pixel lies close to the local background colour (mean of the clear pixels within
    side/8, or of their light or their dark ones alone where the background has two tones) in
    absolute terms and compared with how far the local figure colour is from it; where figure and
    background are alike nothing is judged. Patches of 4-connected such pixels outside
    the face are dropped when they reach the border or the outside: wide ones (surviving an
    opening, at least (side/40)^2 px) wherever they lie, e.g. the sky between a statue's hair
    knots or wall the segmentation took into a shoulder; thin ones (slivers where a figure meets
    the border, a strip of wall beside a jaw where the matte sits a few px outside the figure)
    down to (side/80)^2 px, as deep as a matte misses by (side/40 px from the outside). A dark
    garment beside a dark background keeps whatever does not look like that background, and a
    patch enclosed by the figure (a black helmet in front of a black table) is never judged.
    """
    image = rgb.astype(np.float32) / 255.0
    hard = (alpha >= 0.5).astype(np.float32)
    clear = (alpha < 0.02).astype(np.float32)
    if not clear.any():
        return alpha
    r = max(8, side // 8)
    fg = _local_mean(image, hard, r)
    light = (image @ np.array([0.299, 0.587, 0.114], np.float32)) >= 0.5
    like = np.zeros(alpha.shape, bool)
    # a background of two tones (a pale wall above a black table) has a mean like neither:
    # its light and its dark parts are each a background a patch can look like
    k = (2 * r + 1, 2 * r + 1)
    for i, part in enumerate((clear, clear * light, clear * ~light)):
        if not part.any():
            continue
        bg = _local_mean(image, part, r)
        apart = np.linalg.norm(fg - bg, axis=2)
        off_bg = np.linalg.norm(image - bg, axis=2)
        here = (apart > 0.15) & (off_bg < 0.35 * apart) & (off_bg < 0.1)
        if i:  # one tone counts only where it is a real part of the background nearby
            here &= cv2.blur(part, k) > 0.05
        like |= here
    like = (like & (hard > 0) & ~face).astype(np.uint8)
    if border is None:
        border = np.zeros(like.shape, bool)
        border[0, :] = border[-1, :] = border[:, 0] = border[:, -1] = True
    outside = cv2.dilate((hard == 0).astype(np.uint8), _disk(1)) > 0
    opening = border | outside
    wide = _patches_at(cv2.morphologyEx(like, cv2.MORPH_OPEN, _disk(2)), opening, (side // 40) ** 2)
    # thin ones: only their part near the outside, so no thread leads deep into the figure
    near = cv2.distanceTransform((~opening).astype(np.uint8), cv2.DIST_L2, 3) <= max(2, side // 40)
    thin = _patches_at(like & near, opening, max(4, (side // 80) ** 2))
    drop = wide | thin
    if not drop.any():
        return alpha
    drop = cv2.dilate(drop.astype(np.uint8), _disk(1)) > 0
    return np.where(drop, 0.0, alpha).astype(np.float32)


def extend_figure(
    rgb: np.ndarray, alpha: np.ndarray, face: np.ndarray, side: int, work: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """`alpha` (float 0..1) grown into the parts of the figure the segmentation missed (the
    astronaut's suit beyond the helmet ring), by OpenCV's GrabCut seeded from it; also the mask
    (bool) of what was added.

    The solid matte's core and the face are sure figure, the rest of the solid matte probable
    figure, everything else probable background: nothing is sure background, since a missed
    shoulder reaches the picture's border like the wall beside it. GrabCut fits colour models
    to both and cuts along the picture's edges, at `work` px (the edges are re-fitted later at
    full size). Of what it adds, only pixels nearer the figure's colour than the clear
    background's around them count (a landscape behind a painted sitter, or a dark ground
    beside a dark fold, is in both colour models), and only parts joined to the figure by
    more than a thread (an opening of side/64 px) whose median colour lies well off that
    background (> 0.2 of full scale). Nothing is lowered.
    """
    h, w = alpha.shape
    s = min(1.0, work / max(h, w))
    size = (max(8, round(w * s)), max(8, round(h * s)))
    small = cv2.resize(np.ascontiguousarray(rgb), size, interpolation=cv2.INTER_AREA)
    solid = cv2.resize((alpha >= 0.5).astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
    sure = cv2.erode(solid, _disk(3)) | cv2.resize(face.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
    if (sure > 0).sum() < 64 or (solid == 0).sum() < 64:  # GrabCut's colour models need samples of both
        return alpha, np.zeros(alpha.shape, bool)
    mask = np.where(sure > 0, cv2.GC_FGD, np.where(solid > 0, cv2.GC_PR_FGD, cv2.GC_PR_BGD)).astype(np.uint8)
    models = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    # GrabCut starts its colour models with k-means from OpenCV's per-thread RNG: seeded, a picture is cut
    # the same way every time (a rebuilt cache entry equals the first; 0 is the RNG's own starting state)
    cv2.setRNGSeed(0)
    # three rounds: five gave the same cut-outs on every shared and bundled character
    cv2.grabCut(small, mask, None, *models, 3, cv2.GC_INIT_WITH_MASK)
    grown = ((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)).astype(np.uint8)
    grown = cv2.resize(grown * 255, (w, h), interpolation=cv2.INTER_LINEAR) >= 128
    # only what does not look like the old background around it (a landscape behind a painted
    # sitter is in both colour models; GrabCut may take a dark ground in with a dark fold): a pixel
    # must lie nearer the figure than the clear background near it
    image = rgb.astype(np.float32) / 255.0
    r = max(8, min(h, w) // 8)
    bg = _local_mean(image, ((alpha < 0.02) & ~grown).astype(np.float32), r)
    fg = _local_mean(image, (alpha >= 0.5).astype(np.float32), r)
    off_bg = np.linalg.norm(image - bg, axis=2)
    off_fg = np.linalg.norm(image - fg, axis=2)
    added = (grown & (alpha < 0.5) & (off_bg > off_fg)).astype(np.uint8)
    # a part joined to the figure only by a thread is not the figure's: open before joining
    added = cv2.morphologyEx(added, cv2.MORPH_OPEN, _disk(side // 64))
    n, labels = cv2.connectedComponents(added, connectivity=4)
    if n <= 1:
        return alpha, np.zeros(alpha.shape, bool)
    touch = cv2.dilate((alpha >= 0.5).astype(np.uint8), _disk(side // 64 + 1)) > 0
    keep = np.zeros(n, bool)
    for i in range(1, n):
        part = labels == i
        if not (part & touch).any():
            continue
        ob, of = float(np.median(off_bg[part])), float(np.median(off_fg[part]))
        keep[i] = ob > 0.2 and ob > of
    joined = keep[labels]
    return np.where(joined, 1.0, alpha).astype(np.float32), joined


def _patches_at(mask: np.ndarray, at: np.ndarray, min_area: int) -> np.ndarray:
    """The 4-connected components of `mask` (uint8) that reach `at` (bool), min_area px or more."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=4)
    if n <= 1:
        return np.zeros(mask.shape, bool)
    ids = np.unique(labels[at & (mask > 0)])
    ids = [i for i in ids if i > 0 and stats[i, cv2.CC_STAT_AREA] >= min_area]
    return np.isin(labels, ids)


def _guided(rgb: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Guided filter of `src` by the uint8 picture; `eps` on the 0..1 colour scale.

    (OpenCV's filter smears edges when given a float 3-channel guide: it wants the uint8 one.)
    """
    return cv2.ximgproc.guidedFilter(np.ascontiguousarray(rgb), src.astype(np.float32), int(radius), eps * 255.0**2)


def _local_mean(image: np.ndarray, weight: np.ndarray, r: int) -> np.ndarray:
    """Mean colour of `image` over the pixels `weight` marks, within r px (4r where r finds none)."""
    means = []
    for radius in (r, 4 * r):
        k = (2 * radius + 1, 2 * radius + 1)
        w = cv2.blur(weight, k)
        means.append((cv2.blur(image * weight[..., None], k) / np.maximum(w, 1e-6)[..., None], w))
    (near, w_near), (far, _) = means
    return np.where((w_near < 0.02)[..., None], far, near)


def refine_alpha(rgb: np.ndarray, alpha: np.ndarray, band: int) -> np.ndarray:
    """The coarse `alpha` re-fitted to `rgb`'s own edges within `band` px of its boundary.

    In the band, each pixel's colour is placed between the local figure colour (mean over the
    solid core) and the local old background (mean over the clear outside): alpha is how far it
    lies towards the figure. Where the two colours are alike that says nothing, and a guided
    filter of the coarse mask stands in. Deeper than band/2 inside the coarse mask the figure
    stays opaque (hair that looks like the background must not turn see-through); a light
    guided filter takes the noise out.
    """
    image = rgb.astype(np.float32) / 255.0
    hard = (alpha >= 0.5).astype(np.uint8)
    core = cv2.erode(hard, _disk(band)).astype(np.float32)
    clear = (cv2.dilate(hard, _disk(band)) == 0).astype(np.float32)
    fg = _local_mean(image, core, 2 * band)
    bg = _local_mean(image, clear, 2 * band)
    d = fg - bg
    d2 = (d * d).sum(axis=2)
    by_colour = np.clip(((image - bg) * d).sum(axis=2) / np.maximum(d2, 1e-6), 0.0, 1.0)
    by_shape = _guided(rgb, hard, band, 2e-3)
    by_shape = np.clip((by_shape - 0.5) * 1.6 + 0.5, 0.0, 1.0)  # the filter's step is wide: steepen
    trust = np.clip((np.sqrt(d2) - 0.08) / 0.12, 0.0, 1.0)  # colour distance 0.08..0.2 of full scale
    a = trust * by_colour + (1.0 - trust) * by_shape
    inner = max(1.0, band / 2)
    depth = cv2.distanceTransform(hard, cv2.DIST_L2, 5)
    a = np.maximum(a, np.clip((depth - inner) / inner, 0.0, 1.0))
    a = _guided(rgb, a, 2, 1e-4)
    # texture that looks like the background punches pinholes into the band: close them, except in
    # the outermost 2 px, where the closing (which cannot see past the picture) joins a figure 2 px
    # from the border to the border: a sliver of old background above a statue's hair knot
    closed = cv2.morphologyEx(a.astype(np.float32), cv2.MORPH_CLOSE, _disk(2))
    edge_rows = np.ones(a.shape, bool)
    edge_rows[2:-2, 2:-2] = False
    a = np.where(edge_rows, a, closed)
    a = np.clip(np.where(core > 0, 1.0, np.where(clear > 0, 0.0, a)), 0.0, 1.0)
    a = off_backdrop(image, a, (core == 0) & (clear == 0), clear, 2 * band)
    # the background is what is clear; the picture's border is not: a figure cut off by the crop
    # goes on past it (a dark fold of a painted scarf, running down to the border)
    return fill_alpha_dips(a, (clear > 0) | (a < 0.02) | (alpha < 0.02)).astype(np.float32)


BACKDROP_NOISE = 3 / 255  # a backdrop this even (RGB spread of its clear pixels) is a plain one
BACKDROP_LIGHT = 30.0  # CIELAB L: on a near-black ground a dark figure's hue is the JPEG's noise
HUE_OVER_LIGHTNESS, HUE_APART = 2.0, 8.0  # CIELAB: a, b apart at least twice L's difference, and 8
OFF_BACKDROP = (8 / 255, 3.0, 12 / 255)
DEEP = 3  # px inside the solid figure (alpha >= 0.5): no contour or rim line there, off the backdrop is figure
REGION = 3  # px: hue against lightness is judged over the figure this close (a pixel's own is noise)


def off_backdrop(image: np.ndarray, alpha: np.ndarray, band: np.ndarray, clear: np.ndarray, r: int) -> np.ndarray:
    """`alpha` (float 0..1) in the edge `band` (bool) set by how far each pixel lies off a plain
    backdrop, where the figure differs from it more in hue than in lightness.

    The colour fit places a pixel between the local figure colour (a mean) and the old background,
    so a part of the figure whose colour is unlike that mean but close to the backdrop's (s7's hair,
    lit lilac at its top right, against a grey-blue wall) comes out semi-transparent, ragged, with
    the wall showing through. A render's or a studio's backdrop is even (the spread of its clear
    pixels within `r` under BACKDROP_NOISE): a pixel off it by more than its noise is no backdrop,
    and one within half of that is nothing but backdrop. Only where the figure around the pixel
    (REGION px) differs from the backdrop mostly in hue and saturation (CIELAB a, b at least twice
    L's difference, for half of it), on a backdrop not near black: a statue's dark contour or a lit
    rim line against a pale wall differs in lightness, and there the colour fit stays. Those lie in
    the outermost px, though: DEEP px or more inside the solid figure a pixel off the backdrop is
    figure whatever its hue (a rim-lit neck, darker than the wall as much as it is more orange, kept
    a 12 % see-through strip 5-7 px in; the statue's shoulders a band of the scene shining through).
    The outermost 2 px stay the colour fit's too (the 1-px mix at the edge; a light line the
    picture's sharpening drew on the wall).
    """
    bg = _local_mean(image, clear, r)
    spread = np.sqrt(np.clip(_local_mean(image * image, clear, r) - bg * bg, 0.0, None).sum(axis=2))
    # hue against lightness in CIELAB, where a dark colour's hue counts as little as the eye sees it
    lab, lab_bg = (cv2.cvtColor(x.astype(np.float32), cv2.COLOR_RGB2Lab) for x in (image, bg))
    dlab = lab - lab_bg
    apart = np.hypot(dlab[..., 1], dlab[..., 2])
    hue = (apart >= HUE_OVER_LIGHTNESS * np.abs(dlab[..., 0])) & (apart >= HUE_APART)
    off = np.linalg.norm(image - bg, axis=2)
    least, times, ramp = OFF_BACKDROP
    lo = np.maximum(least, times * spread)
    # judged over the figure around each pixel: pixel by pixel, a lit collar's rim came out a ragged patchwork
    fig = (band & (off > lo)).astype(np.float32)
    k = (2 * REGION + 1, 2 * REGION + 1)
    share = cv2.blur(hue * fig, k) / np.maximum(cv2.blur(fig, k), 1e-6)
    deep = cv2.distanceTransform((alpha >= 0.5).astype(np.uint8), cv2.DIST_L2, 5) >= DEEP
    here = band & (spread < BACKDROP_NOISE) & (lab_bg[..., 0] >= BACKDROP_LIGHT) & ((share >= 0.5) | deep)
    if not here.any():
        return alpha
    figure = cv2.erode(np.clip((off - lo) / ramp, 0.0, 1.0).astype(np.float32), _disk(2))
    backdrop = np.clip((off - 0.5 * lo) / (0.5 * lo), 0.0, 1.0)
    return np.where(here, np.minimum(np.maximum(alpha, figure), backdrop), alpha).astype(np.float32)


def fill_alpha_dips(alpha: np.ndarray, outside: np.ndarray, levels: int = 32) -> np.ndarray:
    """`alpha` (float 0..1) with every dip that more opaque figure walls off from `outside` (bool:
    the clear background) raised to the rim around it; nothing is lowered.

    Light texture near the edge (a statue's pale headdress beside a pale wall) looks like the old
    background, and fitting alpha to colour makes it see-through although opaque figure lies between
    it and the background: the scene shows through inside the figure. Background can only show where
    a path of at most that much alpha leads to the clear outside, so a pixel's alpha is raised to
    the lowest level such a path must climb (grey-level hole filling, by thresholds `levels` deep).
    A real gap in the figure (between an arm and the body) holds clear pixels and keeps its alpha.
    """
    out = alpha.copy()
    for t in np.arange(1, levels + 1, dtype=np.float32) / levels:
        below = (alpha < t - 0.5 / 255.0).astype(np.uint8)
        n, labels = cv2.connectedComponents(below, connectivity=4)
        if n <= 1:
            continue
        walled = np.ones(n, bool)
        walled[0] = False
        walled[labels[outside & (below > 0)]] = False
        walled = walled[labels]
        out[walled] = np.maximum(out[walled], t)
    return out


def _box(x: np.ndarray, r: int) -> np.ndarray:
    return cv2.blur(x, (2 * r + 1, 2 * r + 1), borderType=cv2.BORDER_REPLICATE)


def _fusion_pass(image, fg, bg, alpha, r):
    a = alpha[..., None]
    mean_a = _box(alpha, r)[..., None]
    # no foreground (background) in the window: the previous estimate stands
    mean_f = np.where(mean_a > 1e-3, _box(fg * a, r) / np.maximum(mean_a, 1e-3), fg)
    mean_b = np.where(mean_a < 1 - 1e-3, _box(bg * (1.0 - a), r) / np.maximum(1.0 - mean_a, 1e-3), bg)
    f = mean_f + a * (image - a * mean_f - (1.0 - a) * mean_b)
    return np.clip(f, 0.0, 1.0), mean_b


def estimate_foreground(rgb: np.ndarray, alpha: np.ndarray, radius: int = 90) -> np.ndarray:
    """Foreground colour F (float 0..1, (h, w, 3)) with I = aF + (1-a)B, by two-pass blur fusion.

    The first pass (wide) gets the colours right across broad soft areas; the second (small)
    restores local detail. Where alpha is 1, F is the picture itself.
    """
    image = rgb.astype(np.float32) / 255.0
    a = _as_unit(alpha)
    r = max(3, radius)
    f, b = _fusion_pass(image, image, image, a, r)
    f, _ = _fusion_pass(image, f, b, a, max(2, radius // 15))
    # far from any foreground there is nothing to estimate: keep the picture's own colour
    far = _box(a, r) < 1e-3
    return np.where(far[..., None], image, f)


def working_side(shape: tuple[int, ...], landmarks: np.ndarray) -> int:
    """The side, in px, that a cut-out's band widths scale with: the crop the face is framed in
    (FACES_PER_SIDE face sizes), or the picture where that is smaller.

    A whole picture with a small face (a bundled asset made from a half-length photo) must get
    edges as thin, relative to the face, as the crop the worker cuts out of it: scaled by the
    picture's own side they came out four times wider there, and its upscaled crop showed a
    broad glow of the old background around the chin.
    """
    xy = np.asarray(landmarks)[:, :2]
    face = float((xy.max(axis=0) - xy.min(axis=0)).max())
    return int(round(min(min(shape[:2]), FACES_PER_SIDE * face)))


def face_region(shape: tuple[int, int], landmarks: np.ndarray) -> np.ndarray:
    """Bool mask of the face mesh's hull: always opaque, and what the figure is connected to."""
    mask = np.zeros(shape, np.uint8)
    hull = cv2.convexHull(np.asarray(landmarks)[:, :2].astype(np.float32)).astype(np.int32)
    cv2.fillConvexPoly(mask, hull, 1)
    return mask > 0


def refine_cutout(
    rgb: np.ndarray, alpha: np.ndarray, landmarks: np.ndarray, limit: np.ndarray | None = None
) -> np.ndarray:
    """Straight RGBA uint8 from a picture `rgb` and its coarse matte `alpha` (uint8 or float).

    `landmarks` (n, 2+) locate the face in the picture's pixels; `limit` (uint8) caps alpha, e.g.
    where the crop ran past the picture. See the module doc for the three steps.
    """
    h, w = alpha.shape[:2]
    side = working_side((h, w), landmarks)
    coarse = _as_unit(alpha)
    face = face_region((h, w), landmarks)
    a = keep_connected(coarse, face, reach=max(2, side // 128))
    border = np.zeros((h, w), bool)
    border[0, :] = border[-1, :] = border[:, 0] = border[:, -1] = True
    if limit is not None:  # the crop ran past the picture: its edge is where the picture ends
        border |= cv2.dilate((_as_unit(limit) < 0.5).astype(np.uint8), _disk(1)) > 0
    a, added = extend_figure(rgb, a, face, side)
    a = drop_background_patches(rgb, a, face, side, border)
    a = refine_alpha(rgb, a, band=max(3, side // 50))
    # the filter can re-grow faint specks; a part joined to the face only by a dropped strip of
    # old background goes too (on s10 the segmentation's dark ground beside the shoulder)
    a = keep_connected(a, face, reach=max(2, side // 128))
    a = np.maximum(a, face.astype(np.float32) * (coarse > 0.5))
    if added.any():  # what GrabCut added is figure: opaque but for its outermost 2-4 px
        depth = cv2.distanceTransform((added | (a >= 0.5)).astype(np.uint8), cv2.DIST_L2, 5)
        floor = np.where(cv2.dilate(added.astype(np.uint8), _disk(4)) > 0, np.clip(depth / 2 - 1, 0, 1), 0)
        a = np.where(a > 0.02, np.maximum(a, floor), a).astype(np.float32)
    if limit is not None:
        a = np.minimum(a, _as_unit(limit))
    fg = estimate_foreground(rgb, a, radius=max(8, side // 6))
    fg = lift_sharpening_halo(rgb, fg, a)
    out = np.empty((h, w, 4), np.uint8)
    out[..., :3] = (fg * 255.0 + 0.5).astype(np.uint8)
    out[..., 3] = (a * 255.0 + 0.5).astype(np.uint8)
    return out


# ---------------------------------------------------------------- measures


def composite(rgba: np.ndarray, background: tuple[int, int, int] = GREEN) -> np.ndarray:
    """Straight RGBA over a solid colour -> RGB uint8."""
    a = rgba[..., 3:4].astype(np.float32) / 255.0
    out = rgba[..., :3].astype(np.float32) * a + np.asarray(background, np.float32) * (1.0 - a)
    return (out + 0.5).astype(np.uint8)


def halo(picture: np.ndarray, rgba: np.ndarray, radius: int = 12) -> float:
    """Old background colour left in the cut-out's edge, in colour levels (0..441) as it shows.

    For each pixel of the edge band (0.02 < alpha < 0.98, and opaque pixels next to it) the
    cut-out's colour is placed on the line from the local foreground colour (mean of the picture
    where the matte is solid) to the local old background (mean where it is clear); the share
    towards the background, times alpha (how much of it a composite shows) times the colour
    distance, is averaged. 0 = no trace of the old background; an unprocessed cut-out of a
    picture shows about (1 - alpha) of it.
    """
    img = picture[..., :3].astype(np.float32)
    a = rgba[..., 3].astype(np.float32) / 255.0
    col = rgba[..., :3].astype(np.float32)
    solid = (a >= 0.98).astype(np.float32)
    clear = (a <= 0.02).astype(np.float32)
    k = 2 * radius + 1
    w_f = cv2.blur(solid, (k, k))
    w_b = cv2.blur(clear, (k, k))
    fg = cv2.blur(img * solid[..., None], (k, k)) / np.maximum(w_f, 1e-3)[..., None]
    bg = cv2.blur(img * clear[..., None], (k, k)) / np.maximum(w_b, 1e-3)[..., None]
    soft = (a > 0.02) & (a < 0.98)
    band = cv2.dilate(soft.astype(np.uint8), _disk(2)) > 0
    band &= (a > 0.02) & (w_f > 0.05) & (w_b > 0.05)
    d = bg - fg
    dist = np.linalg.norm(d, axis=2)
    band &= dist > 30.0  # where the old background looks like the figure, there is nothing to see
    if not band.any():
        return 0.0
    t = np.clip(((col - fg) * d).sum(axis=2) / np.maximum(dist**2, 1e-3), 0.0, 1.0)
    return float((a * t * dist)[band].mean())


def matte_doubt(rgba: np.ndarray) -> str | None:
    """One line saying why a character's matte looks wrong, or None when it looks fine.

    Checks: too little or too much foreground, foreground along most of the picture's border
    (the background was not cut out), a figure in pieces, and a ragged (noisy) outline.
    """
    a = rgba[..., 3]
    h, w = a.shape
    solid = (a >= 128).astype(np.uint8)
    share = float(solid.mean())
    if share < 0.05:
        return f"matte: only {share:.0%} of the picture is foreground (figure mostly cut away)"
    if share > 0.92:
        return f"matte: {share:.0%} of the picture is foreground (background not cut out)"
    border = np.concatenate([solid[0], solid[-1], solid[1:-1, 0], solid[1:-1, -1]])
    if border.mean() > 0.6:
        return f"matte: foreground touches {border.mean():.0%} of the border (background not cut out)"
    n, _, stats, _ = cv2.connectedComponentsWithStats(solid, connectivity=8)
    areas = np.sort(stats[1:, cv2.CC_STAT_AREA])[::-1]
    side = min(h, w)
    pieces = int((areas >= side * side * 0.002).sum())
    stray = float(areas[1:].sum() / areas.sum())
    if pieces > 3 or stray > 0.06:
        return f"matte: the figure is in {n - 1} pieces ({stray:.0%} of it apart from the main one)"
    # ragged outline: contour length against the length of the same shape smoothed
    smooth = (cv2.GaussianBlur(solid.astype(np.float32), (0, 0), side / 100) >= 0.5).astype(np.uint8)
    rough = _outline_length(solid)
    calm = max(_outline_length(smooth), 1.0)
    if rough / calm > 1.6:
        return f"matte: ragged outline ({rough / calm:.1f}x the length of its smoothed shape)"
    return None


def _outline_length(mask: np.ndarray) -> float:
    contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    return float(sum(cv2.arcLength(c, True) for c in contours))
