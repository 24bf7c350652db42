"""`TargetPose`: the retarget stage's output, what a renderer draws."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class TargetPose:
    """Where the character's landmarks should be this frame, in the character's crop pixels.

    `landmarks` (478, 3) float32: the character's own points moved by the driver's expression
    and head motion. `head_matrix` (3, 4) maps a point of the character's neutral 3-D landmark
    space to where the rigid head motion alone puts it (renderers use it for hair and the head
    outline beyond the mesh). Scalars are what renderers may need beyond the points.
    """

    landmarks: np.ndarray
    head_matrix: np.ndarray = field(default_factory=lambda: np.eye(3, 4, dtype=np.float32))
    mouth_open: float = 0.0  # inner-lip gap beyond the character's own, in inter-ocular units
    eye_close_left: float = 0.0  # 0 as drawn .. 1 shut, < 0 wider (subject's left eye)
    eye_close_right: float = 0.0
    gaze: tuple[float, float] = (0.0, 0.0)  # iris shift, fraction of the half eye width (x, y)
    yaw: float = 0.0  # degrees applied to the character
    pitch: float = 0.0
    roll: float = 0.0
    scale: float = 1.0
    timestamp: float = 0.0
    idle: float = 0.0  # 0..1 how much of the pose is idle motion (face lost)
