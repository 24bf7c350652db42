"""Can this picture be a character? The one check `check`, `demo`, `preprocess` (and `run`) use.

`inspect_image` never raises for bad input: it returns an `ImageCheck` with the error (one line
naming the file) or the face it found, the warnings a streamer can act on (a small face, two
faces, a face cut off by the edge) and the facts `check` reports. `validate_image` is the same
but raises the error, for the code that goes on to prepare the picture.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from worker.characters.face_finder import StillFace, StillFaceFinder, shared_finder
from worker.characters.face_kind import NOT_HUMAN, human_doubt
from worker.characters.face_marks import FaceMarks, fit_face_template, load_face_marks, mark_hint
from worker.characters.image_io import IMAGE_EXTENSIONS, LoadedImage, load_image
from worker.errors import NoFaceError, UserError

MIN_FACE_PX = 96  # below this the face has too few pixels to animate cleanly
MIN_FACE_FRACTION = 0.08  # face height / picture height: a tiny face in a big picture
MIN_SIDE_PX = 256  # a smaller picture is upscaled to the working size: soft
MIN_OPAQUE_FRACTION = 0.01  # less than this is visible: nothing to animate


@dataclass
class ImageCheck:
    path: Path
    image: LoadedImage | None = None
    face: StillFace | None = None
    marks: FaceMarks | None = None  # the face marked by hand (NAME.face.json), if it has marks
    error: str = ""
    no_face: bool = False  # the error is "no face found" (NoFaceError)
    warnings: list[str] = field(default_factory=list)
    not_human: bool = False  # the fit looks like an animal's or a drawing's face: ask for marks
    person_score: float | None = None  # person mask over the fitted face (None: marked, not judged)
    detect_score: float | None = None

    @property
    def usable(self) -> bool:
        return not self.error

    def raise_error(self) -> None:
        if self.error:
            raise (NoFaceError if self.no_face else UserError)(self.error)

    def report(self) -> dict[str, Any]:
        """What `check --json` prints for this picture."""
        rep: dict[str, Any] = {
            "file": str(self.path),
            "usable": self.usable,
            "readable": self.image is not None,
            "warnings": list(self.warnings),
        }
        if self.image is not None:
            h, w = self.image.rgba.shape[:2]
            rep.update(width=w, height=h, alpha=self.image.has_alpha, mode=self.image.mode)
        if self.marks is not None:
            rep.update(marks=self.marks.source, kind=self.marks.kind)
        if self.face is not None:
            rep["faces"] = len(self.face.boxes)
            rep["face_found"] = self.face.found
            box = self.face.main_box
            if box is not None:
                rep["face_box"] = [round(v, 1) for v in box]
                rep["face_fraction"] = round((box[3] - box[1]) / rep["height"], 3)
        if self.person_score is not None:
            rep.update(
                not_human=self.not_human,
                person_score=round(self.person_score, 3),
                detect_score=round(self.detect_score or 0.0, 3),
            )
        if self.error:
            rep["error"] = self.error
        return rep


def inspect_image(
    path: str | Path,
    finder: StillFaceFinder | None = None,
    loaded: LoadedImage | None = None,
    marks: FaceMarks | None = None,
) -> ImageCheck:
    """Everything that decides whether `path` can be a character; never raises for bad input.
    The face is where `marks` say (by default the picture's NAME.face.json, if any), else found."""
    out = ImageCheck(Path(path))
    name = str(path)
    if out.path.suffix.lower() not in IMAGE_EXTENSIONS:
        out.error = f"{name}: not a PNG, JPEG or WebP picture"
        return out
    try:
        img = loaded or load_image(path)
    except UserError as e:
        out.error = str(e)
        return out
    out.image = img
    if img.frames > 1:
        out.error = f"{name}: an animation ({img.frames} frames): save the one frame to use as a PNG"
        return out
    rgba = img.rgba
    h, w = rgba.shape[:2]
    if img.has_alpha and float((rgba[..., 3] > 16).mean()) < MIN_OPAQUE_FRACTION:
        out.error = f"{name}: fully transparent: nothing visible to animate"
        return out
    if marks is None:
        try:
            marks = load_face_marks(path, w, h)
        except UserError as e:
            out.error = str(e)
            return out
    out.marks = marks
    rgb = None
    if marks is not None:  # marked by hand: the face is where the marks say
        found = StillFace([(0.0, 0.0, 0.0, 0.0)], [1.0], fit_face_template(marks))
    else:
        rgb = flatten_for_detection(rgba) if img.has_alpha else np.ascontiguousarray(rgba[..., :3])
        found = (finder or shared_finder()).find(rgb)
    out.face = found
    if not found.found:
        out.error, out.no_face = f"{name}: no face found in the picture; {mark_hint(path)}", True
        return out
    if rgb is not None:  # the tracker's fit, not marks: is it a person's face at all?
        out.person_score, out.detect_score, out.not_human = human_doubt(rgb, found)
        if out.not_human:
            out.warnings.append(
                f"{NOT_HUMAN} (an animal's or a drawing's?): the tracker fits a person's face "
                f"to it (no ears, a human mouth); {mark_hint(path)} (kind: animal)"
            )
    x0, y0, x1, y1 = found.main_box or (0.0, 0.0, 0.0, 0.0)
    face_h = y1 - y0
    if max(w, h) < MIN_SIDE_PX:
        out.warnings.append(f"small picture ({w}x{h}; {MIN_SIDE_PX}+ px across looks sharper)")
    if face_h < MIN_FACE_PX:
        out.warnings.append(f"face is small ({face_h:.0f} px tall; {MIN_FACE_PX}+ looks better)")
    elif face_h / h < MIN_FACE_FRACTION:
        out.warnings.append(f"face is small in the picture ({face_h / h:.0%} of its height): crop closer")
    pad = 0.02 * max(w, h)
    if x0 < -pad or y0 < -pad or x1 > w + pad or y1 > h + pad:
        out.warnings.append("face is cut off by the picture's edge")
    if len(found.boxes) > 1 and marks is None:
        out.warnings.append(f"{len(found.boxes)} faces: the largest one is animated, the others are cut away")
    return out


def validate_image(
    path: str | Path,
    finder: StillFaceFinder | None = None,
    loaded: LoadedImage | None = None,
    marks: FaceMarks | None = None,
) -> ImageCheck:
    """`inspect_image`, raising its error (`UserError`, `NoFaceError` for no face) when unusable."""
    out = inspect_image(path, finder, loaded, marks)
    out.raise_error()
    return out


def flatten_for_detection(rgba: np.ndarray) -> np.ndarray:
    """Composite over mid grey: detectors see transparent pixels as black otherwise."""
    a = rgba[..., 3:4].astype(np.float32) / 255.0
    rgb = rgba[..., :3].astype(np.float32) * a + 128.0 * (1.0 - a)
    return np.ascontiguousarray(rgb.astype(np.uint8))


def check_image(path: str | Path) -> dict:
    """One image's report: usable or not, with the facts and warnings a streamer can act on.
    A picture without its own transparency is also cut out, to say when that cut-out looks wrong."""
    checked = inspect_image(path)
    report = checked.report()
    if report["usable"] and not report["alpha"]:
        from worker.characters.preprocess import preprocess_image

        try:
            assets = preprocess_image(path, loaded=checked.image, marks=checked.marks)
        except UserError as e:
            report.update(usable=False, error=str(e))
        else:
            report["warnings"] += [w for w in assets.meta["warnings"] if w.startswith("matte:")]
    return report
