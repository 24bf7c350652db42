"""The mesh warp's preparation: what `MeshWarpRenderer.prepare` computes once per character.

The characters package caches the result per character under (`meshwarp`, PREPARE_VERSION);
bump PREPARE_VERSION whenever the arrays change, so cached copies are rebuilt.

The warp is a thin-plate spline *in the character's own pixels*: its control points are fixed
(a landmark subset, a halo around the head, pins on the border), so the whole linear system is
solved here once. What is left per frame is one small matrix product (control displacements ->
displacements on a coarse grid) and a cheap inversion of that grid.
"""

from __future__ import annotations

import numpy as np

from worker.track import landmark_ids as L

PREPARE_VERSION = 5  # 5: the character's kind (and a non-human one's lid colours)
KINDS = ("human", "animal", "drawn")  # `meshwarp_kind` holds the index
GRID = 40  # coarse grid nodes per side (the warp is smooth: upsampled to full size per frame)
BORDER_PINS = 10  # pins per image side, corners included once
HALO_SCALE = 1.32  # halo ring around the face oval, which moves with the rigid head motion
HALO_GAP = 0.3  # ... and at least this far (eye distances) beyond any landmark
HALO_SECTOR_DEG = 12.0  # "in its direction": within this angle of it, seen from the oval's centre
OUTLINE_DEPTH = 0.5  # see flat_oval_depth
SMOOTHING = 1e-4  # TPS regularisation (in unit-square coordinates): noise never makes swirls

CONTROL_LANDMARKS = sorted(
    set(
        L.FACE_OVAL
        + L.R_EYE_UPPER
        + L.R_EYE_LOWER
        + L.R_EYE_CORNERS
        + L.R_EYE_RING
        + (L.R_IRIS,)
        + L.L_EYE_UPPER
        + L.L_EYE_LOWER
        + L.L_EYE_CORNERS
        + L.L_EYE_RING
        + (L.L_IRIS,)
        + L.R_BROW
        + L.L_BROW
        + L.LIPS_OUTER
        + L.MOUTH_CORNERS
        + L.INNER_UPPER
        + L.INNER_LOWER
        + L.NOSE
        + L.CHEEKS
    )
)


def _tps_kernel(d2: np.ndarray) -> np.ndarray:
    """U(r) = r^2 log r, written with r^2 (0 at r = 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        k = 0.5 * d2 * np.log(d2)
    return np.nan_to_num(k, nan=0.0, posinf=0.0, neginf=0.0)


def grid_coords(size: int, grid: int = GRID) -> np.ndarray:
    """Pixel positions of the grid nodes such that cv2.resize(grid -> size) lands on them."""
    return (np.arange(grid) + 0.5) * size / grid - 0.5


def halo_points(lm: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Ring around the face oval (3-D, z of the oval point) and each point's share of head motion.

    Points high on the head follow it fully (hair), points by the chin much less (the neck
    stays on the shoulders). Points too near the border are dropped: the pins own that zone.
    """
    oval = lm[L.FACE_OVAL, :].astype(np.float64)
    ring, keep = _halo_ring(lm, size)
    top, bottom = oval[:, 1].min(), oval[:, 1].max()
    share = np.clip(1.0 - (oval[:, 1] - top) / max(bottom - top, 1e-6), 0.0, 1.0)
    share = 0.4 + 0.6 * share**0.7
    pts = np.concatenate([ring, flat_oval_depth(lm)[L.FACE_OVAL, 2:3]], axis=1)
    return pts[keep], share[keep]


def halo_sources(lm: np.ndarray, size: int) -> np.ndarray:
    """The face-oval landmark each point of `halo_points` lies beyond, in the same order."""
    return np.asarray(L.FACE_OVAL)[_halo_ring(lm, size)[1]]


