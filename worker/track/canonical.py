"""A canonical (frontal, symmetric, metric) 3-D face for head-pose fitting.

MediaPipe 0.10.21 does not ship `canonical_face_model.obj`, so we build our own from the bundled
sample character (worker/assets/characters/astronaut.png, a frontal NASA portrait):

1. MediaPipe face mesh (static image, refine_landmarks) gives 478 points (x, y in pixels,
   z in x's pixel scale).
2. Frontalise: the mesh is left-right symmetric, so we pair every point with the nearest point
   of its mirror image and find the plane that best maps the pairs onto each other (the normal
   is the principal direction of the pair differences). Rotating that normal onto the x axis
   (the smallest such rotation) removes the photo's yaw and roll; its pitch as MediaPipe sees
   it (a level portrait looking into the lens) is kept as pitch zero. Pairing and plane fit
   are iterated until the pairs stop changing.
3. Symmetrise: each point becomes the mean of itself and its mirrored partner, so yaw = roll = 0
   is exactly the symmetric pose.
4. Centre between the eyes and scale so that the eye centres are 6.3 cm apart (an adult
   average), so that the model and solvePnP translations are in (approximate) centimetres.

Axes follow the camera: x to the image's right, y down, z away from the camera.
Regenerate the stored array with `python -m worker.tools.canonical_face`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from worker.track.features import eye_centers, face_axes

DATA_PATH = Path(__file__).resolve().parent / "data" / "canonical_face.npy"
INTER_OCULAR_CM = 6.3


def _mirror_pairs(p: np.ndarray) -> np.ndarray:
    """For points in a frame where x=0 is (about) the symmetry plane: index of each point's mirror."""
    m = p * np.array([-1.0, 1.0, 1.0])
    d = np.linalg.norm(p[:, None, :] - m[None, :, :], axis=2)
    return d.argmin(axis=1)


def _symmetry_frame(p: np.ndarray, partner: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotation (rows = new axes) and origin that put the pairs' symmetry plane at x = 0."""
    diffs = p - p[partner]
    diffs = diffs[np.linalg.norm(diffs, axis=1) > 1e-9]
    w, v = np.linalg.eigh(diffs.T @ diffs)
    n = v[:, -1]
    if n[0] < 0:
        n = -n
    origin = (0.5 * (p + p[partner])).mean(axis=0)
    # smallest rotation taking n onto x: keep the old y as much as possible (keeps the pitch)
    y = np.array([0.0, 1.0, 0.0]) - n * n[1]
    y /= np.linalg.norm(y)
    z = np.cross(n, y)
    return np.stack([n, y, z]), origin


def build_canonical_face(landmarks: np.ndarray, iters: int = 10) -> np.ndarray:
    """Frontal, symmetric, metric (cm) canonical face from one face's (478, 3) MediaPipe landmarks."""
    p = np.asarray(landmarks, np.float64)
    # start in the face's own axes (eye line, eyes->mouth): near enough for mirror pairing
    across, down = face_axes(p)
    rot = np.stack([across, down, np.cross(across, down)])
    r_eye, l_eye = eye_centers(p)
    q = (p - 0.5 * (r_eye + l_eye)) @ rot.T
    partner = _mirror_pairs(q)
    for _ in range(iters):
        rot2, origin = _symmetry_frame(q, partner)
        q = (q - origin) @ rot2.T
        rot = rot2 @ rot
        new = _mirror_pairs(q)
        if np.array_equal(new, partner):
            break
        partner = new
    # put back the camera's pitch: turn about x until the camera's y axis lies in the y-z plane
    # direction (0, cy, cz) -> (0, 1, 0), i.e. the portrait's view of the face is pitch zero
    cam_y = rot @ np.array([0.0, 1.0, 0.0])
    a = np.arctan2(cam_y[2], cam_y[1])
    rx = np.array([[1, 0, 0], [0, np.cos(a), np.sin(a)], [0, -np.sin(a), np.cos(a)]])
    q = q @ rx.T
    # keep only mutual pairs; others (rare) stay as they are
    mutual = partner[partner] == np.arange(len(q))
    mirrored = q[partner] * np.array([-1.0, 1.0, 1.0])
    sym = np.where(mutual[:, None], 0.5 * (q + mirrored), q)
    r_eye, l_eye = eye_centers(sym)
    sym = sym - 0.5 * (r_eye + l_eye)
    sym *= INTER_OCULAR_CM / np.linalg.norm(l_eye - r_eye)
    return sym.astype(np.float32)


@lru_cache(maxsize=1)
def load_canonical_face() -> np.ndarray:
    """The stored (478, 3) float32 canonical face in centimetres."""
    face = np.load(DATA_PATH, allow_pickle=False)
    if face.shape != (478, 3):
        raise ValueError(f"{DATA_PATH}: expected (478, 3), got {face.shape}")
    return face
