"""The sharpening's dark line inside a figure's edge (worker.characters.sharpening_halo)."""

from __future__ import annotations

import cv2
import numpy as np

from worker.characters.sharpening_halo import lift_sharpening_halo


def _disc(n: int = 160, r: int = 50, wall: int = 235, figure: int = 120) -> tuple[np.ndarray, np.ndarray]:
    """A grey disc on a light wall, its exact matte (float)."""
    img = np.full((n, n, 3), wall, np.float32)
    cv2.circle(img, (n // 2, n // 2), r, (figure,) * 3, -1)
    alpha = np.zeros((n, n), np.float32)
    cv2.circle(alpha, (n // 2, n // 2), r, 1.0, -1)
    return img, alpha


def _sharpened(img: np.ndarray, amount: float = 1.0) -> np.ndarray:
    """An unsharp mask as a camera applies it: the image pushed away from its blur."""
    blur = cv2.GaussianBlur(img, (0, 0), 1.2)
    return np.clip(img + amount * (img - blur), 0, 255).round().astype(np.uint8)


def _ring(alpha: np.ndarray, lo: float, hi: float) -> np.ndarray:
    depth = cv2.distanceTransform((alpha >= 0.5).astype(np.uint8), cv2.DIST_L2, 5)
    return (depth > lo) & (depth <= hi)


def test_the_dark_line_a_sharpened_photo_draws_inside_the_edge_is_lifted():
    img, alpha = _disc()
    pic = _sharpened(img)
    fg = pic.astype(np.float32) / 255.0
    edge = _ring(alpha, 0, 2)
    assert fg[edge].mean() * 255 < 110  # the sharpening's dip: darker than the figure (120)
    out = lift_sharpening_halo(pic, fg, alpha)
    assert abs(out[edge].mean() * 255 - 120) < 3  # back to the figure's own grey
    inside = _ring(alpha, 4, 100)
    assert np.array_equal(out[inside], fg[inside])  # nothing away from the edge moves
    assert np.array_equal(out[alpha < 0.5], fg[alpha < 0.5])


def test_a_light_line_inside_with_a_dark_one_beside_it_is_lowered():
    img, alpha = _disc(wall=40, figure=150)  # a light figure on a dark wall: the signs swap
    pic = _sharpened(img)
    fg = pic.astype(np.float32) / 255.0
    edge = _ring(alpha, 0, 2)
    assert fg[edge].mean() * 255 > 160
    out = lift_sharpening_halo(pic, fg, alpha)
    assert abs(out[edge].mean() * 255 - 150) < 3


def test_a_drawn_outline_without_a_partner_on_the_wall_is_kept():
    img, alpha = _disc()
    cv2.circle(img, (80, 80), 49, (30, 30, 30), 2)  # line art: dark, but the wall beside it is even
    pic = img.round().astype(np.uint8)
    fg = pic.astype(np.float32) / 255.0
    assert np.array_equal(lift_sharpening_halo(pic, fg, alpha), fg)


def test_a_figure_with_texture_keeps_its_own_range():
    img, alpha = _disc()
    yy, xx = np.mgrid[:160, :160]
    img[(alpha > 0) & ((xx // 3 + yy // 3) % 2 == 0)] = 90  # a coarse check inside: 90 and 120
    pic = _sharpened(img, 0.6)
    fg = pic.astype(np.float32) / 255.0
    out = lift_sharpening_halo(pic, fg, alpha)
    edge = _ring(alpha, 0, 2)
    # only what lies below the figure's own darkest nearby is lifted, to that darkest
    assert (out[edge] >= fg[edge] - 1e-6).all()
    assert out[edge].mean() * 255 < 112
