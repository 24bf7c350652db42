"""Track stage: MediaPipe face mesh -> `FaceState`, with smoothing and a neutral pose.

- `mediapipe_tracker.FaceTracker`: the tracker (process / update / calibrate / hold / neutral).
- `features.face_features`: expression ratios from any 478-point mesh (driver, character, output).
- `pose.HeadPoseSolver`: pitch/yaw/roll via cv2.solvePnP against `canonical.load_canonical_face()`.
- `one_euro`: the One Euro filter and the two-part landmark smoother (tuned values documented there).
- `landmark_ids`: the one table of mesh index groups (every stage indexes landmarks through it);
  `smoothing_metrics`: jitter and lag measures. (Tracking cost: `worker.tools.bench.bench_tracking`.)
"""

from worker.track.face_state import N_LANDMARKS, FaceState

__all__ = ["FaceState", "N_LANDMARKS"]
