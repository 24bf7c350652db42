"""`meshwarp`: the default renderer. CPU only, no model weights.

Per frame: control displacements (landmarks, head halo, border pins) -> one matrix product with
the precomputed thin-plate-spline matrix gives the forward warp on a coarse grid of the
character's pixels -> a few Newton steps invert it on the grid (output pixel -> source pixel)
-> upsample -> `cv2.remap` of RGBA together (the alpha matte warps with the picture) -> the
mouth interior is composited inside the warped inner lips.
"""

from __future__ import annotations

import time

import cv2
import numpy as np

from worker.characters.assets import CharacterAssets
from worker.render.base import Renderer
from worker.render.eyes import EyeRig
from worker.render.meshwarp_prepare import GRID, grid_coords, prepare_meshwarp
from worker.render.mouth import draw_mouth_interior
from worker.retarget.pose import TargetPose

NEWTON_STEPS = 6  # enough to bring the worst grid node within ~2 px, typically < 0.5 px
MOUTH_FADE = 0.03  # mouth opening (inter-ocular units) over which the interior fades in
STILL_PX = 0.05  # backward displacements below this snap to 0: a still background stays bit-identical
EYE_PATCH_FROM = 0.08  # eye closure above which lids are drawn by the full-resolution patch
EDGE_NODES = 3.0  # grid nodes over which motion fades out towards the frame's edge


