"""The mesh warp's grid solver: the coarse grid, its inversion and the fold limit.

The warp is a forward displacement field on a GRID x GRID lattice of the character's pixels
(bilinear between nodes). Drawing needs the backward map (output pixel -> character pixel), so
`invert` solves x + fwd(x) = p per node by damped Newton with the exact per-cell Jacobian
(`ForwardMap`), warm-started from the last frame. `min_area_ratio` and `fold_roots` find how far
a pose may go before the field would fold the picture over itself (FOLD_DET).
Most arrays here are small and run every frame: float32 scalars, component-major (2, n) arrays,
in-place operations, `cv2.threshold` instead of `np.clip` (numpy's per-call cost dominates).
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

from worker.render.meshwarp.prepare import GRID, grid_coords

NEWTON_STEPS = 6  # from scratch: brings all but a handful of grid nodes within 0.5 px
WARM_STEPS = 4  # from the previous frame's solution
SOLVED_PX = 0.05  # a node whose residual is below this takes one last step and stops
WARM_FAR_PX = 3.0  # a warm-started node this far off (the pose jumped) also tries the cold start
EDGE_NODES = 3.0  # grid nodes over which motion fades out towards the frame's edge
# Smallest area ratio (Jacobian determinant) the warp may squeeze a visible cell to; a pose that
# would squeeze harder (fold the picture over itself: a tear on screen) is scaled back to it.
# Just above the inversion's own limit (`ForwardMap.min_det`), where Newton stays well-posed.
FOLD_DET = 0.06


class Grid(NamedTuple):
    """The warp grid for one picture size."""

    nodes: np.ndarray  # (2, GRID^2) float32 node positions in pixels, x and y rows
    fade: np.ndarray  # (GRID^2,) how much of its motion each node keeps (0 on the outer ring)
    # pixels [0, lo) and [hi, size) lie outside the outermost nodes, where a resize clamps
    lo: int
    hi: int
    ramp: np.ndarray  # 0, 1, ..., size - 1 as float32
    edges: np.ndarray  # (GRID,) int: cell j covers pixels [edges[j], edges[j + 1]); outer cells reach the border


def make_grid(size: int) -> Grid:
    """The warp grid for pictures of `size` pixels."""
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
    return Grid(np.stack([gx.ravel(), gy.ravel()]), fade, lo, hi, np.arange(size, dtype=np.float32), edges)


def min_area_ratio(grid: Grid, fwd: np.ndarray, cells: np.ndarray) -> float:
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


def fold_roots(grid: Grid, base: np.ndarray | None, fwd: np.ndarray, cells: np.ndarray) -> float:
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


class ForwardMap:
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


def _newton_step(r: np.ndarray, jx: np.ndarray, jy: np.ndarray, fmap: ForwardMap, lim: np.float32) -> np.ndarray:
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


def invert(
    fwd: np.ndarray, nodes: np.ndarray, start: np.ndarray | None = None, steps: int = NEWTON_STEPS, margin: int = 0
) -> np.ndarray:
    """Backward displacement at the grid nodes: solve x + fwd(x) = p for each node p.

    `fwd`, `nodes` and the result are (2, g * g): x and y rows, nodes row by row. Damped Newton
    on the bilinear field with its exact per-cell Jacobian: where the warp stretches strongly (a
    mouth opening from a closed line) a plain fixed-point iteration would oscillate. A step
    that makes a node's residual worse is halved instead. A node is done once its residual is
    below SOLVED_PX (after one more step). `start` is an initial backward displacement (e.g. the
    last frame's). Only nodes at least `margin` nodes from the grid's edge are solved; the
    others get 0.
    """
    fmap = ForwardMap(fwd, nodes)
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
    solved: np.ndarray | None = None  # once most nodes are done: all of them, the rest filled in at the end
    ids: np.ndarray | None = None  # then: which nodes are still going
    prev, step = x, None
    prev_r = None  # (set with step, after the first one)
    for i in range(steps):
        y, jx, jy = fmap.at(x)
        r, rn = _residual(y, p)
        if i == 0 and start is not None and (far := rn > WARM_FAR_PX).any():
            x, y, jx, jy, r, rn = _cold_where_better(fmap, far, cold, p, x, y, jx, jy, r, rn)
        n = _newton_step(r, jx, jy, fmap, lim)
        # a node's residual got worse: go back and take half the last step
        if prev_r is not None and step is not None and (worse := rn > prev_r + np.float32(1e-3)).any():
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
            if solved is None or ids is None:  # (both None or neither)
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


def _cold_where_better(
    fmap: ForwardMap, far: np.ndarray, cold: np.ndarray, p: np.ndarray, *state: np.ndarray
) -> tuple[np.ndarray, ...]:
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
