"""`MeshWarpRenderer`: the per-frame side of the mesh warp (see the package for the whole chain).

Per character it derives its state once from the prepared arrays (`prepare`); per frame it
builds the forward field, scales back a pose that would fold (`grid.fold_roots`), inverts it on
the grid (`grid.invert`), upsamples, lets the eyelid and lip patches rewrite their parts of the
map (`eyes`, `mouth_rig`), resamples only the boxes that move and show, and paints the mouth
interior (`mouth`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

import cv2
import numpy as np

from worker.characters.assets import CharacterAssets
from worker.characters.preparer import CutOut
from worker.render.base import FrameInput, Renderer
from worker.render.meshwarp.eyes import EyeRig, LidPatch, lid_colours, paint_lids
from worker.render.meshwarp.grid import (
    FOLD_DET,
    NEWTON_STEPS,
    WARM_STEPS,
    Grid,
    fold_roots,
    invert,
    make_grid,
    min_area_ratio,
)
from worker.render.meshwarp.jaw import JawRelief
from worker.render.meshwarp.mouth import draw_mouth_interior
from worker.render.meshwarp.mouth_rig import MouthRig
from worker.render.meshwarp.prepare import GRID, PREPARE_VERSION, flat_oval_depth, halo_sources, prepare_meshwarp
from worker.retarget.pose import TargetPose
from worker.track import landmark_ids as L

MOUTH_FADE = 0.03  # mouth opening (inter-ocular units) over which the interior fades in
STILL_PX = 0.05  # backward displacements below this snap to 0: a still background stays bit-identical
BAND_CELLS = 4  # grid-cell rows resampled as one box (fewer calls vs. less skipped)
SEEN_BLOCK = 4  # pixels per side of the blocks in which visibility is looked up
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
    jaw: JawRelief  # pushes the skin under the lower lip along with it
    seen_sum: np.ndarray  # integral image of "alpha > 0 anywhere in the block", per SEEN_BLOCK pixels
    seen_cells: np.ndarray  # (GRID - 1, GRID - 1) bool: grid cells with anything visible in the picture
    fold_cells: np.ndarray  # (GRID - 1, GRID - 1) bool: cells that must not fold (visible, and a ring)
    points: np.ndarray  # (478, 2) float32 all landmarks as drawn
    pivot_z: np.float32  # the head's depth centre (a 2-D head motion leaves out what depth adds)
    human: bool = True  # False (animal, drawn): lids painted in the picture's colours, no teeth
    lid_colours: np.ndarray | None = None  # (2 eyes: left, right; lid / line; rgb): shut lids' colours


def _lid_colours(prepared: dict, image: np.ndarray, lm: np.ndarray) -> np.ndarray:
    """Each eye's lid and lash colours: cached for a non-human character (its painted lids), else
    taken from the picture here (a few ms, once per character: a human's shut lid has its lash line)."""
    if "meshwarp_lid_colours" in prepared:
        return np.asarray(prepared["meshwarp_lid_colours"], np.float32)
    return np.stack([lid_colours(image, lm, left) for left in (True, False)])


class _Warp(NamedTuple):
    """One frame's warp."""

    full: np.ndarray  # (size, size, 2) backward map: a buffer the next frame overwrites
    pos: np.ndarray  # (2, GRID, GRID) where each grid node samples the picture
    moving: np.ndarray  # (GRID, GRID) bool: the nodes that move
    patches: list[tuple[int, int, int, int]]  # boxes (y0, y1, x0, x1) the lid and lip patches rewrote
    lids: list[tuple[LidPatch, bool]]  # the lid patches (their boxes are in `patches` too) and their eye (left?)
    pose: TargetPose  # the pose drawn (scaled back if it would have folded the picture)


class MeshWarpRenderer(Renderer):
    name = "meshwarp"
    prepare_version = PREPARE_VERSION

    def __init__(self, size: int = 512, mouth_interior: bool = True, warm_start: bool = True) -> None:
        super().__init__(size)
        self.mouth_interior = mouth_interior
        self.warm_start = warm_start  # False: every frame solved from scratch (history-free)
        self._grids: dict[int, Grid] = {}
        self._chars: dict[str, _Character] = {}
        self._warm: dict[str, np.ndarray] = {}
        self._full: np.ndarray | None = None  # the full-size map, reused frame to frame

    def prepare(self, character: CutOut) -> dict[str, np.ndarray]:
        """The solved spline, halo and mouth colours of a character (see `prepare`)."""
        return prepare_meshwarp(character.image, character.landmarks, character.kind)

    def _character(self, assets: CharacterAssets) -> _Character:
        """Per-character state, derived once from the cached arrays."""
        if assets.key not in self._chars:
            a = self.prepared(assets)
            idx = np.asarray(a["meshwarp_ctrl_idx"])
            n_lm, halo = len(idx), np.asarray(a["meshwarp_halo"], np.float64)
            grid_matrix = np.asarray(a["meshwarp_grid_matrix"], np.float64)
            # halo displacement = share * ([xyz 1] @ (head - [I 0]).T): linear in the head matrix
            to_halo = grid_matrix[:, n_lm : n_lm + len(halo)]
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
                eyes.append(
                    (
                        rig,
                        np.array([pos[int(j)] for j in rig.upper]),
                        np.array([pos[int(j)] for j in rig.lower]),
                        pos[rig.iris],
                    )
                )
            mouth = MouthRig(lm[L.INNER_UPPER, :2], lm[L.INNER_LOWER, :2])
            rest = np.ascontiguousarray(assets.landmarks[idx, :2], np.float32)
            # anything visible per block of SEEN_BLOCK pixels, as an integral image
            n = -(-assets.size // SEEN_BLOCK) * SEEN_BLOCK
            seen = np.zeros((n, n), np.uint8)
            seen[: assets.size, : assets.size] = assets.image[..., 3] > 0
            seen = seen.reshape(n // SEEN_BLOCK, SEEN_BLOCK, -1, SEEN_BLOCK).max((1, 3))
            seen_sum = cv2.integral(seen)
            e = self._grid(assets.size).edges
            b0, b1 = e // SEEN_BLOCK, -(-e // SEEN_BLOCK)  # cells in blocks, rounded outwards
            seen_cells = _box_sums(seen_sum, b0[:-1, None], b1[1:, None], b0[None, :-1], b1[None, 1:]) > 0
            fold_cells = cv2.dilate(seen_cells.astype(np.uint8), _RING).astype(bool)
            self._chars[assets.key] = _Character(
                idx,
                rest,
                linear,
                eyes,
                mouth,
                JawRelief(idx, flat_oval_depth(lm)[idx]),
                seen_sum,
                seen_cells,
                fold_cells,
                np.ascontiguousarray(lm[:, :2], np.float32),
                np.float32(lm[L.SKULL, 2].mean()),
                int(a["meshwarp_kind"][0]) == 0,
                _lid_colours(a, assets.image, lm),
            )
        return self._chars[assets.key]

    def _grid(self, size: int) -> Grid:
        """The grid for pictures of `size` pixels."""
        if size not in self._grids:
            self._grids[size] = make_grid(size)
        return self._grids[size]

    def _forward(self, ch: _Character, pose: TargetPose, eyes: list) -> np.ndarray:
        """(2, GRID^2) forward displacement (x and y rows) of the grid nodes for `pose`."""
        tgt = pose.landmarks[ch.ctrl_idx, :2].astype(np.float32)
        for rig, up, lo, iris in eyes:
            tgt[up], tgt[lo], tgt[iris] = rig.open_targets(pose.landmarks, pose.gaze)
        ch.jaw.apply(tgt, pose.head_matrix)
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

    def _unfold(self, ch: _Character, grid: Grid, pose: TargetPose, fwd: np.ndarray) -> tuple[np.ndarray, TargetPose]:
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
        if min_area_ratio(grid, fwd, mask) >= FOLD_DET:  # nearly every frame: a quick check only
            return fwd, pose
        h = np.asarray(pose.head_matrix, np.float32)
        a, t = h[:2, :2], h[:2, 3] + h[:2, 2] * ch.pivot_z
        base_pts = ch.points @ a.T + t
        flat = np.zeros((3, 4), np.float32)
        flat[:2, :2], flat[:2, 3], flat[2, 2] = a, t, 1.0
        base = self._field(ch, base_pts[ch.ctrl_idx], flat)
        kb = np.float32(fold_roots(grid, None, base, mask))
        if kb < 1.0:  # the 2-D motion folds by itself: scale it back first (as far as needed only,
            base *= kb  # so that a pose moving through here changes smoothly)
            base_pts = ch.points + kb * (base_pts - ch.points)
        k = np.float32(fold_roots(grid, base, fwd, mask))
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
        back = invert(fwd, grid.nodes, warm, steps, margin=1)
        self._warm[assets.key] = back
        # The frame's edge never moves (exactly), nor does anything that would move by less
        # than a twentieth of a pixel: a still background stays bit-identical, not shimmering.
        back = back * grid.fade
        a = np.abs(back)
        moving = np.maximum(a[0], a[1], out=a[0]) >= STILL_PX
        back[:, ~moving] = 0.0
        back += grid.nodes  # positions, not displacements: the resize then yields the full map
        full = self._upsample(back, grid, size)
        lids = []
        pinned = [b for rig, *_ in eyes if (b := rig.pin_corners(full, pose.landmarks)) is not None]
        for rig, *_ in eyes if ch.human else ():
            if (p := rig.remap_lids(full, pose.landmarks, pose.head_matrix)) is not None:
                lids.append((p, rig.left))
        patches = pinned + [p.box for p, _ in lids]
        if (b := ch.mouth.remap_lips(full, pose.landmarks)) is not None:
            patches.append(b)
        return _Warp(full, back.reshape(2, GRID, GRID), moving.reshape(GRID, GRID), patches, lids, pose)

    def _upsample(self, pos: np.ndarray, grid: Grid, size: int) -> np.ndarray:
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

    def draw(self, assets: CharacterAssets, inp: FrameInput) -> np.ndarray:
        """The `Renderer` entry: the mesh warp draws from the retargeted pose alone."""
        if inp.pose is None:
            raise ValueError(f"renderer {self.name} draws from a retargeted pose: FrameInput.pose is missing")
        return self.render(assets, inp.pose)

    def render(self, assets: CharacterAssets, pose: TargetPose) -> np.ndarray:
        """`assets` warped to `pose`: straight RGBA uint8 (size, size, 4)."""
        warp = self._warp(assets, pose)
        out = assets.image.copy()
        for y0, y1, x0, x1 in self._resample_boxes(assets, warp):
            # fixed-point maps (1/32 px): converting and remapping beats a float remap by ~30 %
            m1, m2 = cv2.convertMaps(warp.full[y0:y1, x0:x1], None, cv2.CV_16SC2)
            cv2.remap(assets.image, m1, m2, cv2.INTER_LINEAR, dst=out[y0:y1, x0:x1], borderMode=cv2.BORDER_REPLICATE)
        pose = warp.pose
        ch = self._character(assets)
        if warp.lids:
            assert ch.lid_colours is not None  # `_character` works them out for every character
            for lid, left in warp.lids:
                lid.apply(out, ch.lid_colours[0 if left else 1][1])
        if not ch.human and ch.lid_colours is not None:
            for (rig, *_), colours in zip(ch.eyes, ch.lid_colours, strict=True):
                paint_lids(out, rig, pose.landmarks, colours)
        if self.mouth_interior and pose.mouth_open > 0:
            a = self.prepared(assets)
            iod = float(a["meshwarp_iod"][0])
            strength = min(1.0, pose.mouth_open / MOUTH_FADE)
            draw_mouth_interior(
                out,
                pose.landmarks,
                a["meshwarp_palette"],
                iod,
                strength,
                teeth=ch.human,
                drawn=np.asarray(assets.landmarks) if ch.human else None,
            )
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
            need[r[0] : r[1] + 1, r[2] : r[3] + 1] = True
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


def _box_sums(integral: np.ndarray, y0: np.ndarray, y1: np.ndarray, x0: np.ndarray, x1: np.ndarray) -> np.ndarray:
    """Sums over the boxes [y0, y1) x [x0, x1) from an integral image (flat gathers: cheap)."""
    flat, w = integral.ravel(), integral.shape[1]
    y0, y1 = y0 * w, y1 * w
    return flat.take(y1 + x1) - flat.take(y0 + x1) - flat.take(y1 + x0) + flat.take(y0 + x0)
