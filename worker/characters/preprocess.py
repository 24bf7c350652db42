"""Turn a character image into `CharacterAssets`: face crop, working size, alpha matte, landmarks.

This runs once per character (the cache keeps the result); nothing here runs per frame. What a
renderer precomputes on top of it is the renderer's own `prepare` step (see `preparer`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from worker.characters.assets import CharacterAssets
from worker.characters.cutout import erase_other_faces
from worker.characters.defringe import defringe, warp_premultiplied
from worker.characters.face_finder import StillFaceFinder, shared_finder
from worker.characters.face_kind import person_mask
from worker.characters.face_marks import FaceMarks
from worker.characters.figure_cutout import figure_alpha
from worker.characters.image_io import LoadedImage
from worker.characters.matte import matte_doubt, refine_cutout, working_side
from worker.characters.validation import flatten_for_detection as _flatten_for_detection
from worker.characters.validation import validate_image
from worker.errors import UserError
from worker.options import SIZE
from worker.track import landmark_ids as L

log = logging.getLogger(__name__)

# Bump when the layout or meaning of what preprocessing stores changes: old cache entries rebuild.
# 2: a renderer's prepared arrays live in their own sub-entry, keyed by its name and version.
# 3: the validation warnings (small face, two faces) are kept with the character; other faces cut
#    away; refined cut-out edges (worker.characters.matte).
# 4: a face that does not look human is warned about (worker.characters.face_kind).
# 5: a picture's own alpha keeps its edge colours cleaned (worker.characters.defringe); cut-out
#    band widths scale with the face (matte.working_side).
# 6: old-background patches open to the matte's outside are dropped, not only those at the border.
# 7: alpha dips walled off by the figure are filled; no sliver grows where a figure nears the border.
# 8: parts of the figure the segmentation missed are added by GrabCut (matte.extend_figure).
# 9: on a plain backdrop, edge pixels off it in hue are figure, those on it backdrop (matte.off_backdrop).
# 10: GrabCut's additions judged per pixel first (s10's scarf foot, matte.extend_figure).
# 11: on a plain backdrop, a pixel 3+ px inside the solid figure and off the backdrop is opaque
#     whatever its hue (matte.off_backdrop: s7's neck, s6's shoulders no longer see-through).
# 12: the dark line a sharpened photo draws inside the figure's edge is lifted (sharpening_halo).
FORMAT_VERSION = 12

# What preparing a character does, in order, as `on_stage` hooks report it (a progress bar's steps):
# preprocess_image's four, then the library's cache store and the renderer's arrays.
STAGES = (
    "finding the face",
    "cropping",
    "fitting the face mesh",
    "cutting out",
    "storing in the cache",
    "preparing the renderer's arrays",
)
StageHook = Callable[[str], None]


@dataclass(frozen=True)
class PreprocessSettings:
    size: int = 512  # working size of the square crop, pixels
    margin: float = 2.4  # crop side / face size: room for hair, ears and shoulders
    face_y: float = 0.46  # where the face centre sits in the crop (0 top, 1 bottom)

    def validate(self) -> None:
        SIZE.check(self.size, "size")
        if not 1.2 <= self.margin <= 6.0:
            raise UserError(f"margin: {self.margin} is out of range (1.2..6.0)")

    def fingerprint(self) -> dict:
        return {**asdict(self), "format": FORMAT_VERSION}


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def cache_key(data_hash: str, settings: PreprocessSettings, marks_digest: str = "") -> str:
    """Content hash + settings + format versions (+ the face marks' digest, if any); a change in
    any of them is a different entry."""
    extra = {"marks": marks_digest} if marks_digest else {}
    blob = json.dumps({"image": data_hash, **settings.fingerprint(), **extra}, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:40]


def preprocess_image(
    path: str | Path,
    settings: PreprocessSettings | None = None,
    finder: StillFaceFinder | None = None,
    loaded: LoadedImage | None = None,
    marks: FaceMarks | None = None,
    on_stage: StageHook | None = None,
) -> CharacterAssets:
    """Validate (`validation.validate_image`: the face found, or fitted to `marks`, by default the
    image's sidecar if it has one), crop and matte. Raises `UserError`/`NoFaceError` (one line).
    `on_stage(name)` is called as each of the first `STAGES` begins (whatever it raises stops the work)."""
    settings = settings or PreprocessSettings()
    settings.validate()
    finder = finder or shared_finder()
    stage = on_stage or (lambda name: None)
    path = Path(path)
    t0 = time.perf_counter()
    stage(STAGES[0])
    # the same check as `stream-animator check`: the user's marks win over the tracker
    checked = validate_image(path, finder, loaded, marks)
    img, found, marks = checked.image, checked.face, checked.marks
    assert img is not None and found is not None and found.landmarks is not None
    rgba = img.rgba

    ears = [marks.points[k] for k in ("left_ear", "right_ear") if k in marks.points] if marks else []
    framed = found.landmarks  # what the crop frames: the face, and marked ear tips (kept whole)
    if ears:
        framed = np.concatenate([framed, np.array([[x, y, 0.0] for x, y in ears], np.float32)])
    stage(STAGES[1])
    m = crop_matrix(framed, rgba.shape[1], rgba.shape[0], settings)
    n = settings.size
    scale = m[0, 0]
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    # Transparent outside the picture: a crop that runs past the edge never invents pixels.
    if img.has_alpha:  # resampled alpha-weighted: the colour under alpha 0 stays out of the edge
        crop = warp_premultiplied(rgba, m, n, interp)
    else:
        crop = cv2.warpAffine(rgba, m, (n, n), flags=interp, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if not img.has_alpha:
        inside = cv2.warpAffine(np.full(rgba.shape[:2], 255, np.uint8), m, (n, n), flags=cv2.INTER_LINEAR)
    crop_rgb = _flatten_for_detection(crop) if img.has_alpha else np.ascontiguousarray(crop[..., :3])

    stage(STAGES[2])
    landmarks = None if marks else finder.mesh(crop_rgb)
    if landmarks is None:  # the crop is smaller/larger than the mesh likes: map the first pass
        landmarks = found.landmarks.copy()
        landmarks[:, :2] = landmarks[:, :2] @ m[:, :2].T + m[:, 2]
        landmarks[:, 2] *= scale
    landmarks = landmarks.astype(np.float32)

    kind = marks.kind if marks else "human"
    stage(STAGES[3])
    if img.has_alpha:
        pass  # a picture's own alpha is kept as it is
    elif kind != "human":  # the person segmenter knows people only: cut out the whole figure
        ears_crop = np.array(ears, np.float64).reshape(-1, 2) @ m[:, :2].T + m[:, 2]
        crop[..., 3] = figure_alpha(crop_rgb, landmarks, ears_crop, inside)
    else:  # coarse segmentation, then edges re-fitted, islands dropped, edge colours cleaned
        crop = refine_cutout(crop_rgb, matte(crop_rgb, landmarks), landmarks, limit=inside)
    # whoever made the alpha, the soft edge takes the figure's colour, not the old background's
    crop = defringe(crop, estimated=not img.has_alpha and kind == "human")
    warnings = list(checked.warnings)
    doubt = None if img.has_alpha else matte_doubt(crop)  # a cut-out we made that looks wrong
    if doubt:
        warnings.append(f"{doubt}; a PNG with its own transparency avoids this")
    if len(found.boxes) > 1 and found.main_box is not None:  # one person on stream: other heads cut away
        erase_other_faces(crop[..., 3], found.boxes, found.main_box, m, landmarks)

    inv = cv2.invertAffineTransform(m)
    corners = np.array([[0, 0], [n, n]], np.float32) @ inv[:, :2].T + inv[:, 2]
    box = (float(corners[0, 0]), float(corners[0, 1]), float(corners[1, 0]), float(corners[1, 1]))
    data_hash = content_hash(img.data)
    meta = {
        "source_sha256": data_hash,
        "settings": settings.fingerprint(),
        "source_size": [int(rgba.shape[1]), int(rgba.shape[0])],
        "faces_found": len(found.boxes),
        "warnings": warnings,
        "kind": kind,
        **({"marks": marks.source} if marks else {}),
        "preprocess_ms": round((time.perf_counter() - t0) * 1000, 1),
    }
    return CharacterAssets(
        key=cache_key(data_hash, settings, marks.digest() if marks else ""),
        name=path.stem,
        source=str(path),
        size=n,
        image=crop,
        landmarks=landmarks,
        crop_box=box,
        had_alpha=img.has_alpha,
        meta=meta,
    )


def crop_matrix(landmarks: np.ndarray, width: int, height: int, settings: PreprocessSettings) -> np.ndarray:
    """2x3 affine (scale + shift, no rotation) from the source picture to the square crop.

    The square is `margin` times the face size, centred on the face (a little below centre, so
    hair fits above), shifted back inside the picture where it would run past an edge, and
    shrunk only when the picture itself is smaller than the square.
    """
    xy = landmarks[:, :2]
    x0, y0 = xy.min(axis=0)
    x1, y1 = xy.max(axis=0)
    face = max(x1 - x0, y1 - y0)
    side = min(settings.margin * face, max(width, height))
    cx = (x0 + x1) / 2
    cy = (y0 + y1) / 2
    left = cx - side / 2
    top = cy - settings.face_y * side
    # keep the square on the picture where it fits; where it doesn't, centre it on the face
    if side <= width:
        left = float(np.clip(left, 0, width - side))
    if side <= height:
        top = float(np.clip(top, 0, height - side))
    s = settings.size / side
    return np.array([[s, 0, -left * s], [0, s, -top * s]], dtype=np.float64)


def matte(rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Alpha for a picture without its own: MediaPipe selfie segmentation, face always kept.

    Segmentation can miss parts of paintings and statues; the face oval (slightly grown) is
    forced opaque so the animated face itself never turns see-through.
    """
    mask = person_mask(rgb)
    mask = cv2.resize(mask, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)
    # sharpen the soft probability into a matte with a thin soft edge
    a = np.clip((mask - 0.35) / 0.3, 0.0, 1.0)
    face = np.zeros(rgb.shape[:2], np.uint8)
    hull = cv2.convexHull(landmarks[L.FACE_OVAL, :2].astype(np.float32)).astype(np.int32)
    cv2.fillConvexPoly(face, hull, 255)
    grow = max(3, working_side(rgb.shape, landmarks) // 40)
    face = cv2.dilate(face, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
    face = cv2.GaussianBlur(face, (0, 0), grow / 2).astype(np.float32) / 255.0
    a = np.maximum(a, face)
    return (a * 255.0 + 0.5).astype(np.uint8)
