"""Face marks: a face the user marked by hand in `NAME.face.json` beside the picture.

The face tracker reads human faces only. For an animal mascot, a pet or a drawn avatar (or a
human face it reads wrongly) the user marks five points once, in the picture's pixels, "left"
meaning the picture's left side:

    {"left_eye": [x, y], "right_eye": [x, y], "nose": [x, y],
     "mouth_left": [x, y], "mouth_right": [x, y], "kind": "animal"}

with optional extra points (`left_eye_top`, `left_eye_bottom`, the same for the right eye,
`chin`, `left_ear`, `right_ear`) and `kind` one of human | animal | drawn (default human).

`fit_face_template` turns the marks into the 478 landmarks of MediaPipe's face mesh, so the rest
of the pipeline (retargeting, the renderer's own preparation) works unchanged: the project's
canonical face (`worker.track.canonical`) is mapped onto the five main marks by a least-squares
affine fit, then bent locally (Gaussian radial basis) so every mark is hit exactly. On an animal
or drawn face, marked eye tops and bottoms redraw each eye as an ellipse through them (such eyes
are round and often far larger than a human's). Ears take no part in the mesh: the figure
cut-out keeps them (see `figure_cutout`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from worker.errors import UserError, os_reason
from worker.track import landmark_ids as L
from worker.track.canonical import load_canonical_face

KINDS = ("human", "animal", "drawn")
REQUIRED = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
OPTIONAL = ("left_eye_top", "left_eye_bottom", "right_eye_top", "right_eye_bottom", "chin", "left_ear", "right_ear")
SUFFIX = ".face.json"

# mark -> the canonical landmark it pins ("left" = the picture's left = the subject's right)
ANCHORS = {
    "left_eye": L.RIGHT_IRIS_CENTER,
    "right_eye": L.LEFT_IRIS_CENTER,
    "nose": L.NOSE_TIP,
    "mouth_left": L.MOUTH_RIGHT_CORNER,
    "mouth_right": L.MOUTH_LEFT_CORNER,
    "chin": L.CHIN,
}
# eye mark -> (its centre mark, the lid landmark at the top and at the bottom, the eye's points)
_EYES = {
    "left": ("left_eye", 159, 145, L.RIGHT_EYE + L.RIGHT_IRIS + (L.RIGHT_IRIS_CENTER,) + L.R_EYE_RING),
    "right": ("right_eye", 386, 374, L.LEFT_EYE + L.LEFT_IRIS + (L.LEFT_IRIS_CENTER,) + L.L_EYE_RING),
}
_BROWS = {"left": L.RIGHT_BROW, "right": L.LEFT_BROW}
BEND_SIGMA = 0.45  # width of the local bend, in eye distances: moves a mark's neighbours, not the face


@dataclass(frozen=True)
class FaceMarks:
    points: dict[str, tuple[float, float]]  # mark name -> (x, y) pixels of the picture
    kind: str = "human"
    source: str = ""  # the sidecar file they came from ("" when made in memory)
    file_digest: str = ""  # `sidecar_digest` of that file ("" when made in memory)

    def digest(self) -> str:
        """What the cache key takes from the marks: the sidecar's bytes, or the points (to 1/100
        px) and the kind of marks made in memory."""
        if self.file_digest:
            return self.file_digest
        blob = json.dumps(
            {"kind": self.kind, **{k: [round(v[0], 2), round(v[1], 2)] for k, v in sorted(self.points.items())}},
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def to_json(self) -> dict:
        return {**{k: [round(v[0], 2), round(v[1], 2)] for k, v in self.points.items()}, "kind": self.kind}


def sidecar_path(image: str | Path) -> Path:
    """`NAME.face.json` beside `NAME.png`."""
    image = Path(image)
    return image.with_name(image.stem + SUFFIX)


def mark_hint(image: str | Path) -> str:
    """What to do when no face is found: how to add marks."""
    return (
        f"mark the face with `stream-animator mark {image}` or write its points to "
        f"{sidecar_path(image).name} beside it, see README: Face marks"
    )


def sidecar_digest(image: str | Path) -> str:
    """Short hash of the image's sidecar bytes ("" if it has none): the marks' part of the cache key."""
    try:
        return _digest(sidecar_path(image).read_bytes())
    except OSError:
        return ""


def _digest(data: bytes) -> str:
    return "f" + hashlib.sha256(data).hexdigest()[:16]


def sidecar_stamp(image: str | Path) -> tuple[int, int] | None:
    """(mtime_ns, size) of the image's sidecar, None if it has none (to notice an edit cheaply)."""
    try:
        st = sidecar_path(image).stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def load_face_marks(image: str | Path, width: int, height: int) -> FaceMarks | None:
    """The marks of `image` (a `width` x `height` picture), None if it has no sidecar.

    Raises `UserError` (one line naming the sidecar and the field) for anything unusable.
    """
    path = sidecar_path(image)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror or e})") from None
    try:
        data = json.loads(raw.decode("utf-8-sig"))  # Windows Notepad writes a BOM
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: malformed JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    return replace(parse_face_marks(data, width, height, str(path)), file_digest=_digest(raw))


