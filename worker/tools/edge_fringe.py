"""Edge fringe of a cut-out: how much its outermost opaque pixels differ from the figure just inside.

A light or dark rim along the cut-out (old background colour left in the edge, or a matte that
ends a few pixels outside the figure) shows over any scene as a line of another colour. For each
pixel of the outer ring (alpha >= 0.5 with a pixel of alpha < 0.5 within RING px) its colour is
compared with the mean colour of the figure a little further in (the opaque band INSIDE px deeper,
averaged over a window around it). Reported in colour levels (0..441, RGB distance): the median
over the ring, and the signed lightness difference (positive = a light fringe).

What counts as invisible: the figure's own texture. The same measure taken one ring further in
(a ring as deep as RING, INNER px inside the cut-out, against its own band INSIDE px deeper) says
how much any 2-px ring of this picture differs from what lies a little further in where no edge
is involved; a rim that differs no more than that does not stand out as a line (`excess`).

`python -m worker.tools.edge_fringe IMAGE...` prints both for each picture as the worker prepares it.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import cv2
import numpy as np

RING = 2  # px: the outer ring's depth
INSIDE = (4, 10)  # px: the reference band, this deep inside the cut-out
WINDOW = 9  # px: half-size of the window the reference colour is averaged over
INNER = 8  # px: how deep the texture ring (the figure's own variation) lies


@dataclass
class Fringe:
    distance: float  # median RGB distance, ring against the figure inside
    lightness: float  # median signed luma difference (positive: lighter rim)
    pixels: int  # ring pixels measured
    texture: float = 0.0  # the same distance for a ring INNER px inside: the figure's own variation

    @property
    def excess(self) -> float:
        """Levels the rim differs by beyond the figure's own texture (0: it does not stand out)."""
        return max(0.0, self.distance - self.texture)


def _ring_against_inside(rgb: np.ndarray, eroded, depth: int) -> tuple[float, float, int]:
    """Median distance, lightness and pixel count of the ring `depth`..`depth`+RING px inside the
    cut-out against the mean of the band INSIDE px deeper than the ring."""
    ring = eroded(depth) & ~eroded(depth + RING)
    ref = eroded(depth + INSIDE[0]) & ~eroded(depth + INSIDE[1])
    k = 2 * WINDOW + 1
    w = cv2.blur(ref.astype(np.float32), (k, k))
    mean = cv2.blur(rgb * ref[..., None], (k, k)) / np.maximum(w, 1e-6)[..., None]
    use = ring & (w > 0.02)
    if not use.any():
        return 0.0, 0.0, 0
    d = rgb[use] - mean[use]
    luma = d @ np.array([0.299, 0.587, 0.114], np.float32)
    return float(np.median(np.linalg.norm(d, axis=1))), float(np.median(luma)), int(use.sum())


def edge_fringe(rgba: np.ndarray) -> Fringe:
    """The fringe of a straight RGBA uint8 picture (see the module doc)."""
    solid = (rgba[..., 3] >= 128).astype(np.uint8)

    def eroded(r: int) -> np.ndarray:
        if r == 0:
            return solid > 0
        return (
            cv2.erode(
                solid,
                cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)),
                borderType=cv2.BORDER_CONSTANT,
                borderValue=1,
            )
            > 0
        )

    rgb = rgba[..., :3].astype(np.float32)
    distance, lightness, pixels = _ring_against_inside(rgb, eroded, 0)
    texture, _, _ = _ring_against_inside(rgb, eroded, INNER)
    return Fringe(distance, lightness, pixels, texture)


def main(argv: list[str] | None = None) -> int:
    from worker.characters.preprocess import preprocess_image

    ap = argparse.ArgumentParser(prog="python -m worker.tools.edge_fringe", description=__doc__.split("\n\n")[0])
    ap.add_argument("images", nargs="+")
    a = ap.parse_args(argv)
    for p in a.images:
        f = edge_fringe(preprocess_image(p).image)
        print(
            f"{p}: fringe {f.distance:.1f} levels, lightness {f.lightness:+.1f} ({f.pixels} px); "
            f"own texture {f.texture:.1f}, excess {f.excess:.1f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
