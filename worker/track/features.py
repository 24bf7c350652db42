"""Expression features from landmark geometry alone (no tracker state).

The same functions run on the driver's tracked landmarks, on a character's landmarks and on
landmarks re-tracked from rendered output, so that all three are measured the same way.

Every feature is a unitless ratio. Distances are 3-D when the landmarks carry a z column
(MediaPipe's z is in x's pixel scale), which makes them insensitive to head turns; with (N, 2)
landmarks they are 2-D.
"""

from __future__ import annotations

import numpy as np

from worker.track import landmark_ids as L

FEATURE_NAMES = (
    "face_scale",
    "eye_open_left",
    "eye_open_right",
    "mouth_open",
    "mouth_width",
    "brow_raise_left",
    "brow_raise_right",
    "gaze_x",
    "gaze_y",
)

_EPS = 1e-6


def eye_centers(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(right, left) eye centres: the midpoints of each eye's two corners (independent of gaze)."""
    p = np.asarray(landmarks, np.float64)
    right = 0.5 * (p[L.RIGHT_EYE_OUTER] + p[L.RIGHT_EYE_INNER])
    left = 0.5 * (p[L.LEFT_EYE_OUTER] + p[L.LEFT_EYE_INNER])
    return right, left


def inter_ocular(landmarks: np.ndarray) -> float:
    """Distance between the eye centres, the scale every other feature is divided by."""
    r, left = eye_centers(landmarks)
    return float(np.linalg.norm(left - r))


def face_axes(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors of the face's own frame: `across` (towards the subject's left eye, i.e. the
    image's right on a frontal face) and `down` (eyes towards mouth, orthogonal to `across`)."""
    p = np.asarray(landmarks, np.float64)
    r, left = eye_centers(p)
    across = left - r
    across /= np.linalg.norm(across) + _EPS
    mouth = 0.5 * (p[L.MOUTH_RIGHT_CORNER] + p[L.MOUTH_LEFT_CORNER])
    down = mouth - 0.5 * (r + left)
    down -= across * float(down @ across)
    down /= np.linalg.norm(down) + _EPS
    return across, down


def _gap(p: np.ndarray, pairs: tuple[tuple[int, int], ...]) -> float:
    a = p[[i for i, _ in pairs]]
    b = p[[j for _, j in pairs]]
    return float(np.linalg.norm(a - b, axis=1).mean())


def eye_openness(landmarks: np.ndarray) -> tuple[float, float]:
    """(left, right) lid aperture / eye width; about 0.25-0.35 open, below ~0.1 closed."""
    p = np.asarray(landmarks, np.float64)
    wl = np.linalg.norm(p[L.LEFT_EYE_OUTER] - p[L.LEFT_EYE_INNER]) + _EPS
    wr = np.linalg.norm(p[L.RIGHT_EYE_OUTER] - p[L.RIGHT_EYE_INNER]) + _EPS
    return float(_gap(p, L.LEFT_LID_PAIRS) / wl), float(_gap(p, L.RIGHT_LID_PAIRS) / wr)


def _gaze_one(p: np.ndarray, iris: int, outer: int, inner: int, pairs, across, down) -> np.ndarray:
    width = np.linalg.norm(p[outer] - p[inner]) + _EPS
    lids = np.array([0.5 * (p[a] + p[b]) for a, b in pairs]).mean(axis=0)
    centre = 0.5 * (p[outer] + p[inner])
    centre = centre + down * float((lids - centre) @ down)  # vertical centre of the opening
    d = p[iris] - centre
    # horizontal travel is about half the eye width; vertical about a quarter
    return np.array([(d @ across) / (0.5 * width), (d @ down) / (0.25 * width)])


def gaze(landmarks: np.ndarray) -> tuple[float, float]:
    """Iris offset inside the eye openings, averaged over both eyes, about -1..1.

    x > 0: the irises sit towards the image's right (on a frontal face); y > 0: looking down.
    """
    p = np.asarray(landmarks, np.float64)
    if len(p) <= L.LEFT_IRIS_CENTER:
        return 0.0, 0.0
    across, down = face_axes(p)
    g = 0.5 * (
        _gaze_one(p, L.RIGHT_IRIS_CENTER, L.RIGHT_EYE_OUTER, L.RIGHT_EYE_INNER, L.RIGHT_LID_PAIRS, across, down)
        + _gaze_one(p, L.LEFT_IRIS_CENTER, L.LEFT_EYE_OUTER, L.LEFT_EYE_INNER, L.LEFT_LID_PAIRS, across, down)
    )
    return float(g[0]), float(g[1])


def face_features(landmarks: np.ndarray) -> dict[str, float]:
    """All features of one face: see `FEATURE_NAMES` and `FaceState` for their meaning."""
    p = np.asarray(landmarks, np.float64)
    if p.ndim != 2 or p.shape[0] < 468 or p.shape[1] not in (2, 3):
        raise ValueError(f"expected (468|478, 2|3) landmarks, got {p.shape}")
    iod = inter_ocular(p) + _EPS
    across, down = face_axes(p)
    r_eye, l_eye = eye_centers(p)
    eye_l, eye_r = eye_openness(p)
    mouth_open = _gap(p, L.INNER_LIP_PAIRS) / iod
    mouth_width = float(np.linalg.norm(p[L.MOUTH_LEFT_CORNER] - p[L.MOUTH_RIGHT_CORNER])) / iod
    # brow height above the eye centre, measured along the face's own "up"
    brow_l = float((l_eye - p[list(L.LEFT_BROW)].mean(axis=0)) @ down) / iod
    brow_r = float((r_eye - p[list(L.RIGHT_BROW)].mean(axis=0)) @ down) / iod
    gx, gy = gaze(p)
    return {
        "face_scale": iod,
        "eye_open_left": eye_l,
        "eye_open_right": eye_r,
        "mouth_open": mouth_open,
        "mouth_width": mouth_width,
        "brow_raise_left": brow_l,
        "brow_raise_right": brow_r,
        "gaze_x": gx,
        "gaze_y": gy,
    }
