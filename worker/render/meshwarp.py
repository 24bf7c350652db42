"""`meshwarp`: the default renderer. CPU only, no model weights.

Per frame: control displacements (landmarks, head halo) -> one matrix product with the
precomputed thin-plate-spline matrix gives the forward warp on a coarse grid of the character's
pixels -> a pose that would fold the picture over itself (a tear) is scaled back until it does
not (`_unfold`) -> Newton steps, warm-started from the last frame, invert it on the grid (output pixel ->
source pixel) -> upsample -> full-resolution patches of that map for the eyelids
(`worker.render.eyes`) and the lips (`worker.render.mouth_rig`), which the coarse grid cannot
close or part by itself -> `cv2.remap` of RGBA together (the alpha matte warps with the
picture), skipping grid cells that neither move nor touch anything visible -> the mouth interior
is composited inside the warped inner lips.

Budget (issue 3): <= 5 ms per 512 x 512 frame on one core; `benchmark_render` measures it.
Most per-frame arrays are small, so the code avoids numpy's per-call and casting overheads
(float32 scalars, component-major (2, n) arrays, in-place operations) where it runs every frame.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import NamedTuple

import cv2
import numpy as np

from worker.characters.assets import CharacterAssets
from worker.render.base import Renderer
from worker.render.eyes import EyeRig, LidPatch
from worker.render.meshwarp_prepare import GRID, flat_oval_depth, grid_coords, halo_sources, prepare_meshwarp
from worker.render.mouth import draw_mouth_interior
from worker.render.mouth_rig import MouthRig
from worker.retarget import regions as R
from worker.retarget.pose import TargetPose

NEWTON_STEPS = 6  # from scratch: brings all but a handful of grid nodes within 0.5 px
WARM_STEPS = 4  # from the previous frame's solution
SOLVED_PX = 0.05  # a node whose residual is below this takes one last step and stops
WARM_FAR_PX = 3.0  # a warm-started node this far off (the pose jumped) also tries the cold start
MOUTH_FADE = 0.03  # mouth opening (inter-ocular units) over which the interior fades in
STILL_PX = 0.05  # backward displacements below this snap to 0: a still background stays bit-identical
EDGE_NODES = 3.0  # grid nodes over which motion fades out towards the frame's edge
BAND_CELLS = 4  # grid-cell rows resampled as one box (fewer calls vs. less skipped)
SEEN_BLOCK = 4  # pixels per side of the blocks in which visibility is looked up
# Smallest area ratio (Jacobian determinant) the warp may squeeze a visible cell to; a pose that
# would squeeze harder (fold the picture over itself: a tear on screen) is scaled back to it.
# Just above the inversion's own limit (`_ForwardMap.min_det`), where Newton stays well-posed.
FOLD_DET = 0.06
HALO_FOLLOW = 0.8  # share of its outline point's non-rigid motion the halo around the head takes
_RING = np.ones((3, 3), np.uint8)


class _Character(NamedTuple):
    """Per-character state of the renderer, built on first use."""

    ctrl_idx: np.ndarray  # landmark index of each landmark control point
    rest: np.ndarray  # (n, 2) float32 their positions in the picture
    # (GRID^2, n + 4) float32: [landmark displacements; head matrix - identity] -> grid field.
    # The halo's displacement is linear in the head matrix, so its columns fold into four.
    linear: np.ndarray
    eyes: list[tuple[EyeRig, np.ndarray, np.ndarray, int]]  # rig, upper/lower lid and iris rows
    mouth: MouthRig  # the lips' full-resolution patch
    seen_sum: np.ndarray  # integral image of "alpha > 0 anywhere in the block", per SEEN_BLOCK pixels
    seen_cells: np.ndarray  # (GRID - 1, GRID - 1) bool: grid cells with anything visible in the picture
    fold_cells: np.ndarray  # (GRID - 1, GRID - 1) bool: cells that must not fold (visible, and a ring)
    points: np.ndarray  # (478, 2) float32 all landmarks as drawn
    pivot_z: np.float32  # the head's depth centre (a 2-D head motion leaves out what depth adds)


class _Warp(NamedTuple):
    """One frame's warp."""

    full: np.ndarray  # (size, size, 2) backward map: a buffer the next frame overwrites
    pos: np.ndarray  # (2, GRID, GRID) where each grid node samples the picture
    moving: np.ndarray  # (GRID, GRID) bool: the nodes that move
    patches: list[tuple[int, int, int, int]]  # boxes (y0, y1, x0, x1) the lid and lip patches rewrote
    lids: list[LidPatch]  # the lid patches (their boxes are in `patches` too), shading to apply
    pose: TargetPose  # the pose drawn (scaled back if it would have folded the picture)


