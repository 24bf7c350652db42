"""Edge colours of a picture that brings its own alpha: no old background, nothing for warping to bleed in.

A cut-out saved by an image editor or a background remover keeps, in its semi-transparent edge
pixels, some of the colour of the background it was cut from (shown over a dark scene as a light
rim, over a light one as a dark rim), and under its fully transparent pixels whatever colour the
tool left (often white or black). Two steps fix both without touching the alpha:

- `warp_premultiplied` resamples (crops, scales) with colours weighted by alpha, so the colour
  under a zero alpha never mixes into the visible pixels next to it;
- `defringe` (what editors call defringe) gives each semi-transparent pixel, and each fully
  transparent one, the colour of the figure's opaque pixels next to it, so the soft edge shows
  figure colour fading out, and the renderer's bilinear warp, which samples between pixels,
  pulls in figure colour only. Keeping part of the pixel's own colour (a pixel of alpha a keeping
  a of it) is not enough: an edge mixed half and half with white keeps a quarter of the white,
  a visible rim over a dark scene.

Fully opaque pixels and the alpha stay exactly as they are. Pure numpy/OpenCV, once per character.
"""

from __future__ import annotations

import cv2
import numpy as np

REACH = 3  # px: the figure colour a soft edge pixel takes is averaged this close to it ...
FAR = 8  # ... or FAR times as far where nothing opaque is that close (a long soft edge)


def _opaque_mean_at(rgb: np.ndarray, opaque: np.ndarray, at: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray]:
    """At the pixels `at` (bool): the mean colour of the opaque pixels within r px (FAR*r where
    none is that close), and whether any was found. Only the box sums run over the whole picture."""
    picked = rgb * opaque[..., None]
    mean = np.zeros((int(at.sum()), 3), np.float32)
    found = np.zeros(len(mean), bool)
    for radius in (FAR * r, r):  # the nearer estimate wins where it exists
        k = (2 * radius + 1, 2 * radius + 1)
        w = cv2.blur(opaque, k, borderType=cv2.BORDER_CONSTANT)[at]
        total = cv2.blur(picked, k, borderType=cv2.BORDER_CONSTANT)[at]
        has = w > 1e-4
        mean[has] = total[has] / w[has, None]
        found |= has
    return mean, found


def defringe(rgba: np.ndarray, reach: int = REACH, estimated: bool = False) -> np.ndarray:
    """Straight RGBA uint8 with its soft edge decontaminated (see the module doc); alpha and fully
    opaque pixels unchanged. A picture without opaque pixels is returned as it is.

    `estimated`: the soft edge's colours are already foreground estimates (our matte's blur
    fusion, over a band several px deep where hair and texture must keep their detail): then a
    pixel of alpha a keeps a of its own colour and takes the rest from the figure next to it,
    which pulls only the faint outer pixels fully to the figure colour."""
    alpha = rgba[..., 3]
    if not (alpha < 255).any() or not (alpha == 255).any():
        return rgba.copy()
    # the soft pixels, and the clear ones a bilinear sample next to a visible pixel can reach
    visible = cv2.dilate((alpha > 0).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    soft = (alpha < 255) & visible
    rgb = rgba[..., :3].astype(np.float32)
    inside, found = _opaque_mean_at(rgb, (alpha == 255).astype(np.float32), soft, reach)
    if estimated:
        a = (alpha[soft].astype(np.float32) / 255.0)[:, None]
        inside = a * rgb[soft] + (1.0 - a) * inside
    out = rgba.copy()
    colours = out[..., :3][soft]
    # soft pixels far from any opaque one (a faint shadow) keep their colour
    colours[found] = np.clip(inside[found] + 0.5, 0, 255).astype(np.uint8)
    out[..., :3][soft] = colours
    return out


def warp_premultiplied(rgba: np.ndarray, m: np.ndarray, size: int, interp: int) -> np.ndarray:
    """`cv2.warpAffine` of straight RGBA uint8 by `m` to (size, size), transparent outside the
    picture, with the colour of every pixel that comes out less than opaque resampled alpha-weighted
    (the colour under alpha 0 does not mix in); opaque pixels and the alpha as a plain warp gives them."""
    plain = cv2.warpAffine(rgba, m, (size, size), flags=interp, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    soft = plain[..., 3] < 255
    if not soft.any():
        return plain
    a = rgba[..., 3:4].astype(np.float32)
    pre = np.dstack([rgba[..., :3].astype(np.float32) * (a / 255.0), a])
    out = cv2.warpAffine(pre, m, (size, size), flags=interp, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    w = np.clip(out[..., 3:4], 0.0, 255.0) / 255.0
    rgb = np.where(w > 1e-3, out[..., :3] / np.maximum(w, 1e-3), 0.0)
    plain[..., :3][soft] = np.clip(rgb[soft] + 0.5, 0, 255).astype(np.uint8)
    return plain
