"""`stream-animator check IMAGE...`: can these pictures be used as characters, and how well?"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from worker.characters.face_finder import StillFace, shared_finder
from worker.characters.face_marks import fit_face_template, load_face_marks, mark_hint
from worker.characters.image_io import load_image
from worker.errors import UserError

MIN_FACE_PX = 96  # below this the face has too few pixels to animate cleanly
MIN_FACE_FRACTION = 0.08  # face height / picture height: a tiny face in a big picture


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="+", help="image files to check")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of text")


def check_image(path: str) -> dict:
    """One image's report: usable or not, with the facts and warnings a streamer can act on."""
    rep: dict = {"file": path, "usable": False, "readable": False, "warnings": []}
    try:
        img = load_image(path)
    except UserError as e:
        rep["error"] = str(e)
        return rep
    h, w = img.rgba.shape[:2]
    rep.update(readable=True, width=w, height=h, alpha=img.has_alpha, mode=img.mode)
    try:
        marks = load_face_marks(path, w, h)
    except UserError as e:
        rep["error"] = str(e)
        return rep
    if marks is not None:  # marked by hand: the face is where the marks say
        found = StillFace([(0.0, 0.0, 0.0, 0.0)], [1.0], fit_face_template(marks))
        rep.update(marks=marks.source, kind=marks.kind)
    else:
        found = shared_finder().find(np.ascontiguousarray(img.rgba[..., :3]))
    rep["faces"] = len(found.boxes)
    rep["face_found"] = found.found
    if not found.found:
        rep["error"] = f"{path}: no face found in the picture; {mark_hint(path)}"
        return rep
    x0, y0, x1, y1 = found.main_box
    face_h = y1 - y0
    rep["face_box"] = [round(v, 1) for v in (x0, y0, x1, y1)]
    rep["face_fraction"] = round(face_h / h, 3)
    if face_h < MIN_FACE_PX:
        rep["warnings"].append(f"face is small ({face_h:.0f} px tall; {MIN_FACE_PX}+ looks better)")
    elif face_h / h < MIN_FACE_FRACTION:
        rep["warnings"].append(f"face is small in the picture ({face_h / h:.0%} of its height): crop closer")
    pad = 0.02 * max(w, h)
    if x0 < -pad or y0 < -pad or x1 > w + pad or y1 > h + pad:
        rep["warnings"].append("face is cut off by the picture's edge")
    if len(found.boxes) > 1 and marks is None:
        rep["warnings"].append(f"{len(found.boxes)} faces: the largest one will be animated")
    rep["usable"] = True
    return rep


def run(args: argparse.Namespace) -> int:
    reports = [check_image(p) for p in args.images]
    if args.json:
        print(json.dumps(reports))
    else:
        for r in reports:
            if not r["usable"]:
                print(f"NO   {r['error']}")
                continue
            alpha = "alpha" if r["alpha"] else "no alpha"
            marked = f", face marked ({r['kind']})" if r.get("marks") else ""
            print(f"ok   {r['file']}: {r['width']}x{r['height']}, {alpha}, face {r['face_fraction']:.0%} of height"
                  f"{marked}")
            for wmsg in r["warnings"]:
                print(f"       warning: {wmsg}")
    bad = sum(not r["usable"] for r in reports)
    if bad:
        print(f"{bad} of {len(reports)} images cannot be used", file=sys.stderr)
    return 1 if bad else 0
