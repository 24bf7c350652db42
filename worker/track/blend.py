"""Blending between two `FaceState`s (face-lost easing, resume easing, neutral averaging)."""

from __future__ import annotations

import dataclasses

import numpy as np

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


def mean_state(states: list[FaceState]) -> FaceState:
    """Field-wise average of found states (the neutral pose); timestamp/frame size of the last."""
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
    return out
