"""The face crop the networks see (a similarity transform from MediaPipe landmarks), its inverse,
and pasting the generated face back into the full RGBA character with a feathered mask.

The crop follows LivePortrait's recipe with MediaPipe points instead of InsightFace's: the
"down" axis runs from the eye centre (irises 468/473) to the lower inner lip (14), the square is
the landmarks' extent in that rotated frame times `scale`, shifted by `vy_ratio` of its side
(negative: up, towards the hair). All matrices are 2×3 affine, in pixels, `crop = M @ [x, y, 1]`.
"""

from __future__ import annotations

import cv2
import numpy as np

from worker.track import landmark_ids as L

SOURCE_SCALE, SOURCE_VY = 2.3, -0.125  # LivePortrait's crop of the source picture
DRIVER_SCALE, DRIVER_VY = 2.2, -0.1  # and of the driving video
_LIP = 14


def crop_matrix(
    landmarks: np.ndarray, size: int = 256, scale: float = SOURCE_SCALE, vy_ratio: float = SOURCE_VY
) -> np.ndarray:
    """2×3 similarity mapping image pixels to the `size`² crop of the face in `landmarks` (N, 2|3)."""
    p = np.asarray(landmarks, np.float64)[:, :2]
    eye = 0.5 * (p[L.RIGHT_IRIS_CENTER] + p[L.LEFT_IRIS_CENTER])
    down = p[_LIP] - eye
    n = float(np.hypot(*down))
    if not np.isfinite(n) or n < 1e-6:
        raise ValueError("landmarks: eyes and mouth coincide; cannot place the face crop")
    down /= n
    across = np.array([down[1], -down[0]])  # image x on an upright face (down = +y -> across = +x)
    rot = np.stack([across, down])  # rows: crop axes in image coordinates
    q = p @ rot.T
    lo, hi = q.min(axis=0), q.max(axis=0)
    side = float(max(hi - lo)) * scale
    centre = 0.5 * (lo + hi) + np.array([0.0, vy_ratio * side])  # in the rotated frame
    k = size / side
    M = np.empty((2, 3))
    M[:, :2] = k * rot
    M[:, 2] = size / 2.0 - k * centre
    return M


def invert(M: np.ndarray) -> np.ndarray:
    """The inverse of a 2×3 affine matrix."""
    return cv2.invertAffineTransform(np.asarray(M, np.float64))


