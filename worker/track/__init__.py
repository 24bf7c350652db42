"""Track stage: MediaPipe face mesh -> `FaceState`, with smoothing and a neutral pose."""

from worker.track.face_state import N_LANDMARKS, FaceState

__all__ = ["FaceState", "N_LANDMARKS"]
