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

`python -m worker.tools.edge_fringe IMAGE...` prints both for each picture as the worker prepares it;
`--save DIR` also writes each prepared cut-out (DIR/NAME.png), and `--sheet OUT --before DIR` draws
a before / after sheet over a green screen and a dark scene against cut-outs saved earlier.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

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


def outline_profile(picture: np.ndarray, rgba: np.ndarray, depth: int = 13) -> tuple[np.ndarray, np.ndarray]:
    """Median luma (0..255) of 1-px rings 0..`depth`-1 px inside a cut-out's solid edge: of the
    `picture` it was cut from (RGB uint8, same size) and of the cut-out's own colours.

    Says whether a rim is the picture's own (a statue's shaded outline is darker just inside it
    in the picture itself) or the cut-out's; the picture's ring 0 mixes in the old background."""
    solid = (rgba[..., 3] >= 128).astype(np.uint8)
    inside = cv2.distanceTransform(solid, cv2.DIST_L2, 5)
    away = np.ones(solid.shape, bool)  # the picture's border is no outline
    away[:3], away[-3:], away[:, :3], away[:, -3:] = False, False, False, False
    w = np.array([0.299, 0.587, 0.114], np.float32)
    luma_pic, luma_cut = picture[..., :3].astype(np.float32) @ w, rgba[..., :3].astype(np.float32) @ w
    pic, cut = np.full(depth, np.nan, np.float32), np.full(depth, np.nan, np.float32)
    for d in range(depth):
        ring = away & (solid > 0) & (inside > d) & (inside <= d + 1)
        if ring.sum() >= 50:
            pic[d], cut[d] = np.median(luma_pic[ring]), np.median(luma_cut[ring])
    return pic, cut


def _cell(rgba: np.ndarray, scene: str, side: int) -> np.ndarray:
    from worker.tools.contact_sheet import _scene

    small = cv2.resize(rgba, (side, side), interpolation=cv2.INTER_AREA).astype(np.float32)
    a = small[..., 3:4] / 255.0
    return (small[..., :3] * a + _scene(scene, side) * (1.0 - a) + 0.5).astype(np.uint8)


def write_sheet(rows: list[tuple[str, np.ndarray, np.ndarray]], out: Path, side: int = 256) -> Path:
    """One row per character (name, before RGBA, after RGBA): before | after over a green screen,
    then over a dark scene, each captioned with its fringe. Written atomically."""
    lines = []
    for name, before, after in rows:
        fb, fa = edge_fringe(before), edge_fringe(after)
        cells = [_cell(x, sc, side) for sc in ("green", "dark") for x in (before, after)]
        gap = np.full((side, 4, 3), 255, np.uint8)
        row = np.hstack([cells[0], gap, cells[1], gap, cells[2], gap, cells[3]])
        cap = np.full((24, row.shape[1], 3), 255, np.uint8)
        text = (
            f"{name}: before | after over green, over a dark scene; fringe {fb.distance:.1f} "
            f"({fb.lightness:+.1f}) -> {fa.distance:.1f} ({fa.lightness:+.1f}), own texture {fa.texture:.1f}"
        )
        cv2.putText(cap, text, (6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (40, 40, 40), 1, cv2.LINE_AA)
        lines.append(np.vstack([cap, row]))
    ok, data = cv2.imencode(".png", cv2.cvtColor(np.vstack(lines), cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError(f"{out}: could not encode the sheet")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data.tobytes())
    os.replace(tmp, out)
    return out


def main(argv: list[str] | None = None) -> int:
    from worker.characters.preprocess import preprocess_image

    ap = argparse.ArgumentParser(prog="python -m worker.tools.edge_fringe", description=__doc__.split("\n\n")[0])
    ap.add_argument("images", nargs="+")
    ap.add_argument("--save", type=Path, help="also write each prepared cut-out here as NAME.png")
    ap.add_argument("--sheet", type=Path, help="write a before / after sheet (with --before)")
    ap.add_argument("--before", type=Path, help="folder of cut-outs saved earlier with --save")
    a = ap.parse_args(argv)
    if a.sheet and not a.before:
        ap.error("--sheet needs --before DIR (cut-outs saved earlier with --save)")
    rows = []
    for p in a.images:
        rgba = preprocess_image(p).image
        f = edge_fringe(rgba)
        print(
            f"{p}: fringe {f.distance:.1f} levels, lightness {f.lightness:+.1f} ({f.pixels} px); "
            f"own texture {f.texture:.1f}, excess {f.excess:.1f}"
        )
        name = Path(p).stem
        if a.save:
            a.save.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(a.save / f"{name}.png"), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
        if a.sheet:
            old = cv2.imread(str(a.before / f"{name}.png"), cv2.IMREAD_UNCHANGED)
            if old is None or old.ndim != 3 or old.shape[2] != 4:
                print(f"error: {a.before / (name + '.png')}: no RGBA cut-out saved with --save")
                return 2
            rows.append((name, cv2.cvtColor(old, cv2.COLOR_BGRA2RGBA), rgba))
    if a.sheet:
        print(f"wrote {write_sheet(rows, a.sheet)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
