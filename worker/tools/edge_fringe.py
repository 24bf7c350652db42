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

Whose rim it is: a statue's shaded contour or a render's rim light is in the picture itself, and a
cut-out that keeps it is right to. Given the picture the cut-out was made from (`picture`, for a
picture without alpha of its own), the same measure is taken on the picture's own colours on the
same ring, less what a mix with the old background explains: a mix of figure and background lies
on the line between the two, so a pixel's step along that line towards the local background (up to
the background itself) is taken out as far as the pixel lies on it (fully within a quarter of that
step off the line, not at all from three quarters); what is left is the picture's own outline
(`outline`). A lit rim or a dark contour lies off the line and counts; a matte that sits a few px
out on the old background leaves nothing there. The rim stands out only by what it differs beyond
both the texture and the picture's own outline (`excess`).

(Until 2026-12-07 the outline was taken one px further in and every step towards the background
taken out, on or off the line: a render's rim light whose colour leans towards the wall's counted as
background, and its outermost px were not looked at; s7's excess read 7.1 levels, 0.3 now.)

`python -m worker.tools.edge_fringe IMAGE...` prints both for each picture as the worker prepares it;
`--save DIR` also writes each prepared cut-out (DIR/NAME.png), and `--sheet OUT --before DIR` draws
a before / after sheet over a green screen and a dark scene against cut-outs saved earlier (with
`--detail X,Y`, those spots up close beside the picture itself).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from worker.characters.assets import CharacterAssets

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
    outline: float = 0.0  # the picture's own rim there, no background mix in it (0: not measured)

    @property
    def excess(self) -> float:
        """Levels the rim differs by beyond the figure's own texture and the picture's own outline
        (0: it does not stand out, or it is the picture's)."""
        return max(0.0, self.distance - max(self.texture, self.outline))


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


def _window_mean(rgb: np.ndarray, where: np.ndarray, half: int) -> tuple[np.ndarray, np.ndarray]:
    k = 2 * half + 1
    w = cv2.blur(where.astype(np.float32), (k, k))
    return cv2.blur(rgb * where[..., None], (k, k)) / np.maximum(w, 1e-6)[..., None], w


def _own_outline(picture: np.ndarray, alpha: np.ndarray, eroded) -> float:
    """Median RGB distance of the picture's own ring (the rim's, 0..RING px inside the cut-out)
    against its band INSIDE px deeper, without the part a mix with the old background explains."""
    rgb = picture[..., :3].astype(np.float32)
    ring = eroded(0) & ~eroded(RING)
    fig, w_fig = _window_mean(rgb, eroded(INSIDE[0]) & ~eroded(INSIDE[1]), WINDOW)
    # the old background: clear pixels, a few px off the cut-out (its edge pixels are mixed)
    away = cv2.distanceTransform((alpha >= 8).astype(np.uint8) ^ 1, cv2.DIST_L2, 3) > 3
    there = picture[..., 3] >= 128 if picture.shape[2] == 4 else True  # not past the picture's edge
    bg, w_bg = _window_mean(rgb, (alpha < 8) & away & there, 4 * WINDOW)
    use = ring & (w_fig > 0.02) & (w_bg > 0.02)
    if not use.any():
        return 0.0
    d, u = rgb[use] - fig[use], bg[use] - fig[use]
    t = np.clip((d * u).sum(axis=1) / np.maximum((u * u).sum(axis=1), 1e-6), 0.0, 1.0)
    step = t * np.linalg.norm(u, axis=1)
    off = np.linalg.norm(d - t[:, None] * u, axis=1)
    mixed = np.clip((0.75 * step - off) / np.maximum(0.5 * step, 1e-6), 0.0, 1.0)  # how far on the line
    return float(np.median(np.linalg.norm(d - (mixed * t)[:, None] * u, axis=1)))


def edge_fringe(rgba: np.ndarray, picture: np.ndarray | None = None) -> Fringe:
    """The fringe of a straight RGBA uint8 cut-out (see the module doc); with the `picture` (RGB
    or RGBA uint8 whose alpha marks where the picture is, same size) it was cut from, also the
    picture's own outline there."""
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
    outline = 0.0 if picture is None else _own_outline(picture, rgba[..., 3], eroded)
    return Fringe(distance, lightness, pixels, texture, outline)


def see_through(
    picture: np.ndarray, rgba: np.ndarray, box: tuple[int, int, int, int] | None = None
) -> tuple[float, int]:
    """Where the old background is a plain backdrop (its clear pixels within 20 px spread under 4
    levels, RGB): the share of the figure seen through, i.e. of the pixels within 8 px of the
    cut-out's soft edge that lie off the backdrop by more than its noise (max(8 levels, 3x its
    spread)) and at least 2 px inside such pixels (not the 1-px mix at the picture's edge), the
    share whose alpha is under 0.9; and how many such pixels were judged. `box` (x0, y0, x1, y1)
    narrows it to part of the cut-out. (0.0, 0) where no backdrop is plain (a landscape, a
    waterfall): there a pixel's colour cannot tell the figure from the background."""
    from worker.characters.matte import _disk, _local_mean

    image = picture[..., :3].astype(np.float32)
    a = rgba[..., 3].astype(np.float32) / 255.0
    clear = (a < 0.02).astype(np.uint8)
    away = (cv2.distanceTransform(clear, cv2.DIST_L2, 3) > 6).astype(np.float32)
    bg = _local_mean(image, away, 20)
    spread = np.sqrt(np.clip(_local_mean(image * image, away, 20) - bg * bg, 0.0, None).sum(axis=2))
    off = np.linalg.norm(image - bg, axis=2) > np.maximum(8.0, 3.0 * spread)
    inside = cv2.erode(off.astype(np.uint8), _disk(2)) > 0
    soft = ((a > 0.02) & (a < 0.98)).astype(np.uint8)
    near = cv2.dilate(soft, _disk(8)) > 0
    if box is not None:
        x0, y0, x1, y1 = box
        part = np.zeros(near.shape, bool)
        part[y0:y1, x0:x1] = True
        near &= part
    judged = near & inside & (spread < 4.0)
    n = int(judged.sum())
    return (float((a[judged] < 0.9).mean()) if n else 0.0), n


def picture_of(assets: CharacterAssets) -> np.ndarray | None:
    """The picture a prepared character (`CharacterAssets`) was cut from, cropped as its cut-out
    (RGBA uint8, alpha 0 where the crop runs past the picture), or None when the file brought its
    own alpha (its colours are the cut-out's)."""
    from worker.characters.image_io import load_image

    if assets.had_alpha:
        return None
    src = load_image(assets.source).rgba
    x0, y0, x1, _ = assets.crop_box
    s = assets.size / (x1 - x0)
    m = np.array([[s, 0, -x0 * s], [0, s, -y0 * s]], np.float64)
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
    return cv2.warpAffine(src, m, (assets.size, assets.size), flags=interp, borderMode=cv2.BORDER_CONSTANT)


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


def write_sheet(
    rows: Sequence[tuple[str, np.ndarray, np.ndarray] | tuple[str, np.ndarray, np.ndarray, np.ndarray | None]],
    out: Path,
    side: int = 256,
) -> Path:
    """One row per character (name, before RGBA, after RGBA[, the picture they were cut from]):
    before | after over a green screen, then over a dark scene, each captioned with its fringe (and
    the picture's own outline where the picture is given). Written atomically."""
    lines = []
    for name, before, after, *rest in rows:
        picture = rest[0] if rest else None
        fb, fa = edge_fringe(before, picture), edge_fringe(after, picture)
        cells = [_cell(x, sc, side) for sc in ("green", "dark") for x in (before, after)]
        gap = np.full((side, 4, 3), 255, np.uint8)
        row = np.hstack([cells[0], gap, cells[1], gap, cells[2], gap, cells[3]])
        cap = np.full((24, row.shape[1], 3), 255, np.uint8)
        text = (
            f"{name}: before | after over green, then a dark scene; rim {fb.distance:.1f} "
            f"({fb.lightness:+.1f}) -> {fa.distance:.1f} ({fa.lightness:+.1f}), texture {fa.texture:.1f}"
        )
        if picture is not None:
            text += f", picture's outline {fa.outline:.1f}"
        cv2.putText(cap, text, (6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (40, 40, 40), 1, cv2.LINE_AA)
        lines.append(np.vstack([cap, row]))
    return _write_png(np.vstack(lines), out)


def write_detail(
    rows: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray | None]],
    spots: list[tuple[int, int]],
    out: Path,
    half: int = 24,
    zoom: int = 4,
) -> Path:
    """The same comparison up close: for each character and each spot (x, y in the cut-out's
    pixels), a 2*`half` px window `zoom` times enlarged: the picture itself (where given), then
    before | after over green, then over a dark scene. Written atomically."""
    from worker.tools.contact_sheet import _scene

    lines = []
    for name, before, after, picture in rows:
        n = after.shape[0]
        for x, y in spots:
            y0, x0 = int(np.clip(y - half, 0, n - 2 * half)), int(np.clip(x - half, 0, n - 2 * half))
            win = np.s_[y0 : y0 + 2 * half, x0 : x0 + 2 * half]
            cells = [] if picture is None else [picture[..., :3][win]]
            for scene in ("green", "dark"):
                ground = _scene(scene, n)[win]
                for cut in (before, after):
                    a = cut[win][..., 3:4].astype(np.float32) / 255.0
                    cells.append((cut[win][..., :3] * a + ground * (1.0 - a) + 0.5).astype(np.uint8))
            big = [cv2.resize(c, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST) for c in cells]
            gap = np.full((big[0].shape[0], 4, 3), 255, np.uint8)
            row = np.hstack([x for c in big for x in (c, gap)][:-1])
            cap = np.full((24, row.shape[1], 3), 255, np.uint8)
            what = "picture | " if picture is not None else ""
            text = f"{name} at ({x}, {y}), {zoom}x: {what}before | after over green, then a dark scene"
            cv2.putText(cap, text, (6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (40, 40, 40), 1, cv2.LINE_AA)
            lines.append(np.vstack([cap, row]))
    return _write_png(np.vstack(lines), out)


def _write_png(rgb: np.ndarray, out: Path) -> Path:
    ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
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
    ap.add_argument(
        "--detail",
        action="append",
        metavar="X,Y",
        help="with --sheet: draw these spots of the cut-out up close beside the picture instead (repeatable)",
    )
    a = ap.parse_args(argv)
    if a.sheet and not a.before:
        ap.error("--sheet needs --before DIR (cut-outs saved earlier with --save)")
    try:
        spots = [(int(x), int(y)) for x, y in (d.split(",") for d in a.detail or [])]
    except ValueError:
        ap.error("--detail: X,Y in the cut-out's pixels, e.g. --detail 200,10")
    rows = []
    for p in a.images:
        assets = preprocess_image(p)
        rgba = assets.image
        picture = picture_of(assets)
        f = edge_fringe(rgba, picture)
        seen = (
            ""
            if picture is None
            else "; figure seen through on a plain backdrop {:.3f} ({} px)".format(*see_through(picture, rgba))
        )
        print(
            f"{p}: fringe {f.distance:.1f} levels, lightness {f.lightness:+.1f} ({f.pixels} px); "
            f"own texture {f.texture:.1f}, picture's own outline "
            f"{'- (its own alpha)' if picture is None else f'{f.outline:.1f}'}, excess {f.excess:.1f}" + seen
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
            rows.append((name, cv2.cvtColor(old, cv2.COLOR_BGRA2RGBA), rgba, picture))
    if a.sheet:
        print(f"wrote {write_detail(rows, spots, a.sheet) if spots else write_sheet(rows, a.sheet)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
