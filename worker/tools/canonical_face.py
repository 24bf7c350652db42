"""Rebuild the stored canonical face (`worker.track.canonical`) from the bundled portrait.

    python -m worker.tools.canonical_face

Runs MediaPipe's face mesh on worker/assets/characters/astronaut.png, frontalises and
symmetrises it (`build_canonical_face`) and writes the (478, 3) array atomically.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from worker.track.canonical import DATA_PATH, build_canonical_face, load_canonical_face


def landmarks_of_sample_character() -> np.ndarray:
    """MediaPipe (478, 3) landmarks of the bundled astronaut portrait, in its pixels."""
    import cv2
    import mediapipe as mp

    from worker.paths import SAMPLE_CHARACTER

    img = cv2.imread(str(SAMPLE_CHARACTER), cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(SAMPLE_CHARACTER)
    h, w = img.shape[:2]
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True) as fm:
        res = fm.process(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    if not res.multi_face_landmarks:
        raise RuntimeError(f"no face found in {SAMPLE_CHARACTER}")
    return np.array([[q.x * w, q.y * h, q.z * w] for q in res.multi_face_landmarks[0].landmark])


def regenerate(path: Path = DATA_PATH) -> np.ndarray:
    """Rebuild the canonical face from the sample character and write it (atomically) to `path`."""
    face = build_canonical_face(landmarks_of_sample_character())
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npy")
    with os.fdopen(fd, "wb") as f:
        np.save(f, face, allow_pickle=False)
    os.replace(tmp, path)
    load_canonical_face.cache_clear()
    return face


if __name__ == "__main__":
    f = regenerate()
    print(f"wrote {DATA_PATH}: {f.shape}, x {f[:, 0].min():.1f}..{f[:, 0].max():.1f} cm")