class _Grid(NamedTuple):
    """The warp grid for one picture size."""

    nodes: np.ndarray  # (2, GRID^2) float32 node positions in pixels, x and y rows
    fade: np.ndarray  # (GRID^2,) how much of its motion each node keeps (0 on the outer ring)
    # pixels [0, lo) and [hi, size) lie outside the outermost nodes, where a resize clamps
    lo: int
    hi: int
    ramp: np.ndarray  # 0, 1, ..., size - 1 as float32
    edges: np.ndarray  # (GRID,) int: cell j covers pixels [edges[j], edges[j + 1]); outer cells reach the border


class MeshWarpRenderer(Renderer):
    name = "meshwarp"

    def __init__(self, size: int = 512, mouth_interior: bool = True, warm_start: bool = True) -> None:
        super().__init__(size)
        self.mouth_interior = mouth_interior
        self.warm_start = warm_start  # False: every frame solved from scratch (history-free)
        self._fallback: dict[str, dict[str, np.ndarray]] = {}
        self._grids: dict[int, _Grid] = {}
        self._chars: dict[str, _Character] = {}
        self._warm: dict[str, np.ndarray] = {}
        self._full: np.ndarray | None = None  # the full-size map, reused frame to frame

    def arrays(self, assets: CharacterAssets) -> dict[str, np.ndarray]:
        """The precomputed arrays (from the cache; built here if the assets came without them)."""
        a = assets.arrays
        if "meshwarp_grid_matrix" in a and a["meshwarp_grid_matrix"].shape[0] == GRID * GRID:
            return a
        if assets.key not in self._fallback:
            self._fallback[assets.key] = prepare_meshwarp(assets.image, assets.landmarks)
        return self._fallback[assets.key]

    def _character(self, assets: CharacterAssets) -> _Character:
        """Per-character state, derived once from the cached arrays."""
        if assets.key not in self._chars:
            a = self.arrays(assets)
            idx = np.asarray(a["meshwarp_ctrl_idx"])
            n_lm, halo = len(idx), np.asarray(a["meshwarp_halo"], np.float64)
            grid_matrix = np.asarray(a["meshwarp_grid_matrix"], np.float64)
            # halo displacement = share * ([xyz 1] @ (head - [I 0]).T): linear in the head matrix
            to_halo = grid_matrix[:, n_lm:n_lm + len(halo)]
            head = (to_halo * a["meshwarp_halo_share"]) @ np.concatenate([halo, np.ones((len(halo), 1))], 1)
            linear = np.concatenate([grid_matrix[:, :n_lm], head], 1)
            pos = {int(j): i for i, j in enumerate(idx)}
            # ... plus HALO_FOLLOW of what the outline point inside it does beyond the head's rigid
            # motion (a jaw dropping, a cheek puffing): also linear, in that point's displacement
            # and the head matrix. Without it a dropped jaw squeezes the neck under it to a fold.
            lm = np.asarray(assets.landmarks, np.float64)
            src = halo_sources(lm, assets.size)
            if len(src) == len(halo):  # (a cache from another layout: leave the halo rigid)
                follow = to_halo * HALO_FOLLOW
                np.add.at(linear.T, [pos[int(j)] for j in src], follow.T)
                flat = flat_oval_depth(lm)[src]
                linear[:, n_lm:] -= follow @ np.concatenate([flat, np.ones((len(src), 1))], 1)
            linear = np.ascontiguousarray(linear, np.float32)
            eyes = []
            for left in (True, False):
                rig = EyeRig(np.asarray(assets.landmarks, np.float64), left)
                eyes.append((rig, np.array([pos[int(j)] for j in rig.upper]),
                             np.array([pos[int(j)] for j in rig.lower]), pos[rig.iris]))
            mouth = MouthRig(lm[R.INNER_UPPER, :2], lm[R.INNER_LOWER, :2])
            rest = np.ascontiguousarray(assets.landmarks[idx, :2], np.float32)
            # anything visible per block of SEEN_BLOCK pixels, as an integral image
            n = -(-assets.size // SEEN_BLOCK) * SEEN_BLOCK
            seen = np.zeros((n, n), np.uint8)
            seen[:assets.size, :assets.size] = assets.image[..., 3] > 0
            seen = seen.reshape(n // SEEN_BLOCK, SEEN_BLOCK, -1, SEEN_BLOCK).max((1, 3))
            seen_sum = cv2.integral(seen)
            e = self._grid(assets.size).edges
            b0, b1 = e // SEEN_BLOCK, -(-e // SEEN_BLOCK)  # cells in blocks, rounded outwards
            seen_cells = _box_sums(seen_sum, b0[:-1, None], b1[1:, None], b0[None, :-1], b1[None, 1:]) > 0
            fold_cells = cv2.dilate(seen_cells.astype(np.uint8), _RING).astype(bool)
            self._chars[assets.key] = _Character(
                idx, rest, linear, eyes, mouth, seen_sum, seen_cells, fold_cells,
                np.ascontiguousarray(lm[:, :2], np.float32), np.float32(lm[R.RIGID, 2].mean()))
        return self._chars[assets.key]

    def _grid(self, size: int) -> _Grid:
        """The grid for pictures of `size` pixels."""
        if size not in self._grids:
            g = grid_coords(size).astype(np.float32)
            gx, gy = np.meshgrid(g, g)
            # 0 on the outermost ring of nodes (so the resized map is exactly still at the edge),
            # rising smoothly to 1 over the next few nodes
            k = np.minimum(np.arange(GRID), np.arange(GRID)[::-1]).astype(np.float32)
            ramp = np.clip(k / EDGE_NODES, 0.0, 1.0)
            ramp = ramp * ramp * (3 - 2 * ramp)
            fade = np.minimum(ramp[:, None], ramp[None, :]).ravel().astype(np.float32)
            lo, hi = int(np.ceil(g[0])), int(np.floor(g[-1])) + 1
            edges = np.concatenate([[0], np.ceil(g[1:-1]), [size]]).astype(np.intp)
            self._grids[size] = _Grid(np.stack([gx.ravel(), gy.ravel()]), fade, lo, hi,
                                      np.arange(size, dtype=np.float32), edges)
        return self._grids[size]

    def _forward(self, ch: _Character, pose: TargetPose, eyes: list) -> np.ndarray:
        """(2, GRID^2) forward displacement (x and y rows) of the grid nodes for `pose`."""
        tgt = pose.landmarks[ch.ctrl_idx, :2].astype(np.float32)
        for rig, up, lo, iris in eyes:
            tgt[up], tgt[lo], tgt[iris] = rig.open_targets(pose.landmarks, pose.gaze)
        return self._field(ch, tgt, pose.head_matrix)

    @staticmethod
    def _field(ch: _Character, targets: np.ndarray, head_matrix: np.ndarray) -> np.ndarray:
        """Grid field for control landmarks moved to `targets` and the head by `head_matrix`."""
        head = np.asarray(head_matrix, np.float32)[:2] - np.eye(2, 4, dtype=np.float32)
        disp = np.concatenate([targets - ch.rest, head.T]).T.copy()  # x and y rows
        # two matrix-vector products beat one product with a 2-column matrix
        fwd = np.empty((2, GRID * GRID), np.float32)
        np.dot(ch.linear, disp[0], out=fwd[0])
        np.dot(ch.linear, disp[1], out=fwd[1])
        return fwd

    def _unfold(self, ch: _Character, grid: _Grid, pose: TargetPose, fwd: np.ndarray) -> tuple[np.ndarray, TargetPose]:
        """The field, and the pose, scaled back where the pose would fold the picture over itself.

        A far cheek turned past its outline, a jaw dropped into a still neck, a head moved far
        from its shoulders: the spline would have to fold, which shows as a tear. Instead the
        pose's deviation from its plain 2-D head motion (turn, tilt, shift, scale in the picture
        plane) is scaled by the largest factor that keeps every visible cell's area ratio at
        least FOLD_DET (the 2-D motion too, if it alone folds). Both are linear in the
        control points, so the factor is exact: per cell corner the determinant is a quadratic
        in it. The scaled pose is what the lid and lip patches and the mouth then follow.
        """
        mask = ch.fold_cells
        if _min_area_ratio(grid, fwd, mask) >= FOLD_DET:  # nearly every frame: a quick check only
            return fwd, pose
        h = np.asarray(pose.head_matrix, np.float32)
        a, t = h[:2, :2], h[:2, 3] + h[:2, 2] * ch.pivot_z
        base_pts = ch.points @ a.T + t
        flat = np.zeros((3, 4), np.float32)
        flat[:2, :2], flat[:2, 3], flat[2, 2] = a, t, 1.0
        base = self._field(ch, base_pts[ch.ctrl_idx], flat)
        kb = np.float32(_fold_roots(grid, None, base, mask))
        if kb < 1.0:  # the 2-D motion folds by itself: scale it back first (as far as needed only,
            base *= kb  # so that a pose moving through here changes smoothly)
            base_pts = ch.points + kb * (base_pts - ch.points)
        k = np.float32(_fold_roots(grid, base, fwd, mask))
        fwd = base + k * (fwd - base)
        lm = pose.landmarks.copy()
        lm[:, :2] = base_pts + k * (lm[:, :2] - base_pts)
        return fwd, replace(pose, landmarks=lm)

    def _warp(self, assets: CharacterAssets, pose: TargetPose) -> _Warp:
        """The backward map for `pose` and what `render` needs to know about it."""
        ch = self._character(assets)
        size = assets.size
        # The spline moves each eye as drawn; a full-resolution patch then moves its lids
        # wherever they differ from the drawing by 0.15 px or more. A coarse grid would get lids
        # only part of the way (a third of a small squint; a widened eye read 5-10 % wider
        # instead of 25 %), and switching between the two at some threshold made the lid jump.
        eyes = ch.eyes
        grid = self._grid(size)
        given = pose
        fwd, pose = self._unfold(ch, grid, pose, self._forward(ch, pose, eyes))
        # warm start from the previous frame's solution: consecutive frames differ little
        warm = self._warm.get(assets.key) if self.warm_start else None
        # the outer ring never moves (see `fade`): no need to invert it
        # a field held at the fold limit is squeezed hard somewhere: Newton needs its full steps there
        steps = WARM_STEPS if warm is not None and pose is given else NEWTON_STEPS
        back = _invert(fwd, grid.nodes, warm, steps, margin=1)
        self._warm[assets.key] = back
        # The frame's edge never moves (exactly), nor does anything that would move by less
        # than a twentieth of a pixel: a still background stays bit-identical, not shimmering.
        back = back * grid.fade
        a = np.abs(back)
        moving = np.maximum(a[0], a[1], out=a[0]) >= STILL_PX
        back[:, ~moving] = 0.0
        back += grid.nodes  # positions, not displacements: the resize then yields the full map
        full = self._upsample(back, grid, size)
        lids = [p for rig, *_ in eyes if (p := rig.remap_lids(full, pose.landmarks)) is not None]
        patches = [p.box for p in lids]
        if (b := ch.mouth.remap_lips(full, pose.landmarks)) is not None:
            patches.append(b)
        return _Warp(full, back.reshape(2, GRID, GRID), moving.reshape(GRID, GRID), patches, lids, pose)

    def _upsample(self, pos: np.ndarray, grid: _Grid, size: int) -> np.ndarray:
        """Full-size map from node positions (2, GRID^2), into a buffer reused frame to frame."""
        if self._full is None or self._full.shape[0] != size:
            self._full = np.empty((size, size, 2), np.float32)
        pos = cv2.merge([pos[0].reshape(GRID, GRID), pos[1].reshape(GRID, GRID)])
        full = cv2.resize(pos, (size, size), dst=self._full, interpolation=cv2.INTER_LINEAR)
        # Between nodes, resizing positions gives x itself (to float precision) wherever nothing
        # moves. Beyond the outermost nodes a resize clamps; nothing moves there: write x.
        lo, hi, ramp = grid.lo, grid.hi, grid.ramp
        full[:, :lo, 0] = ramp[:lo]
        full[:, hi:, 0] = ramp[hi:]
        full[:lo, :, 1] = ramp[:lo, None]
        full[hi:, :, 1] = ramp[hi:, None]
        return full

    def backward_map(self, assets: CharacterAssets, pose: TargetPose) -> np.ndarray:
        """(size, size, 2) float32: for each output pixel, the character pixel to sample."""
        return self._warp(assets, pose).full.copy()

    def render(self, assets: CharacterAssets, pose: TargetPose) -> np.ndarray:
        warp = self._warp(assets, pose)
        out = assets.image.copy()
        for y0, y1, x0, x1 in self._resample_boxes(assets, warp):
            # fixed-point maps (1/32 px): converting and remapping beats a float remap by ~30 %
            m1, m2 = cv2.convertMaps(warp.full[y0:y1, x0:x1], None, cv2.CV_16SC2)
            cv2.remap(assets.image, m1, m2, cv2.INTER_LINEAR, dst=out[y0:y1, x0:x1],
                      borderMode=cv2.BORDER_REPLICATE)
        pose = warp.pose
        for lid in warp.lids:
            lid.apply(out)
        if self.mouth_interior and pose.mouth_open > 0:
            a = self.arrays(assets)
            iod = float(a["meshwarp_iod"][0])
            strength = min(1.0, pose.mouth_open / MOUTH_FADE)
            draw_mouth_interior(out, pose.landmarks, a["meshwarp_palette"], iod, strength)
        if out.shape[0] != self.size:
            interp = cv2.INTER_AREA if out.shape[0] > self.size else cv2.INTER_LINEAR
            out = cv2.resize(out, (self.size, self.size), interpolation=interp)
        return out

    def _resample_boxes(self, assets: CharacterAssets, warp: _Warp) -> list[tuple[int, int, int, int]]:
        """Boxes (y0, y1, x0, x1) of the output to resample; elsewhere it is the picture itself.

        Resampling is most of a frame's cost, and two kinds of grid cell can skip it: those that
        do not move (the picture is exact there) and those that neither show nor sample anything
        visible (alpha 0 in and out: only the invisible colour under a zero alpha differs). A
        ring of one cell around the visible part is resampled all the same, so what sits next to
        visible pixels is exactly as before. Cells go in bands of BAND_CELLS rows, one box each.
        """
        ch, e = self._character(assets), self._grid(assets.size).edges
        # a cell's pixels sample inside the box of its four corners' samples (+1: bilinear),
        # looked up in blocks of SEEN_BLOCK pixels (a small integral image stays in cache)
        lo = _block(_corners(warp.pos, np.minimum), 0.0, 0, assets.size)
        hi = _block(_corners(warp.pos, np.maximum), 2.0, SEEN_BLOCK - 1, assets.size)
        seen = _box_sums(ch.seen_sum, lo[1], hi[1], lo[0], hi[0]) > 0
        seen |= ch.seen_cells
        seen = cv2.dilate(seen.view(np.uint8), _RING).view(bool)
        need = seen & _corners(warp.moving, np.logical_or)
        for b0, b1, c0, c1 in warp.patches:  # the lids and lips moved by their own maps
            r = np.searchsorted(e, [b0, b1, c0, c1], "right") - 1
            need[r[0]:r[1] + 1, r[2]:r[3] + 1] = True
        # per band of cell rows: the first and last cell column that needs resampling
        cells = need.shape[0]
        bands = np.zeros((-(-cells // BAND_CELLS) * BAND_CELLS, cells), bool)
        bands[:cells] = need
        bands = bands.reshape(-1, BAND_CELLS, cells).any(1)
        first, last = bands.argmax(1).tolist(), (cells - 1 - bands[:, ::-1].argmax(1)).tolist()
        boxes: list[tuple[int, int, int, int]] = []
        for b, any_ in enumerate(bands.any(1).tolist()):
            if not any_:
                continue
            r0, r1 = b * BAND_CELLS, min((b + 1) * BAND_CELLS, cells)
            box = (int(e[r0]), int(e[r1]), int(e[first[b]]), int(e[last[b] + 1]))
            if boxes and boxes[-1][1] == box[0] and boxes[-1][2:] == box[2:]:  # same span: merge
                box = (boxes.pop()[0], *box[1:])
            boxes.append(box)
        return boxes


def _min_area_ratio(grid: _Grid, fwd: np.ndarray, cells: np.ndarray) -> float:
    """The smallest Jacobian determinant (area ratio) of the field `fwd` over `cells`.

    Bilinear per cell, so smallest at a corner: the cross product of the cell's two edges that
    meet there. Whole-grid float32 arrays and one masked minimum: this runs every frame.
    """
    g = GRID
    p = fwd.reshape(2, g, g) + grid.nodes.reshape(2, g, g)
    top, bottom = p[:, :-1, 1:] - p[:, :-1, :-1], p[:, 1:, 1:] - p[:, 1:, :-1]  # along x
    left, right = p[:, 1:, :-1] - p[:, :-1, :-1], p[:, 1:, 1:] - p[:, :-1, 1:]  # along y
    det = top[0] * left[1] - top[1] * left[0]
    for ex, ey in ((top, right), (bottom, left), (bottom, right)):
        np.minimum(det, ex[0] * ey[1] - ex[1] * ey[0], out=det)
    cell = float(grid.nodes[0, 1] - grid.nodes[0, 0])
    return float(det[cells].min()) / (cell * cell)


def _fold_roots(grid: _Grid, base: np.ndarray | None, fwd: np.ndarray, cells: np.ndarray) -> float:
    """Largest k in [0, 1] for which the field base + k * (fwd - base) keeps every `cells` cell
    at an area ratio >= FOLD_DET (1.0: the full field does; base None: the identity).

    The field is bilinear per cell, so its Jacobian determinant is smallest at a corner; there
    it is the cross product of the two cell edges meeting at the corner, quadratic in k.
    """
    g = GRID
    nodes = grid.nodes.reshape(2, g, g)
    b = nodes if base is None else nodes + base.reshape(2, g, g)
    d = fwd.reshape(2, g, g) - (0.0 if base is None else base.reshape(2, g, g))

    def edges(p: np.ndarray) -> tuple[np.ndarray, ...]:
        p = p.astype(np.float64)
        p00, p10, p01, p11 = p[:, :-1, :-1], p[:, :-1, 1:], p[:, 1:, :-1], p[:, 1:, 1:]
        return tuple(e[:, cells] for e in (p10 - p00, p11 - p01, p01 - p00, p11 - p10))

    bx0, bx1, by0, by1 = edges(b)
    dx0, dx1, dy0, dy1 = edges(d)
    floor = FOLD_DET * float(nodes[0, 0, 1] - nodes[0, 0, 0]) ** 2
    k = 1.0
    for ex, ey, fx, fy in ((bx0, by0, dx0, dy0), (bx0, by1, dx0, dy1), (bx1, by0, dx1, dy0), (bx1, by1, dx1, dy1)):
        c0 = ex[0] * ey[1] - ex[1] * ey[0] - floor
        c1 = ex[0] * fy[1] - ex[1] * fy[0] + fx[0] * ey[1] - fx[1] * ey[0]
        c2 = fx[0] * fy[1] - fx[1] * fy[0]
        q1 = c0 + c1 + c2  # at k = 1
        bad = q1 < 0
        if not bad.any():
            continue
        c0, c1, c2 = c0[bad], c1[bad], c2[bad]
        if (c0 <= 0).any():  # already below at k = 0
            return 0.0
        # first root in (0, 1] of c0 + c1 k + c2 k^2 (it exists: positive at 0, negative at 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            disc = np.sqrt(np.maximum(c1 * c1 - 4 * c2 * c0, 0.0))
            r1 = np.where(np.abs(c2) > 1e-12, (-c1 - disc) / (2 * c2), -c0 / c1)
            r2 = np.where(np.abs(c2) > 1e-12, (-c1 + disc) / (2 * c2), np.inf)
        r = np.where((r1 > 0) & (r1 <= 1), r1, np.inf)
        r = np.minimum(r, np.where((r2 > 0) & (r2 <= 1), r2, np.inf))
        k = min(k, float(r.min()))
    return k


def _block(v: np.ndarray, add: float, round_up: int, size: int) -> np.ndarray:
    """Pixel coordinates v + add, clipped to 0..size, as SEEN_BLOCK blocks (+ round_up: ceil)."""
    v = v + np.float32(add)
    flat = v.reshape(-1, v.shape[-1])  # cv2 wants 2-D
    cv2.threshold(flat, float(size), 0.0, cv2.THRESH_TRUNC, dst=flat)
    cv2.threshold(flat, 0.0, 0.0, cv2.THRESH_TOZERO, dst=flat)
    b = v.astype(np.intp)  # truncation: the floor, now that v >= 0
    b += round_up
    b //= SEEN_BLOCK
    return b


def _corners(a: np.ndarray, op: np.ufunc) -> np.ndarray:
    """Per grid cell, `op` over the values at its four corner nodes: (..., g, g) -> (..., g - 1, g - 1)."""
    return op(op(a[..., :-1, :-1], a[..., :-1, 1:]), op(a[..., 1:, :-1], a[..., 1:, 1:]))


def _box_sums(integral: np.ndarray, y0: np.ndarray, y1: np.ndarray, x0: np.ndarray,
              x1: np.ndarray) -> np.ndarray:
    """Sums over the boxes [y0, y1) x [x0, x1) from an integral image (flat gathers: cheap)."""
    flat, w = integral.ravel(), integral.shape[1]
    y0, y1 = y0 * w, y1 * w
    return flat.take(y1 + x1) - flat.take(y0 + x1) - flat.take(y1 + x0) + flat.take(y0 + x0)


class _ForwardMap:
    """x -> x + fwd(x) with fwd bilinear between grid nodes, evaluated exactly with its Jacobian.

    Per cell the map is a + bx*tx + by*ty + bxy*tx*ty (t: position inside the cell in grid
    units), so one gather of the cell's coefficients gives the value and both columns of the
    Jacobian (per grid unit). Points are component-major, (2, n): numpy keeps an input's memory
    order through a chain of operations, and contiguous rows are what makes them fast. All
    scalars are float32: mixing in float64 makes numpy cast element by element.
    """

    def __init__(self, fwd: np.ndarray, nodes: np.ndarray) -> None:
        """`fwd`, `nodes`: (2, g * g) displacement and position of each node, row by row."""
        f32 = np.float32
        self.grid = g = round(fwd.shape[1] ** 0.5)
        self.top, self.last = f32(g - 1), f32(g - 2)  # largest grid coordinate, largest cell index
        self.cell = f32(nodes[0, 1] - nodes[0, 0])  # node spacing in pixels
        self.inv_cell = f32(1.0) / self.cell
        self.min_det = f32(0.05) * self.cell * self.cell  # Jacobian determinant 0.05 per pixel^2
        self.offset = f32(-nodes[0, 0]) * self.inv_cell
        to = (fwd + nodes).reshape(2, g, g)  # where each node goes
        a = to[:, :-1, :-1]
        by = to[:, 1:, :-1] - a
        bxy = to[:, 1:, 1:] - to[:, :-1, 1:] - by
        coef = np.concatenate([a, to[:, :-1, 1:] - a, by, bxy])  # (8, g - 1, g - 1)
        self.cells = np.ascontiguousarray(coef.reshape(8, -1).T)  # one row per cell: a gather reads 32 bytes

    def at(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """At pixels `x` (2, n): where they go, and the Jacobian's columns per grid unit, each (2, n)."""
        m = x * self.inv_cell
        m += self.offset  # grid units
        # beyond the outer nodes the map stays flat... (cv2.threshold: a far cheaper clip)
        cv2.threshold(m, float(self.top), 0.0, cv2.THRESH_TRUNC, dst=m)
        cv2.threshold(m, 0.0, 0.0, cv2.THRESH_TOZERO, dst=m)
        c = np.floor(m)
        cv2.threshold(c, float(self.last), 0.0, cv2.THRESH_TRUNC, dst=c)
        m -= c  # ...but the outer cell's slope still guides Newton back; m is now t
        c[1] *= self.top
        c[1] += c[0]
        k = self.cells.take(c[1].astype(np.intp), axis=0, mode="clip")
        k = np.ascontiguousarray(k.T)  # a strided (8, n) view would make numpy loop over pairs
        a, bx, by, bxy = k[0:2], k[2:4], k[4:6], k[6:8]
        jx = bxy * m[1]
        jx += bx
        jy = bxy * m[0]
        jy += by
        y = jy * m[1]
        y += a
        y += bx * m[0]
        return y, jx, jy


def _newton_step(r: np.ndarray, jx: np.ndarray, jy: np.ndarray, fmap: _ForwardMap, lim: np.float32) -> np.ndarray:
    """Solve [jx jy] n = r per point, (2, n) each, for n in pixels.

    Near a fold (a tiny determinant) a damped plain step instead; no step longer than `lim`.
    """
    det = jx[0] * jy[1]
    det -= jy[0] * jx[1]
    ok = det > fmap.min_det
    folded = not ok.all()
    if folded:
        det[~ok] = 1.0
    scale = fmap.cell / det
    n = np.empty_like(r)
    np.multiply(jy[1] * r[0] - jy[0] * r[1], scale, out=n[0])
    np.multiply(jx[0] * r[1] - jx[1] * r[0], scale, out=n[1])
    if folded:
        n = np.where(ok, n, np.float32(0.5) * r)
    if np.abs(n).max() > lim:  # rare; np.clip is slow on small arrays
        np.clip(n, -lim, lim, out=n)
    return n


def _residual(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Residual y - p (2, n) and its size per point (larger of |x|, |y|)."""
    r = y - p
    a = np.abs(r)
    return r, np.maximum(a[0], a[1], out=a[0])


def _invert(fwd: np.ndarray, nodes: np.ndarray, start: np.ndarray | None = None, steps: int = NEWTON_STEPS,
            margin: int = 0) -> np.ndarray:
    """Backward displacement at the grid nodes: solve x + fwd(x) = p for each node p.

    `fwd`, `nodes` and the result are (2, g * g): x and y rows, nodes row by row. Damped Newton
    on the bilinear field with its exact per-cell Jacobian: where the warp stretches strongly (a
    mouth opening from a closed line) a plain fixed-point iteration would oscillate. A step
    that makes a node's residual worse is halved instead. A node is done once its residual is
    below SOLVED_PX (after one more step). `start` is an initial backward displacement (e.g. the
    last frame's). Only nodes at least `margin` nodes from the grid's edge are solved; the
    others get 0.
    """
    fmap = _ForwardMap(fwd, nodes)
    g = fmap.grid
    inner = (slice(None), slice(margin, g - margin), slice(margin, g - margin))

    def solvable(a: np.ndarray) -> np.ndarray:  # (2, g * g) -> (2, n) contiguous
        return np.ascontiguousarray(a.reshape(2, g, g)[inner]).reshape(2, -1)

    fwd, nodes = solvable(fwd), solvable(nodes)
    start = None if start is None else solvable(start)
    p = nodes
    cold = p - fwd
    x = cold if start is None else p + start
    lim = np.float32(3.0) * fmap.cell  # never jump more than a few grid cells in one step
    solved = None  # once most nodes are done: all of them, the rest filled in at the end
    ids = None  # then: which nodes are still going
    prev, step = x, None
    prev_r = None
    for i in range(steps):
        y, jx, jy = fmap.at(x)
        r, rn = _residual(y, p)
        if i == 0 and start is not None and (far := rn > WARM_FAR_PX).any():
            x, y, jx, jy, r, rn = _cold_where_better(fmap, far, cold, p, x, y, jx, jy, r, rn)
        n = _newton_step(r, jx, jy, fmap, lim)
        worse = None if prev_r is None else rn > prev_r + np.float32(1e-3)
        if worse is not None and worse.any():  # go back and take half the last step
            step = np.where(worse, step * np.float32(0.5), n)
            prev = np.where(worse, prev, x)
            prev_r = np.where(worse, prev_r, rn)
            going = worse | (rn >= SOLVED_PX)
        else:
            step, prev, prev_r = n, x, rn
            going = rn >= SOLVED_PX
        x = prev - step
        if i + 1 == steps:
            break
        left = np.flatnonzero(going)
        if not len(left):
            break
        if len(left) * 4 < len(going):  # few left: go on with those only
            if solved is None:
                solved, ids = x, left
            else:
                solved[:, ids] = x
                ids = ids[left]
            x, prev, step, p, prev_r = (v.take(left, axis=-1) for v in (x, prev, step, p, prev_r))
    if solved is None:
        solved = x
    else:
        solved[:, ids] = x
    solved -= nodes
    back = np.zeros((2, g, g), np.float32)
    back[inner] = solved.reshape(back[inner].shape)
    return back.reshape(2, -1)


def _cold_where_better(fmap: _ForwardMap, far: np.ndarray, cold: np.ndarray, p: np.ndarray,
                       *state: np.ndarray) -> tuple[np.ndarray, ...]:
    """Where the warm start is far off (the pose jumped), restart from scratch if that is closer."""
    x, y, jx, jy, r, rn = (a.copy() for a in state)
    sel = np.flatnonzero(far)
    c = cold.take(sel, axis=1)
    cy, cjx, cjy = fmap.at(c)
    cr, crn = _residual(cy, p.take(sel, axis=1))
    better = crn < rn[sel]
    sel = sel[better]
    for dst, src in ((x, c), (y, cy), (jx, cjx), (jy, cjy), (r, cr)):
        dst[:, sel] = src[:, better]
    rn[sel] = crn[better]
    return x, y, jx, jy, r, rn


def benchmark_render(assets: CharacterAssets, frames: int = 300, renderer: Renderer | None = None,
                     threads: int = 1) -> dict:
    """Render (and retarget) times in ms over a sweep of poses: head turns, mouth, blinks.

    Pins OpenCV to `threads` threads while timing (start Python with OMP_NUM_THREADS=1 and
    OPENBLAS_NUM_THREADS=1 for a strict one-core figure). Reports wall-clock medians/p95 and the
    thread's CPU time (the honest figure on a machine that is busy with other work).
    """
    from worker.render.sweep import driver_from_character, sweep_faces
    from worker.retarget.retargeter import Retargeter, RetargetOptions

    renderer = renderer or MeshWarpRenderer(size=assets.size)
    rt = Retargeter(assets, RetargetOptions(idle=False))
    neutral = driver_from_character(assets)
    faces = sweep_faces(assets, frames)
    prev = cv2.getNumThreads()
    cv2.setNumThreads(threads)
    wall, cpu, rwall = [], [], []
    try:
        poses = []
        for f in faces:
            t0 = time.perf_counter()
            poses.append(rt.retarget(f, neutral))
            rwall.append((time.perf_counter() - t0) * 1000.0)
        for p in poses[:10]:
            renderer.render(assets, p)
        for p in poses:
            t0, c0 = time.perf_counter(), time.thread_time()
            renderer.render(assets, p)
            cpu.append((time.thread_time() - c0) * 1000.0)
            wall.append((time.perf_counter() - t0) * 1000.0)
    finally:
        cv2.setNumThreads(prev)
    w, c, r = np.array(wall), np.array(cpu), np.array(rwall)
    return {"renderer": renderer.name, "frames": len(w), "size": renderer.size, "threads": threads,
            "median_ms": round(float(np.median(w)), 3), "p95_ms": round(float(np.percentile(w, 95)), 3),
            "max_ms": round(float(w.max()), 3),
            "cpu_median_ms": round(float(np.median(c)), 3), "cpu_p95_ms": round(float(np.percentile(c, 95)), 3),
            "retarget_median_ms": round(float(np.median(r)), 3)}