class MeshWarpRenderer(Renderer):
    name = "meshwarp"

    def __init__(self, size: int = 512, mouth_interior: bool = True) -> None:
        super().__init__(size)
        self.mouth_interior = mouth_interior
        self._fallback: dict[str, dict[str, np.ndarray]] = {}
        self._grids: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._rigs: dict[str, list[tuple[EyeRig, np.ndarray, np.ndarray, int]]] = {}

    def arrays(self, assets: CharacterAssets) -> dict[str, np.ndarray]:
        """The precomputed arrays (from the cache; built here if the assets came without them)."""
        a = assets.arrays
        if "meshwarp_grid_matrix" in a and a["meshwarp_grid_matrix"].shape[0] == GRID * GRID:
            return a
        if assets.key not in self._fallback:
            self._fallback[assets.key] = prepare_meshwarp(assets.image, assets.landmarks)
        return self._fallback[assets.key]

    def _eye_rigs(self, assets: CharacterAssets, idx: np.ndarray) -> list:
        """Per eye: the rig and where its lids / iris sit among the spline's control points."""
        if assets.key not in self._rigs:
            pos = {int(j): i for i, j in enumerate(idx)}
            rigs = []
            for left in (True, False):
                rig = EyeRig(np.asarray(assets.landmarks, np.float64), left)
                rigs.append((rig, np.array([pos[int(j)] for j in rig.upper]),
                             np.array([pos[int(j)] for j in rig.lower]), pos[rig.iris]))
            self._rigs[assets.key] = rigs
        return self._rigs[assets.key]

    def _grid(self, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if size not in self._grids:
            g = grid_coords(size).astype(np.float32)
            gx, gy = np.meshgrid(g, g)
            nodes = np.stack([gx, gy], -1)
            ix, iy = np.meshgrid(np.arange(size, dtype=np.float32), np.arange(size, dtype=np.float32))
            # 0 on the outermost ring of nodes (so the resized map is exactly still at the edge),
            # rising smoothly to 1 over the next few nodes
            k = np.minimum(np.arange(GRID), np.arange(GRID)[::-1]).astype(np.float32)
            ramp = np.clip((k - 0.0) / EDGE_NODES, 0.0, 1.0)
            ramp = ramp * ramp * (3 - 2 * ramp)
            fade = np.minimum(ramp[:, None], ramp[None, :])[..., None].astype(np.float32)
            self._grids[size] = (nodes, np.stack([ix, iy], -1), fade)
        return self._grids[size]

    def _maps(self, assets: CharacterAssets, pose: TargetPose) -> tuple[np.ndarray, tuple | None]:
        """Full-size backward map and the box of pixels that move (None: nothing moves)."""
        a = self.arrays(assets)
        size = assets.size
        idx = a["meshwarp_ctrl_idx"]
        tgt = pose.landmarks[idx, :2].astype(np.float32)
        # Closing eyes: the spline moves the eye as if open and a full-resolution patch
        # closes the lids. Open eyes: the spline follows the lids directly (cheaper). Both put
        # the lids in the same place, so switching between them at EYE_PATCH_FROM is seamless.
        rigs = [rig for rig in self._eye_rigs(assets, idx)
                if (pose.eye_close_left if rig[0].left else pose.eye_close_right) > EYE_PATCH_FROM]
        for rig, up, lo, iris in rigs:
            tgt[up], tgt[lo], tgt[iris] = rig.open_targets(pose.landmarks, pose.gaze)
        d_lm = tgt - assets.landmarks[idx, :2]
        halo = a["meshwarp_halo"]
        hm = np.asarray(pose.head_matrix, np.float32)
        d_halo = (halo @ hm[:2, :3].T + hm[:2, 3] - halo[:, :2]) * a["meshwarp_halo_share"][:, None]
        n_pins = int(a["meshwarp_n_pins"][0])
        disp = np.concatenate([d_lm, d_halo, np.zeros((n_pins, 2), np.float32)]).astype(np.float32)
        fwd = (a["meshwarp_grid_matrix"] @ disp).reshape(GRID, GRID, 2)
        nodes, ident, fade = self._grid(size)
        back = _invert(fwd, nodes, size)
        # The frame's edge never moves (exactly), nor does anything that would move by less
        # than a twentieth of a pixel: a still background stays bit-identical, not shimmering.
        back *= fade
        back[np.abs(back).max(-1) < STILL_PX] = 0.0
        full = cv2.resize(back, (size, size), interpolation=cv2.INTER_LINEAR)
        full += ident
        # the region that moves, in pixels (y0, y1, x0, x1); None when nothing does
        box = None
        moving = np.abs(back).max(-1) > 0
        if moving.any():
            rows, cols = np.nonzero(moving.any(1))[0], np.nonzero(moving.any(0))[0]
            cell = size / GRID
            box = (max(int((rows[0] - 1) * cell), 0), min(int((rows[-1] + 2) * cell) + 1, size),
                   max(int((cols[0] - 1) * cell), 0), min(int((cols[-1] + 2) * cell) + 1, size))
        for rig, *_ in rigs:
            b = rig.remap_lids(full, pose.landmarks)
            if b is not None:
                box = b if box is None else (min(box[0], b[0]), max(box[1], b[1]), min(box[2], b[2]),
                                             max(box[3], b[3]))
        return full, box

    def backward_map(self, assets: CharacterAssets, pose: TargetPose) -> np.ndarray:
        """(size, size, 2) float32: for each output pixel, the character pixel to sample."""
        return self._maps(assets, pose)[0]

    def render(self, assets: CharacterAssets, pose: TargetPose) -> np.ndarray:
        full, box = self._maps(assets, pose)
        out = assets.image.copy()
        # only the part that moves is resampled (the rest is the picture itself)
        if box is not None:
            y0, y1, x0, x1 = box
            out[y0:y1, x0:x1] = cv2.remap(assets.image, full[y0:y1, x0:x1], None, cv2.INTER_LINEAR,
                                          borderMode=cv2.BORDER_REPLICATE)
        if self.mouth_interior and pose.mouth_open > 0:
            a = self.arrays(assets)
            iod = float(a["meshwarp_iod"][0])
            strength = min(1.0, pose.mouth_open / MOUTH_FADE)
            draw_mouth_interior(out, pose.landmarks, a["meshwarp_palette"], iod, strength)
        if out.shape[0] != self.size:
            interp = cv2.INTER_AREA if out.shape[0] > self.size else cv2.INTER_LINEAR
            out = cv2.resize(out, (self.size, self.size), interpolation=interp)
        return out


def _invert(fwd: np.ndarray, nodes: np.ndarray, size: int) -> np.ndarray:
    """Backward displacement at the grid nodes: solve x + fwd(x) = p for each node p.

    Newton steps on the bilinear field with its finite-difference Jacobian; where the warp
    stretches strongly (a mouth opening from a closed line) a plain fixed-point iteration would
    oscillate. Returns x - p.
    """
    scale = GRID / size
    # d fwd / d (grid index) -> per pixel
    jx = np.gradient(fwd, axis=1) * scale  # d/dx
    jy = np.gradient(fwd, axis=0) * scale  # d/dy
    field = np.concatenate([fwd, jx, jy], axis=-1)  # (G, G, 6): f, df/dx, df/dy
    x = nodes - fwd
    lim = 3.0 / scale  # never jump more than a few grid cells in one step
    for _ in range(NEWTON_STEPS):
        m = (x + 0.5) * scale - 0.5
        s = cv2.remap(field, m[..., 0], m[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        r0 = x[..., 0] + s[..., 0] - nodes[..., 0]  # residual
        r1 = x[..., 1] + s[..., 1] - nodes[..., 1]
        a11, a21, a12, a22 = 1.0 + s[..., 2], s[..., 3], s[..., 4], 1.0 + s[..., 5]
        det = a11 * a22 - a12 * a21
        # a fold (det <= 0) or near-fold: a damped fixed-point step there instead
        ok = det > 0.05
        inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
        half = np.where(ok, 0.0, 0.5)
        x[..., 0] -= np.clip((a22 * r0 - a12 * r1) * inv + half * r0, -lim, lim)
        x[..., 1] -= np.clip((a11 * r1 - a21 * r0) * inv + half * r1, -lim, lim)
    return (x - nodes).astype(np.float32)


def benchmark_render(assets: CharacterAssets, frames: int = 300, renderer: Renderer | None = None,
                     threads: int = 1) -> dict:
    """Median / p95 render time (ms) over a sweep of poses (head turns, mouth, blinks).

    Pins OpenCV to `threads` threads while timing (set OMP/OPENBLAS_NUM_THREADS=1 in the
    environment before starting Python for a strict one-core figure).
    """
    from worker.render.sweep import pose_sweep

    renderer = renderer or MeshWarpRenderer(size=assets.size)
    poses = pose_sweep(assets, frames)
    prev = cv2.getNumThreads()
    cv2.setNumThreads(threads)
    try:
        for p in poses[:10]:
            renderer.render(assets, p)
        times = []
        for p in poses:
            t0 = time.perf_counter()
            renderer.render(assets, p)
            times.append((time.perf_counter() - t0) * 1000.0)
    finally:
        cv2.setNumThreads(prev)
    t = np.array(times)
    return {"renderer": renderer.name, "frames": len(t), "size": renderer.size, "threads": threads,
            "median_ms": round(float(np.median(t)), 3), "p95_ms": round(float(np.percentile(t, 95)), 3),
            "max_ms": round(float(t.max()), 3)}