def parse_face_marks(data: object, width: int, height: int, source: str = "face marks") -> FaceMarks:
    """Validate parsed JSON as marks on a `width` x `height` picture (`source` names it in errors)."""
    if not isinstance(data, dict):
        raise UserError(f"{source}: expected a JSON object with {', '.join(REQUIRED)}")
    unknown = sorted(set(data) - set(REQUIRED) - set(OPTIONAL) - {"kind"})
    if unknown:
        raise UserError(f"{source}: unknown field '{unknown[0]}' (points: {', '.join(REQUIRED + OPTIONAL)}; and kind)")
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise UserError(
            f"{source}: missing point{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            f"(needs {', '.join(REQUIRED)}, each [x, y] in pixels)"
        )
    kind = data.get("kind", "human")
    if kind not in KINDS:
        raise UserError(f"{source}: kind {kind!r}: use one of {', '.join(KINDS)}")
    points: dict[str, tuple[float, float]] = {}
    for k in REQUIRED + OPTIONAL:
        if k not in data:
            continue
        v = data[k]
        ok = (
            isinstance(v, list)
            and len(v) == 2
            and all(isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c) for c in v)
        )
        if not ok:
            raise UserError(f"{source}: {k} must be [x, y] in pixels, got {json.dumps(v)[:40]}")
        x, y = float(v[0]), float(v[1])
        if not (0 <= x <= width and 0 <= y <= height):
            raise UserError(f"{source}: {k} [{x:g}, {y:g}] is outside the picture ({width}x{height})")
        points[k] = (x, y)
    le, re = np.array(points["left_eye"]), np.array(points["right_eye"])
    if le[0] >= re[0]:
        raise UserError(
            f'{source}: left_eye is not left of right_eye: the eyes are swapped ("left" is the picture\'s left)'
        )
    if points["mouth_left"][0] >= points["mouth_right"][0]:
        raise UserError(
            f'{source}: mouth_left is not left of mouth_right: the corners are swapped ("left" is the picture\'s left)'
        )
    iod = float(np.linalg.norm(re - le))
    if iod < 4.0:
        raise UserError(f"{source}: the eyes are {iod:.1f} px apart: mark a larger face")
    down = np.array([-(re - le)[1], (re - le)[0]]) / iod  # the face's downward direction
    mid = (le + re) / 2
    for k in ("nose", "mouth_left", "mouth_right"):
        if float((np.array(points[k]) - mid) @ down) <= 0.05 * iod:
            raise UserError(f"{source}: {k} is not below the eyes (is the picture upside down, or a point misplaced?)")
    for side in ("left", "right"):
        top, bottom = points.get(f"{side}_eye_top"), points.get(f"{side}_eye_bottom")
        centre = np.array(points[f"{side}_eye"])
        if top is not None and float((np.array(top) - centre) @ down) >= 0:
            raise UserError(f"{source}: {side}_eye_top is not above {side}_eye")
        if bottom is not None and float((np.array(bottom) - centre) @ down) <= 0:
            raise UserError(f"{source}: {side}_eye_bottom is not below {side}_eye")
    return FaceMarks(points, kind, source)


