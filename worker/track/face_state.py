"""`FaceState`: what the tracker knows about one frame's face, the contract of the track stage."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

N_LANDMARKS = 478  # MediaPipe face mesh with refine_landmarks=True (468 + 10 iris points)


@dataclass
class FaceState:
    """One frame's face.

    `landmarks` are (478, 3) float32 in pixels of the analysed frame: x right, y down, z towards
    the camera's far side in the same pixel scale as x (MediaPipe's convention, z * width).
    Scalar features are unitless ratios so that they do not depend on the distance to the camera.
    """

    found: bool
    timestamp: float = 0.0  # seconds (capture time or media time)
    frame_size: tuple[int, int] = (0, 0)  # (width, height) of the analysed frame
    confidence: float = 0.0  # 0..1
    landmarks: np.ndarray | None = None  # (478, 3) float32, smoothed
    raw_landmarks: np.ndarray | None = None  # (478, 3) float32, unsmoothed
    # head pose in degrees, from a 3-D fit against a canonical face (cv2.solvePnP)
    pitch: float = 0.0  # + looks down
    yaw: float = 0.0  # + turns to the image's right
    roll: float = 0.0  # + tilts clockwise in the image
    translation: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float32))
    face_scale: float = 0.0  # inter-ocular distance in pixels (the normaliser for everything)
    eye_open_left: float = 0.0  # lid aperture / eye width (subject's left eye)
    eye_open_right: float = 0.0
    mouth_open: float = 0.0  # inner-lip gap / inter-ocular distance
    mouth_width: float = 0.0  # mouth corner distance / inter-ocular distance
    brow_raise_left: float = 0.0  # brow-to-eye height / inter-ocular distance
    brow_raise_right: float = 0.0
    gaze: tuple[float, float] = (0.0, 0.0)  # iris offset inside the eye opening, about -1..1 (x, y)
    # 0 while tracking; rises to 1 while a lost face eases to neutral (used for idle motion)
    lost_blend: float = 0.0