def _halo_ring(lm: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The ring's 2-D points (one per face-oval point) and which are far enough from the border.

    Each lies HALO_SCALE times as far from the oval's centre as its oval point, and beyond every
    landmark in its direction by HALO_GAP of the eye distance: on a face drawn turned, the far
    side's outline runs inside the nose and mouth corner, and a ring through them would be
    overtaken by the moving face (a fold).
    """
    oval = lm[L.FACE_OVAL, :2].astype(np.float64)
    c = oval.mean(0)
    out = oval - c
    r = np.maximum(np.linalg.norm(out, axis=1), 1e-6)
    u = out / r[:, None]
    rel = lm[:, :2].astype(np.float64) - c
    along, across = rel @ u.T, np.abs(rel @ np.stack([-u[:, 1], u[:, 0]], 1).T)  # (478, n_oval)
    sector = across <= along * np.tan(np.radians(HALO_SECTOR_DEG))
    reach = np.where(sector, along, 0.0).max(0)  # farthest landmark in each ring point's direction
    iod = float(np.linalg.norm(lm[list(L.L_EYE_CORNERS), :2].mean(0) - lm[list(L.R_EYE_CORNERS), :2].mean(0)))
    ring = c + u * np.maximum(r * HALO_SCALE, reach + HALO_GAP * iod)[:, None]
    margin = 0.04 * size
    return ring, ((ring >= margin) & (ring <= size - 1 - margin)).all(1)


def flat_oval_depth(lm: np.ndarray) -> np.ndarray:
    """Landmarks with the face outline's depth halved towards the head's centre.

    The outline is a silhouette, not a fixed point of the skin: turning the head slides it
    round the head rather than swinging it with the full depth of the ears (which would push
    the cheek over the hair and fold the warp).
    """
    out = np.array(lm, np.float64)
    zc = out[L.SKULL, 2].mean()
    out[L.FACE_OVAL, 2] = zc + OUTLINE_DEPTH * (out[L.FACE_OVAL, 2] - zc)
    return out


def border_pins(size: int) -> np.ndarray:
    s = np.linspace(0, size - 1, BORDER_PINS)
    m = s[1:-1]
    z, e = np.zeros_like(s), np.full_like(s, size - 1)
    zm, em = np.zeros_like(m), np.full_like(m, size - 1)
    return np.concatenate([np.stack([s, z], 1), np.stack([s, e], 1), np.stack([zm, m], 1), np.stack([em, m], 1)])


def control_sources(lm: np.ndarray, iod: float) -> np.ndarray:
    """Landmark control positions; a closed mouth's inner lips are parted by a hair.

    Coincident control points that later move apart make the spline ill-conditioned; a gap of
    a few hundredths of the eye distance keeps it stable and is invisible (the mouth interior
    is drawn over that line).
    """
    src = lm[CONTROL_LANDMARKS, :2].astype(np.float64).copy()
    pos = {j: i for i, j in enumerate(CONTROL_LANDMARKS)}
    upper, lower = zip(*L.INNER_LIP_PAIRS, strict=True)  # the three central pairs
    gap = np.linalg.norm(lm[upper, :2] - lm[lower, :2], axis=1).mean()
    want = 0.04 * iod
    if gap < want:
        # push along the local upper->lower direction of each pair
        for u, lo in zip(L.INNER_UPPER, L.INNER_LOWER, strict=True):
            d = lm[lo, :2] - lm[u, :2]
            n = np.linalg.norm(d)
            d = d / n if n > 1e-3 else np.array([0.0, 1.0])
            extra = (want - gap) * 0.5
            src[pos[u]] -= d * extra
            src[pos[lo]] += d * extra
    return src


def prepare_meshwarp(image: np.ndarray, landmarks: np.ndarray, kind: str = "human") -> dict[str, np.ndarray]:
    """The arrays for an RGBA `image`, its (478, 3) `landmarks` and `kind` (plain arrays: cached as `.npy`)."""
    size = int(image.shape[0])
    lm = np.asarray(landmarks, np.float64)
    r_eye = lm[list(L.R_EYE_CORNERS), :].mean(0)
    l_eye = lm[list(L.L_EYE_CORNERS), :].mean(0)
    iod = float(np.linalg.norm(l_eye - r_eye))
    src_lm = control_sources(lm, iod)
    halo, share = halo_points(lm, size)
    pins = border_pins(size)
    ctrl = np.concatenate([src_lm, halo[:, :2], pins]) / size  # unit square: well conditioned
    n = len(ctrl)
    k = _tps_kernel(((ctrl[:, None, :] - ctrl[None, :, :]) ** 2).sum(-1))
    k[np.diag_indices(n)] += SMOOTHING
    p = np.concatenate([np.ones((n, 1)), ctrl], axis=1)
    system = np.zeros((n + 3, n + 3))
    system[:n, :n] = k
    system[:n, n:] = p
    system[n:, :n] = p.T
    inv = np.linalg.inv(system)[:, :n]  # only displacement columns: the rest of rhs is zero
    g = grid_coords(size) / size
    gx, gy = np.meshgrid(g, g)
    nodes = np.stack([gx.ravel(), gy.ravel()], 1)
    basis = np.concatenate(
        [_tps_kernel(((nodes[:, None, :] - ctrl[None, :, :]) ** 2).sum(-1)), np.ones((len(nodes), 1)), nodes], axis=1
    )
    grid_matrix = (basis @ inv).astype(np.float32)  # (GRID^2, n): displacements -> grid field

    palette = mouth_palette(image, lm)
    extra = {}
    if kind != "human":  # lids painted in the colours around each eye (see eyes.paint_lids)
        from worker.render.meshwarp.eyes import lid_colours

        extra["meshwarp_lid_colours"] = np.stack([lid_colours(image, lm, left) for left in (True, False)])
    return {
        **extra,
        "meshwarp_kind": np.array([KINDS.index(kind) if kind in KINDS else 0], np.int32),
        "meshwarp_ctrl_idx": np.array(CONTROL_LANDMARKS, np.int32),
        "meshwarp_halo": halo.astype(np.float32),
        "meshwarp_halo_share": share.astype(np.float32),
        "meshwarp_n_pins": np.array([len(pins)], np.int32),
        "meshwarp_grid_matrix": grid_matrix,
        "meshwarp_palette": palette,
        "meshwarp_iod": np.array([iod], np.float32),
    }


def mouth_palette(image: np.ndarray, lm: np.ndarray) -> np.ndarray:
    """Colours for the synthetic mouth interior, from the character's own lips and skin.

    Rows: lip colour, skin colour, (saturation, brightness, 0). A grey picture gets a grey
    mouth, a dark painting a dark one.
    """
    import cv2

    rgb = image[..., :3]
    h, w = rgb.shape[:2]
    lips = np.zeros((h, w), np.uint8)
    cv2.fillPoly(lips, [np.round(lm[L.LIPS_OUTER, :2]).astype(np.int32)], 255)
    cv2.fillPoly(lips, [np.round(lm[L.inner_lip_contour(), :2]).astype(np.int32)], 0)
    skin = np.zeros((h, w), np.uint8)
    cv2.fillPoly(skin, [np.round(lm[L.LOWER_FACE, :2]).astype(np.int32)], 255)
    cv2.fillPoly(skin, [np.round(lm[L.LIPS_OUTER, :2]).astype(np.int32)], 0)

    def mean(mask: np.ndarray, fallback: tuple[float, float, float]) -> np.ndarray:
        sel = rgb[mask > 0]
        return sel.reshape(-1, 3).mean(0) if len(sel) > 20 else np.array(fallback)

    lip = mean(lips, (170.0, 90.0, 90.0))
    sk = mean(skin, (200.0, 160.0, 140.0))
    hsv = cv2.cvtColor(np.array([[np.clip(sk, 0, 255)]], np.uint8), cv2.COLOR_RGB2HSV)[0, 0]
    sat = float(hsv[1]) / 255.0
    bright = float(hsv[2]) / 255.0
    return np.array([lip, sk, [sat, bright, 0.0]], np.float32)