def save_face_marks(image: str | Path, marks: FaceMarks) -> Path:
    """Write `marks` as the image's sidecar, atomically (temp file + replace)."""
    path = sidecar_path(image)
    try:
        # an existing sidecar keeps its permissions; a new one gets what any new file gets (0666
        # less the umask, applied by the OS; mkstemp's 0600 would hide it from other accounts)
        mode = path.stat().st_mode & 0o7777 if path.exists() else None
        tmp = str(path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp"))
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as e:
        raise UserError(f"{path.parent}: cannot write {path.name} there ({os_reason(e)})") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(marks.to_json(), f, indent=1)
            f.write("\n")
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise UserError(f"{path.parent}: cannot write {path.name} there ({os_reason(e)})") from None
        raise
    return path


def marks_from_landmarks(lm: np.ndarray, kind: str = "human") -> FaceMarks:
    """The marks a tracked face would have (what the marking page places first)."""
    lm = np.asarray(lm, np.float64)
    pts = {name: lm[i, :2] for name, i in ANCHORS.items()}
    for side, (_, top, bottom, _) in _EYES.items():
        pts[f"{side}_eye_top"], pts[f"{side}_eye_bottom"] = lm[top, :2], lm[bottom, :2]
    return FaceMarks({k: (float(v[0]), float(v[1])) for k, v in pts.items()}, kind)


def default_marks(width: int, height: int, kind: str = "drawn") -> FaceMarks:
    """A face template placed in the middle of the picture (when nothing better is known)."""
    s = min(width, height) / 3.0 / (2 * 3.2245)  # eyes a third of the picture apart
    lm = load_canonical_face()[:, :2].astype(np.float64) * s + (width / 2, height * 0.42)
    return marks_from_landmarks(np.concatenate([lm, np.zeros((len(lm), 1))], 1), kind)


def fit_face_template(marks: FaceMarks) -> np.ndarray:
    """(478, 3) float32 landmarks in the picture's pixels for `marks` (see the module doc)."""
    canon = load_canonical_face().astype(np.float64)
    c = canon[:, :2].copy()
    names = list(REQUIRED)
    src = np.array([c[ANCHORS[k]] for k in names])
    dst = np.array([marks.points[k] for k in names])
    # least-squares affine canonical -> picture over the five main marks
    a_src = np.concatenate([src, np.ones((len(src), 1))], 1)
    sol, *_ = np.linalg.lstsq(a_src, dst, rcond=None)  # (3, 2)
    lin, shift = sol[:2].T, sol[2]
    if abs(np.linalg.det(lin)) < 1e-9:
        raise UserError(f"{marks.source or 'face marks'}: the points are in a line: mark a face")
    inv = np.linalg.inv(lin)

    def to_canon(p) -> np.ndarray:
        return (np.asarray(p, np.float64) - shift) @ inv.T

    # marked eye tops and bottoms: the eye is redrawn as an ellipse through them (drawn and
    # animal eyes are round and large, not a human almond; a human's keep the template's shape
    # and are only bent onto their marks below)
    for side in ("left", "right"):
        if marks.kind != "human" and (f"{side}_eye_top" in marks.points or f"{side}_eye_bottom" in marks.points):
            _ellipse_eye(c, side, {k: to_canon(v) for k, v in marks.points.items() if k.startswith(side + "_eye")})
    # bend so every mark is hit exactly: Gaussian radial basis on the residuals (local: far
    # points keep the affine fit)
    keys = [k for k in ANCHORS if k in marks.points]
    ctrl = np.array([c[ANCHORS[k]] for k in keys])
    resid = np.array([to_canon(marks.points[k]) for k in keys]) - ctrl
    for side, (_, top_i, bottom_i, _) in _EYES.items():
        for which, lid in ((f"{side}_eye_top", top_i), (f"{side}_eye_bottom", bottom_i)):
            if which in marks.points:
                ctrl = np.concatenate([ctrl, c[lid][None]])
                resid = np.concatenate([resid, (to_canon(marks.points[which]) - c[lid])[None]])
    sigma = BEND_SIGMA * float(np.linalg.norm(canon[L.LEFT_IRIS_CENTER, :2] - canon[L.RIGHT_IRIS_CENTER, :2]))
    k = np.exp(-((ctrl[:, None] - ctrl[None]) ** 2).sum(-1) / (2 * sigma**2))
    w = np.linalg.solve(k + 1e-6 * np.eye(len(ctrl)), resid)
    c += np.exp(-((c[:, None] - ctrl[None]) ** 2).sum(-1) / (2 * sigma**2)) @ w
    xy = c @ lin.T + shift
    z = canon[:, 2] * math.sqrt(abs(np.linalg.det(lin)))
    return np.concatenate([xy, z[:, None]], 1).astype(np.float32)


def _ellipse_eye(c: np.ndarray, side: str, marked: dict[str, np.ndarray]) -> None:
    """Put one eye's lids, iris and surrounding ring (canonical x, y `c`, in place) on an ellipse
    through the marked centre, top and bottom ("left" = the picture's left = the subject's right)."""
    right_subject = side == "left"
    upper = L.R_EYE_UPPER if right_subject else L.L_EYE_UPPER
    lower = L.R_EYE_LOWER if right_subject else L.L_EYE_LOWER
    outer, inner = L.R_EYE_CORNERS if right_subject else L.L_EYE_CORNERS
    iris_c = L.RIGHT_IRIS_CENTER if right_subject else L.LEFT_IRIS_CENTER
    iris = L.RIGHT_IRIS if right_subject else L.LEFT_IRIS
    ring = L.R_EYE_RING if right_subject else L.L_EYE_RING
    old_centre = c[iris_c].copy()
    centre = marked[f"{side}_eye"]
    half_w = 0.5 * abs(c[outer, 0] - c[inner, 0])
    b_top = centre[1] - marked[f"{side}_eye_top"][1] if f"{side}_eye_top" in marked else None
    b_bot = marked[f"{side}_eye_bottom"][1] - centre[1] if f"{side}_eye_bottom" in marked else None
    b_top = b_top if b_top is not None else b_bot
    b_bot = b_bot if b_bot is not None else b_top
    assert b_top is not None and b_bot is not None  # the caller has at least one of the two marks
    a = max(half_w, 0.85 * max(b_top, b_bot))  # round eyes: about as wide as tall
    out_sign = -1.0 if right_subject else 1.0  # the outer corner's side in x (the picture's)
    c[outer] = centre + (out_sign * a, 0.0)
    c[inner] = centre - (out_sign * a, 0.0)
    u = np.linspace(-1.0, 1.0, len(upper) + 2)[1:-1] * out_sign * -1.0  # outer -> inner
    root = np.sqrt(np.maximum(1.0 - u**2, 0.0))
    c[list(upper)] = np.stack([centre[0] + u * a, centre[1] - b_top * root], 1)
    c[list(lower)] = np.stack([centre[0] + u * a, centre[1] + b_bot * root], 1)
    r_old = np.linalg.norm(c[list(iris)] - old_centre, axis=1).mean()
    r_new = 0.45 * min(a, b_top, b_bot)
    c[list(iris)] = centre + (c[list(iris)] - old_centre) * (r_new / max(r_old, 1e-6))
    c[iris_c] = centre
    # the skin ring: same directions from the eye as before, 1.3 times the new eye's radius there
    d = c[list(ring)] - old_centre
    ang = np.arctan2(d[:, 1], d[:, 0])
    ry = np.where(np.sin(ang) < 0, b_top, b_bot)
    rad = 1.0 / np.sqrt((np.cos(ang) / a) ** 2 + (np.sin(ang) / ry) ** 2)
    c[list(ring)] = centre + np.stack([np.cos(ang), np.sin(ang)], 1) * (1.3 * rad)[:, None]
    # the brow stays above the ring
    brow = list(_BROWS[side])
    lift = c[brow, 1].max() - (centre[1] - 1.45 * b_top)
    if lift > 0:
        c[brow, 1] -= lift
