"""Before/after sheet of the cut-out refinement (`worker.characters.matte`) over green.

    python -m worker.tools.matte_sheet --sheet docs/matte_before_after.png [IMAGES...]

One row per portrait: today's coarse cut-out | the refined one, then both zoomed on the worst
edge of the coarse one; prints the halo of each (old-background colour left in the edge).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import cv2
import numpy as np

from worker.characters.image_io import load_image
from worker.characters.matte import GREEN, composite, halo
from worker.characters.preprocess import PreprocessSettings, matte, preprocess_image


def before_after(path: str | Path, size: int = 512) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(picture crop RGB, today's coarse cut-out RGBA, refined cut-out RGBA) of a portrait file."""
    assets = preprocess_image(path, PreprocessSettings(size=size), loaded=load_image(path))
    src = load_image(path).rgba
    x0, y0, x1, y1 = assets.crop_box
    s = size / (x1 - x0)
    m = np.array([[s, 0, -x0 * s], [0, s, -y0 * s]], np.float64)
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
    crop = cv2.warpAffine(src, m, (size, size), flags=interp, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    inside = cv2.warpAffine(np.full(src.shape[:2], 255, np.uint8), m, (size, size), flags=cv2.INTER_LINEAR)
    rgb = np.ascontiguousarray(crop[..., :3])
    coarse = crop.copy()
    coarse[..., 3] = np.minimum(matte(rgb, assets.landmarks), inside)
    return rgb, coarse, np.asarray(assets.image)


def write_sheet(paths: list[Path], out: str | Path, cell: int = 256) -> list[dict]:
    """A PNG with one row per portrait: before | after over green, then both zoomed on the
    worst edge of the 'before'. Returns the halo of each, before and after."""
    from PIL import Image, ImageDraw

    from worker.progress import progress

    rows, report = [], []
    bar = progress(len(paths), desc="mattes", unit="img")
    for p in paths:
        bar.update()
        rgb, before, after = before_after(p)
        hb, ha = halo(rgb, before), halo(rgb, after)
        report.append({"image": Path(p).name, "halo_before": round(hb, 2), "halo_after": round(ha, 2)})
        gb, ga = composite(before), composite(after)
        y, x = _worst_edge(rgb, before, 64)
        zoom = [
            cv2.resize(g[y : y + 128, x : x + 128], (cell, cell), interpolation=cv2.INTER_NEAREST) for g in (gb, ga)
        ]
        small = [cv2.resize(g, (cell, cell), interpolation=cv2.INTER_AREA) for g in (gb, ga)]
        row = np.concatenate([small[0], small[1], zoom[0], zoom[1]], axis=1)
        rows.append(row)
    bar.close()
    sheet = Image.fromarray(np.concatenate(rows, axis=0))
    head = Image.new("RGB", (sheet.width, 22), (30, 30, 30))
    draw = ImageDraw.Draw(head)
    for i, t in enumerate(("before", "after", "before (edge, 2x)", "after (edge, 2x)")):
        draw.text((i * cell + 6, 5), t, fill=(235, 235, 235))
    full = Image.new("RGB", (sheet.width, sheet.height + head.height))
    full.paste(head, (0, 0))
    full.paste(sheet, (0, head.height))
    draw = ImageDraw.Draw(full)
    for i, r in enumerate(report):
        draw.text((6, head.height + i * cell + 4), f"{r['image']} halo {r['halo_before']:.1f}", fill=(0, 0, 0))
        draw.text((cell + 6, head.height + i * cell + 4), f"halo {r['halo_after']:.1f}", fill=(0, 0, 0))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    full.save(tmp, format="PNG", optimize=True)
    os.replace(tmp, out)
    return report


def _worst_edge(picture: np.ndarray, rgba: np.ndarray, half: int) -> tuple[int, int]:
    """Top-left of the 2*half square whose edge band shows the most old background."""
    a = rgba[..., 3].astype(np.float32) / 255.0
    edge = ((a > 0.05) & (a < 0.95)).astype(np.float32)
    lum_diff = np.abs(picture.astype(np.float32) - np.array(GREEN, np.float32)).sum(axis=2)
    score = cv2.blur(edge * (1 - a) * lum_diff, (2 * half, 2 * half))
    h, w = a.shape
    score[:half, :] = score[h - half :, :] = 0
    score[:, :half] = score[:, w - half :] = 0
    cy, cx = np.unravel_index(int(np.argmax(score)), score.shape)
    return int(cy - half), int(cx - half)


def main(argv: list[str] | None = None) -> int:
    from worker.paths import shared_testdata

    ap = argparse.ArgumentParser(prog="python -m worker.tools.matte_sheet", description=__doc__.split("\n")[0])
    ap.add_argument("--sheet", required=True, help="PNG to write (e.g. docs/matte_before_after.png)")
    ap.add_argument("images", nargs="*", help="portraits (default: the six shared test portraits)")
    args = ap.parse_args(argv)
    paths = [Path(p) for p in args.images]
    if not paths:
        root = shared_testdata()
        if root is None:
            print("error: no images given and ../shared/testdata not found", file=sys.stderr)
            return 2
        paths = sorted((root / "footage" / "portraits").glob("*.jpg"), key=lambda p: int(p.stem[1:]))
    for r in write_sheet(paths, args.sheet):
        print(f"{r['image']}: halo over green {r['halo_before']:.2f} -> {r['halo_after']:.2f}")
    print(f"wrote {args.sheet}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
