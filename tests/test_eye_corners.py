"""`worker.tools.eye_corners`: finding where a backward map draws a picture's point."""

from __future__ import annotations

import numpy as np

from worker.tools.eye_corners import drawn_at


def test_a_point_is_found_where_an_affine_map_draws_it():
    """The map samples the picture at A @ (x, y) + b: the picture's point s is drawn at
    A^-1 (s - b), found to a hundredth of a pixel (the nearest pixel alone is off by up to 0.7)."""
    a = np.array([[1.08, 0.05], [-0.03, 0.93]])
    b = np.array([-6.3, 4.1])
    ys, xs = np.mgrid[0:200, 0:200].astype(np.float64)
    backward = (np.stack([xs, ys], -1) @ a.T + b).astype(np.float32)
    for s in ([80.3, 95.7], [120.0, 60.45], [33.3, 150.9]):
        want = np.linalg.solve(a, np.array(s) - b)
        got = drawn_at(backward, want + [4.0, -3.0], np.array(s))
        assert np.abs(got - want).max() < 0.01, (got, want)
