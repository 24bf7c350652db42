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

NEWTON_STEPS = 6  # from scratch: brings all but a handful of grid nodes within 0.5 px
WARM_STEPS = 4  # from the previous frame's solution
MOUTH_FADE = 0.03  # mouth opening (inter-ocular units) over which the interior fades in
STILL_PX = 0.05  # backward displacements below this snap to 0: a still background stays bit-identical
EYE_PATCH_FROM = 0.08  # eye closure above which lids are drawn by the full-resolution patch
EDGE_NODES = 3.0  # grid nodes over which motion fades out towards the frame's edge


class MeshWarpRenderer(Renderer):
    name = "meshwarp"

    def __init__(self, size: int = 512, mouth_interior: bool = True, warm_start: bool = True) -> None:
        super().__init__(size)
        self.mouth_interior = mouth_interior
        self.warm_start = warm_start  # False: every frame solved from scratch (history-free)
        self._fallback: dict[str, dict[str, np.ndarray]] = {}
        self._grids: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._rigs: dict[str, list[tuple[EyeRig, np.ndarray, np.ndarray, int]]] = {}
        self._warm: dict[str, np.ndarray] = {}

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
            ramp = np.clip(k / EDGE_NODES, 0.0, 1.0)
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
        # warm start from the previous frame's solution: consecutive frames differ little
        warm = self._warm.get(assets.key) if self.warm_start else None
        back = _invert(fwd, nodes, size, warm, WARM_STEPS if warm is not None else NEWTON_STEPS)
        self._warm[assets.key] = back.copy()
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
            # fixed-point maps (1/32 px): converting and remapping beats a float remap by ~30 %
            m1, m2 = cv2.convertMaps(full[y0:y1, x0:x1], None, cv2.CV_16SC2)
            out[y0:y1, x0:x1] = cv2.remap(assets.image, m1, m2, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if self.mouth_interior and pose.mouth_open > 0:
            a = self.arrays(assets)
            iod = float(a["meshwarp_iod"][0])
            strength = min(1.0, pose.mouth_open / MOUTH_FADE)
            draw_mouth_interior(out, pose.landmarks, a["meshwarp_palette"], iod, strength)
        if out.shape[0] != self.size:
            interp = cv2.INTER_AREA if out.shape[0] > self.size else cv2.INTER_LINEAR
            out = cv2.resize(out, (self.size, self.size), interpolation=interp)
        return out


def _invert(fwd: np.ndarray, nodes: np.ndarray, size: int, start: np.ndarray | None = None,
            steps: int = 6) -> np.ndarray:
    """Backward displacement at the grid nodes: solve x + fwd(x) = p for each node p.

    Damped Newton on the bilinear field with its exact per-cell Jacobian: where the warp
    stretches strongly (a mouth opening from a closed line) a plain fixed-point iteration would
    oscillate. A step that makes a node's residual worse is halved instead. `start` is an
    initial backward displacement (e.g. the last frame's). Returns x - p.
    """
    g = fwd.shape[0]
    scale = np.float32(g / size)
    fx, fy = np.ascontiguousarray(fwd[..., 0]), np.ascontiguousarray(fwd[..., 1])

    def diff(a: np.ndarray, axis: int) -> np.ndarray:  # per-cell derivative, per pixel
        d = np.diff(a, axis=axis) * scale
        return np.ascontiguousarray(np.concatenate([d, d.take([-1], axis=axis)], axis=axis))

    # x-derivatives of (fx, fy) between nodes j and j+1; y-derivatives likewise
    dxx, dxy, dyx, dyy = diff(fx, 1), diff(fy, 1), diff(fx, 0), diff(fy, 0)
    px, py = np.ascontiguousarray(nodes[..., 0]), np.ascontiguousarray(nodes[..., 1])
    lim = np.float32(3.0 / scale)  # never jump more than a few grid cells in one step
    x0, x1 = px - fx, py - fy
    if start is not None:
        # per node, whichever start is closer: the warm one unless the pose jumped there
        def residual(a0: np.ndarray, a1: np.ndarray) -> np.ndarray:
            mx = np.clip((a0 + 0.5) * scale - 0.5, 0, g - 1.0)
            my = np.clip((a1 + 0.5) * scale - 0.5, 0, g - 1.0)
            return np.maximum(np.abs(a0 + cv2.remap(fx, mx, my, cv2.INTER_LINEAR) - px),
                              np.abs(a1 + cv2.remap(fy, mx, my, cv2.INTER_LINEAR) - py))

        w0, w1 = px + start[..., 0], py + start[..., 1]
        better = residual(w0, w1) < residual(x0, x1)
        x0, x1 = np.where(better, w0, x0), np.where(better, w1, x1)
    prev0, prev1 = x0.copy(), x1.copy()
    s0 = np.zeros_like(x0)
    s1 = np.zeros_like(x0)
    prev_r = np.full(x0.shape, np.inf, np.float32)
    top = np.float32(g - 1)
    lin = cv2.INTER_LINEAR
    for _ in range(steps):
        mx = np.clip((x0 + 0.5) * scale - 0.5, 0, top)
        my = np.clip((x1 + 0.5) * scale - 0.5, 0, top)
        cx = np.minimum(np.floor(mx), top - 1)
        cy = np.minimum(np.floor(my), top - 1)
        r0 = x0 + cv2.remap(fx, mx, my, lin) - px
        r1 = x1 + cv2.remap(fy, mx, my, lin) - py
        rn = np.maximum(np.abs(r0), np.abs(r1))
        worse = rn > prev_r + 1e-3
        if worse.any():  # that step made things worse: go back and take half of it
            s0 = np.where(worse, s0 * 0.5, s0)
            s1 = np.where(worse, s1 * 0.5, s1)
            x0 = np.where(worse, prev0 - s0, x0)
            x1 = np.where(worse, prev1 - s1, x1)
        a11 = 1.0 + cv2.remap(dxx, cx, my, lin)  # exact x-derivative inside the cell
        a21 = cv2.remap(dxy, cx, my, lin)
        a12 = cv2.remap(dyx, mx, cy, lin)
        a22 = 1.0 + cv2.remap(dyy, mx, cy, lin)
        det = a11 * a22 - a12 * a21
        ok = det > 0.05
        inv = 1.0 / np.where(ok, det, 1.0)
        n0 = np.where(ok, (a22 * r0 - a12 * r1) * inv, 0.5 * r0)  # near a fold: damped step
        n1 = np.where(ok, (a11 * r1 - a21 * r0) * inv, 0.5 * r1)
        np.clip(n0, -lim, lim, out=n0)
        np.clip(n1, -lim, lim, out=n1)
        keep = worse
        prev0 = np.where(keep, prev0, x0)
        prev1 = np.where(keep, prev1, x1)
        prev_r = np.where(keep, prev_r, rn)
        s0 = np.where(keep, s0, n0)
        s1 = np.where(keep, s1, n1)
        x0 = np.where(keep, x0, x0 - n0)
        x1 = np.where(keep, x1, x1 - n1)
    return np.stack([x0 - px, x1 - py], -1).astype(np.float32)


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
