"""Blending between two `FaceState`s (face-lost easing, resume easing, neutral averaging)."""

from __future__ import annotations

import dataclasses

import numpy as np

from worker.track import landmark_ids as L
from worker.track.face_state import FaceState

# the scalar fields that are interpolated, read from FaceState itself (a float field added there is
# blended too); timestamp and lost_blend are the caller's, gaze and the arrays are mixed below
SCALAR_FIELDS = tuple(
    f.name for f in dataclasses.fields(FaceState) if f.type == "float" and f.name not in ("timestamp", "lost_blend")
)


def smoothstep(u: float) -> float:
    """0 -> 1 with zero slope at both ends, so eased motion starts and stops without a kink."""
    u = min(1.0, max(0.0, u))
    return u * u * (3.0 - 2.0 * u)


def _mix(a, b, w: float):
    if a is None:
        return None if b is None else np.array(b, copy=True)
    if b is None:
        return np.array(a, copy=True)
    return (np.asarray(a, np.float32) * (1.0 - w) + np.asarray(b, np.float32) * w).astype(np.float32)


def blend_states(a: FaceState, b: FaceState, w: float) -> FaceState:
    """(1 - w) * a + w * b field by field; the non-numeric fields are taken from `b`."""
    out = dataclasses.replace(b)
    for name in SCALAR_FIELDS:
        setattr(out, name, float((1.0 - w) * getattr(a, name) + w * getattr(b, name)))
    out.gaze = (
        float((1.0 - w) * a.gaze[0] + w * b.gaze[0]),
        float((1.0 - w) * a.gaze[1] + w * b.gaze[1]),
    )
    out.landmarks = _mix(a.landmarks, b.landmarks, w)
    out.translation = _mix(a.translation, b.translation, w)
    out.lost_blend = float((1.0 - w) * a.lost_blend + w * b.lost_blend)
    return out


# A neutral face has its eyes open. Each eye of the neutral is averaged over the frames where it is
# at least this share of its open aperture (the window's 90th percentile): a blink or a wink while
# calibrating made that eye's neutral half shut (d3: left 0.15 of the eye width against 0.38 open,
# d9: both 0.20 against 0.28-0.32), so every later open eye read as wide and was clipped, and a
# closure reached shut only at the very end (the eye "lagged": closure r 0.89 drawn, 0.70 re-tracked).
EYE_OPEN_SHARE = 0.8
# what moves with the lids: each eye's contour and iris (subject's left, right)
EYE_POINTS = {
    True: (list(L.LEFT_EYE) + [L.LEFT_IRIS_CENTER, *L.LEFT_IRIS], L.L_EYE_CORNERS),
    False: (list(L.RIGHT_EYE) + [L.RIGHT_IRIS_CENTER, *L.RIGHT_IRIS], L.R_EYE_CORNERS),
}


def _open_eyes(states: list[FaceState], out: FaceState) -> None:
    """Each eye of the averaged `out` (landmarks, raw landmarks, openness) from the frames where
    it is open: its points relative to its corners' midpoint averaged over those frames, put back
    at the corners' mean over all frames (the head may drift while the window is taken)."""
    for left, (idx, corners) in EYE_POINTS.items():
        name = "eye_open_left" if left else "eye_open_right"
        ap = np.array([getattr(s, name) for s in states], np.float64)
        keep = ap >= EYE_OPEN_SHARE * np.percentile(ap, 90)
        if keep.all():
            continue
        setattr(out, name, float(ap[keep].mean()))
        for field in ("landmarks", "raw_landmarks"):
            arrays = [getattr(s, field) for s in states]
            if getattr(out, field) is None or any(a is None for a in arrays):
                continue
            lm = np.asarray(arrays, np.float64)  # (frames, points, 3)
            if lm.shape[1] <= max(idx):  # no iris points (a mesh without refinement)
                continue
            mid = lm[:, list(corners)].mean(1, keepdims=True)
            moving = [i for i in idx if i not in corners]  # the corners stay as averaged
            rel = (lm[keep][:, moving] - mid[keep]).mean(0)
            getattr(out, field)[moving] = (mid.mean(0) + rel).astype(np.float32)


def mean_state(states: list[FaceState]) -> FaceState:
    """Field-wise average of found states (the neutral pose); timestamp/frame size of the last.
    Each eye is averaged over the frames where it is open (see EYE_OPEN_SHARE)."""
    if not states:
        raise ValueError("no states to average")
    last = states[-1]
    out = dataclasses.replace(last, found=True, lost_blend=0.0)
    for name in SCALAR_FIELDS:
        setattr(out, name, float(np.mean([getattr(s, name) for s in states])))
    out.gaze = (float(np.mean([s.gaze[0] for s in states])), float(np.mean([s.gaze[1] for s in states])))
    out.landmarks = np.mean([s.landmarks for s in states if s.landmarks is not None], axis=0).astype(np.float32)
    raws = [s.raw_landmarks for s in states if s.raw_landmarks is not None]
    out.raw_landmarks = np.mean(raws, axis=0).astype(np.float32) if raws else None
    out.translation = np.mean([s.translation for s in states], axis=0).astype(np.float32)
    _open_eyes(states, out)
    return out
