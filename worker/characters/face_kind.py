"""Is the face the tracker fitted a person's? An animal's or a drawing's face gets a human mesh
that looks plausible on its own (an oval without the ears, a mouth on the chin), so judge the fit
against the picture: MediaPipe's person segmenter covers a human face (photo, painting, statue,
3D cartoon) almost fully, but only part of a fox's or a cat's; and the face detector's own score
is low on them. Either cue clearly low, or both somewhat low, asks for marks.

Measured 2026-12-07 (person mask mean over the 478 landmarks / detector score): the shared
portraits and bundled characters 0.98-1.00 / 0.72-0.94; the fox mascot without marks 0.74 / 0.50.
"""

from __future__ import annotations

import threading

import numpy as np

from worker.characters.face_finder import StillFace
from worker.mp_runtime import mediapipe, quiet_native_stderr

MASK_CLEARLY_LOW = 0.85  # person mask over the face below this: not a person's face
MASK_SOMEWHAT_LOW = 0.95  # ... below this, with a detector score under DETECT_LOW, neither
DETECT_LOW = 0.65
NOT_HUMAN = "face does not look human"  # how the warning starts (check, preprocess, the studio)

_seg = None
_seg_lock = threading.Lock()


def person_mask(rgb: np.ndarray) -> np.ndarray:
    """MediaPipe selfie segmentation: float32 person probability per pixel of `rgb`."""
    global _seg
    with _seg_lock:
        if _seg is None:
            mp = mediapipe()
            with quiet_native_stderr():
                _seg = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)
        with quiet_native_stderr():
            return _seg.process(np.ascontiguousarray(rgb)).segmentation_mask


def face_person_score(rgb: np.ndarray, landmarks: np.ndarray) -> float:
    """Mean person probability at the fitted mesh's landmarks (1.0: all on a person)."""
    mask = person_mask(rgb)
    h, w = mask.shape[:2]
    xy = np.clip(np.rint(landmarks[:, :2]).astype(np.int64), 0, [w - 1, h - 1])
    return float(mask[xy[:, 1], xy[:, 0]].mean())


def human_doubt(rgb: np.ndarray, face: StillFace) -> tuple[float, float, bool]:
    """(person score over the face, detector score, not a person's face?) for a found face."""
    assert face.landmarks is not None
    person = face_person_score(rgb, face.landmarks)
    box = face.main_box
    detect = 0.0
    if box is not None and face.boxes:  # the detection that overlaps the mesh most
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        hits = [s for b, s in zip(face.boxes, face.scores, strict=True) if b[0] <= cx <= b[2] and b[1] <= cy <= b[3]]
        detect = max(hits) if hits else 0.0
    doubt = person < MASK_CLEARLY_LOW or (person < MASK_SOMEWHAT_LOW and detect < DETECT_LOW)
    return person, detect, doubt


def not_human_status(character_id: str, warnings: list[str]) -> str | None:
    """The short line for the live status (the OBS script shows it) when a character was flagged."""
    if any(w.startswith(NOT_HUMAN) for w in warnings):
        return f"{character_id}: {NOT_HUMAN}; mark it (`stream-animator mark`, kind: animal)"
    return None