def compose(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """2×3 matrix of `A ∘ B` (B first)."""
    A3 = np.vstack([A, [0, 0, 1]])
    B3 = np.vstack([B, [0, 0, 1]])
    return (A3 @ B3)[:2]


def scale_matrix(k: float) -> np.ndarray:
    return np.array([[k, 0.0, 0.0], [0.0, k, 0.0]])


def mirror_matrix(size: int) -> np.ndarray:
    """Flip a `size`-wide crop left-right (x -> size - x)."""
    return np.array([[-1.0, 0.0, float(size)], [0.0, 1.0, 0.0]])


def apply_matrix(M: np.ndarray, pts: np.ndarray) -> np.ndarray:
    pts = np.asarray(pts, np.float64)[..., :2]
    return pts @ M[:, :2].T + M[:, 2]


def warp_crop(image: np.ndarray, M: np.ndarray, size: int = 256) -> np.ndarray:
    """The `size`² crop of `image` (H, W, C uint8) through `M` (edges replicated)."""
    return cv2.warpAffine(image, M, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def to_network(crop_rgb: np.ndarray) -> np.ndarray:
    """(1, 3, S, S) float32 RGB/255 from an (S, S, 3) uint8 crop."""
    return np.ascontiguousarray(crop_rgb.transpose(2, 0, 1)[None], dtype=np.float32) * np.float32(1.0 / 255.0)


def flatten_alpha(rgba: np.ndarray) -> np.ndarray:
    """RGB of a straight-RGBA picture for the networks: transparent areas filled with the
    picture's own colours bled outwards from its edges (normalised blurs at growing radii).

    The generator redraws the whole crop, background included, and the output keeps the
    character's own alpha; where the head moves inside its silhouette the background it uncovers
    then has the colours next to it, not a flat fill that shows as a seam."""
    a = rgba[..., 3].astype(np.float32) * (1.0 / 255.0)
    rgb = rgba[..., :3].astype(np.float32)
    if a.min() >= 1.0:
        return np.ascontiguousarray(rgba[..., :3])
    pre = rgb * a[..., None]
    fill = np.empty_like(rgb)
    todo = np.ones(a.shape, bool)
    for sigma in (4.0, 16.0, 64.0):
        wa = cv2.GaussianBlur(a, (0, 0), sigma)
        wc = cv2.GaussianBlur(pre, (0, 0), sigma)
        ok = todo & (wa > 0.05)
        fill[ok] = wc[ok] / wa[ok][:, None]
        todo &= ~ok
    if todo.any():
        fill[todo] = pre.sum(axis=(0, 1)) / max(float(a.sum()), 1e-6)  # the mean colour
    out = pre + fill * (1.0 - a[..., None])
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def feather_mask(size: int, margin: float = 0.12) -> np.ndarray:
    """(size, size) float32 in [0, 1]: 1 inside, falling smoothly to 0 over `margin` of the side
    at every edge (a smoothstep), so the pasted crop leaves no seam."""
    u = (np.arange(size, dtype=np.float64) + 0.5) / size
    edge = np.clip(np.minimum(u, 1.0 - u) / margin, 0.0, 1.0)
    e = edge * edge * (3.0 - 2.0 * edge)
    return np.outer(e, e).astype(np.float32)


class PasteBack:
    """Pastes a generated (G, G, 3) face crop into a fixed straight-RGBA picture.

    Built once per character and output size: `M_crop` maps the picture's pixels to the
    generator's G² frame. Only the picture's box that the crop covers is touched per frame
    (one `warpAffine` of the crop and one blend, both on that box).
    """

    def __init__(self, base_rgba: np.ndarray, M_crop: np.ndarray, gen_size: int, margin: float = 0.12):
        self.base = np.ascontiguousarray(base_rgba)
        h, w = self.base.shape[:2]
        inv = invert(M_crop)  # generator pixels -> picture pixels
        corners = apply_matrix(inv, np.array([[0, 0], [gen_size, 0], [0, gen_size], [gen_size, gen_size]]))
        x0, y0 = np.floor(corners.min(axis=0)).astype(int)
        x1, y1 = np.ceil(corners.max(axis=0)).astype(int)
        self.x0, self.y0 = max(int(x0), 0), max(int(y0), 0)
        self.x1, self.y1 = min(int(x1), w), min(int(y1), h)
        self.empty = self.x1 <= self.x0 or self.y1 <= self.y0
        # picture box pixels -> generator pixels (the map warpAffine wants with WARP_INVERSE_MAP)
        self.M_box = compose(M_crop, np.array([[1.0, 0, self.x0], [0, 1.0, self.y0]]))
        self.box = (self.x1 - self.x0, self.y1 - self.y0)
        if not self.empty:
            m = self._warp(feather_mask(gen_size, margin), cv2.INTER_LINEAR)
            self.mask = np.ascontiguousarray(m, np.float32)  # weight of the generated pixels
            self.inv_mask = np.ascontiguousarray(1.0 - m, np.float32)
            self.base_box = np.ascontiguousarray(self.base[self.y0 : self.y1, self.x0 : self.x1, :3])
            self.inner = _inner_rect(m >= 1.0)
            # blend only where 0 < mask < 1 (strips around the inner rectangle); copy inside it
            self.strips = _strips(self.box, self.inner)

    def _warp(self, img: np.ndarray, interp: int) -> np.ndarray:
        return cv2.warpAffine(
            img, self.M_box, self.box, flags=interp | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT
        )

    def __call__(self, gen_rgb: np.ndarray) -> np.ndarray:
        """The picture with `gen_rgb` (G, G, 3) uint8 pasted in: a new (H, W, 4) uint8 array."""
        out = self.base.copy()
        if self.empty:
            return out
        g = self._warp(gen_rgb, cv2.INTER_LINEAR)
        box = out[self.y0 : self.y1, self.x0 : self.x1, :3]
        for ys, xs in self.strips:  # g * mask + base * (1 - mask), saturated and rounded
            box[ys, xs] = cv2.blendLinear(g[ys, xs], self.base_box[ys, xs], self.mask[ys, xs], self.inv_mask[ys, xs])
        if self.inner is not None:
            y0, y1, x0, x1 = self.inner
            box[y0:y1, x0:x1] = g[y0:y1, x0:x1]
        return out


def _inner_rect(full: np.ndarray) -> tuple[int, int, int, int] | None:
    """An axis-aligned rectangle (y0, y1, x0, x1) where `full` is all True (grown from the centre
    of the True region; not always the largest, always exact)."""
    ys, xs = np.nonzero(full)
    if len(ys) == 0:
        return None
    cy, cx = int(np.median(ys)), int(np.median(xs))
    if not full[cy, cx]:
        return None
    y0, y1, x0, x1 = cy, cy + 1, cx, cx + 1
    grown = True
    while grown:
        grown = False
        if y0 > 0 and full[y0 - 1, x0:x1].all():
            y0, grown = y0 - 1, True
        if y1 < full.shape[0] and full[y1, x0:x1].all():
            y1, grown = y1 + 1, True
        if x0 > 0 and full[y0:y1, x0 - 1].all():
            x0, grown = x0 - 1, True
        if x1 < full.shape[1] and full[y0:y1, x1].all():
            x1, grown = x1 + 1, True
    return y0, y1, x0, x1


def _strips(box: tuple[int, int], inner) -> list[tuple[slice, slice]]:
    """The box (w, h) minus the inner rectangle, as up to four (rows, cols) slices."""
    w, h = box
    if inner is None:
        return [(slice(0, h), slice(0, w))]
    y0, y1, x0, x1 = inner
    parts = [(slice(0, y0), slice(0, w)), (slice(y1, h), slice(0, w)), (slice(y0, y1), slice(0, x0)),
             (slice(y0, y1), slice(x1, w))]  # fmt: skip
    return [(ys, xs) for ys, xs in parts if ys.stop > ys.start and xs.stop > xs.start]


def paste_inputs(base_rgba: np.ndarray, M_crop: np.ndarray, gen_size: int, margin: float = 0.12) -> dict:
    """The per-character inputs of the paste-back appended to W+G (graph_prep.append_paste_back):
    the same paste as `PasteBack`, as arrays a GPU can apply. `M_crop` maps picture pixels to
    generator pixels (pixel centres at integers, OpenCV's convention and GridSample's with
    align_corners=0)."""
    h, w = base_rgba.shape[:2]
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    px = M_crop[0, 0] * xs + M_crop[0, 1] * ys + M_crop[0, 2]
    py = M_crop[1, 0] * xs + M_crop[1, 1] * ys + M_crop[1, 2]
    grid = np.stack([(2.0 * px + 1.0) / gen_size - 1.0, (2.0 * py + 1.0) / gen_size - 1.0], axis=-1)
    mask = cv2.warpAffine(
        feather_mask(gen_size, margin), M_crop, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
    )  # fmt: skip
    keep = base_rgba[..., :3].astype(np.float32) * (1.0 / 255.0) * (1.0 - mask[..., None])
    return {
        "pb_grid": grid[None].astype(np.float32),
        "pb_mask": mask[None, None].astype(np.float32),
        "pb_keep": np.ascontiguousarray(keep.transpose(2, 0, 1)[None], np.float32),
        "pb_alpha": np.ascontiguousarray(base_rgba[None, None, :, :, 3]),
    }
