"""LivePortrait's keypoint maths, in numpy: head angles from bins, rotations, the keypoint
transform, relative motion against the driver's neutral, and the stitching/retargeting deltas.

Conventions (those of the published LivePortrait code, so the networks see what they were
trained on): keypoints are row vectors (21, 3); `rotation_matrix` returns (Rz·Ry·Rx)ᵀ so that a
rotation is applied as `kp @ R`; angles are degrees (pitch about x, yaw about y, roll about z).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

N_KP = 21
N_BINS = 66
# keypoints that carry the lids and the lips (LivePortrait's region-limited animation)
EYE_KP = (11, 13, 15, 16, 18)
LIP_KP = (6, 12, 14, 17, 19, 20)
_BIN_CENTRES = np.arange(N_BINS, dtype=np.float64)


def bins_to_degrees(logits: np.ndarray) -> np.ndarray:
    """Head angle in degrees from 66-bin logits (last axis): E[bin] * 3 - 97.5."""
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=-1, keepdims=True)
    return p @ _BIN_CENTRES * 3.0 - 97.5


def rotation_matrix(pitch: float, yaw: float, roll: float) -> np.ndarray:
    """(Rz(roll)·Ry(yaw)·Rx(pitch))ᵀ for angles in degrees: apply to row vectors as `kp @ R`."""
    x, y, z = np.radians([pitch, yaw, roll])
    cx, sx, cy, sy, cz, sz = np.cos(x), np.sin(x), np.cos(y), np.sin(y), np.cos(z), np.sin(z)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return (rz @ ry @ rx).T


def transform_keypoints(kp: np.ndarray, R: np.ndarray, exp: np.ndarray, t: np.ndarray, scale: float) -> np.ndarray:
    """x = scale * (kp @ R + exp) + [tx, ty, 0] for (21, 3) `kp` and `exp` (tz is ignored)."""
    x = float(scale) * (kp.reshape(N_KP, 3) @ R + exp.reshape(N_KP, 3))
    x[:, :2] += np.asarray(t, np.float64).reshape(-1)[:2]
    return x


@dataclass
class Motion:
    """What the motion extractor says about one face: degrees, (21, 3) arrays, a scalar scale."""

    pitch: float
    yaw: float
    roll: float
    t: np.ndarray  # (3,)
    exp: np.ndarray  # (21, 3)
    scale: float
    kp: np.ndarray  # (21, 3) canonical keypoints

    @cached_property
    def R(self) -> np.ndarray:
        """Its rotation (computed once: the character's and the neutral's are used every frame)."""
        return rotation_matrix(self.pitch, self.yaw, self.roll)

    @classmethod
    def from_outputs(cls, pitch, yaw, roll, t, exp, scale, kp) -> Motion:
        """From the motion extractor's raw outputs (bins for the angles)."""
        return cls(
            pitch=float(bins_to_degrees(np.ravel(pitch))),
            yaw=float(bins_to_degrees(np.ravel(yaw))),
            roll=float(bins_to_degrees(np.ravel(roll))),
            t=np.asarray(t, np.float64).reshape(3),
            exp=np.asarray(exp, np.float64).reshape(N_KP, 3),
            scale=float(np.ravel(scale)[0]),
            kp=np.asarray(kp, np.float64).reshape(N_KP, 3),
        )

    def vector(self) -> np.ndarray:
        """The driving part as one flat vector [pitch, yaw, roll, tx, ty, tz, log scale, exp(63)]
        (what the smoother filters); `from_vector` inverts it."""
        log_s = np.log(max(self.scale, 1e-9))
        return np.concatenate([[self.pitch, self.yaw, self.roll], self.t, [log_s], self.exp.ravel()])

    def from_vector(self, v: np.ndarray) -> Motion:
        return Motion(
            float(v[0]), float(v[1]), float(v[2]), np.array(v[3:6]), np.asarray(v[7:70]).reshape(N_KP, 3),
            float(np.exp(v[6])), self.kp,
        )  # fmt: skip

    def keypoints(self) -> np.ndarray:
        """This face's own implicit keypoints x = s * (kp @ R + exp) + t."""
        return transform_keypoints(self.kp, self.R, self.exp, self.t, self.scale)


def _axis_angle_power(R: np.ndarray, h: float) -> np.ndarray:
    """R^h for a rotation matrix (the same axis, h times the angle); R itself for h == 1."""
    if h == 1.0:
        return R
    c = np.clip((np.trace(R) - 1.0) / 2.0, -1.0, 1.0)
    angle = float(np.arccos(c))
    if angle < 1e-9:
        return np.eye(3)
    axis = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]]) / (2.0 * np.sin(angle))
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    a = h * angle
    return np.eye(3) + np.sin(a) * k + (1.0 - np.cos(a)) * (k @ k)


def relative_keypoints(
    src: Motion,
    drv: Motion,
    neutral: Motion,
    expression: float = 1.0,
    head: float = 1.0,
    exp_mask: np.ndarray | None = None,
) -> np.ndarray:
    """The character's driven keypoints x_d (21, 3): LivePortrait's relative motion.

    R_new = (R_d·R_d0ᵀ)^head · R_s;  exp_new = exp_s + expression·(exp_d − exp_d0)·mask;
    s_new = s_s·(s_d/s_d0)^head;  t_new = t_s + head·(t_d − t_d0) with z = 0;
    x_d = s_new·(kp_s @ R_new + exp_new) + t_new.  With expression = head = 1 and no mask this is
    exactly the published formula. `exp_mask` (21, 1) zeroes the expression change of keypoints
    that retargeting drives instead (eyes, lips).
    """
    R_rel = drv.R @ neutral.R.T
    R_new = _axis_angle_power(R_rel, head) @ src.R
    d_exp = drv.exp - neutral.exp
    if exp_mask is not None:
        d_exp = d_exp * exp_mask
    exp_new = src.exp + expression * d_exp
    s_new = src.scale * (drv.scale / neutral.scale) ** head
    t_new = src.t + head * (drv.t - neutral.t)
    t_new[2] = 0.0
    return transform_keypoints(src.kp, R_new, exp_new, t_new, s_new)


def apply_multiplier(x_s: np.ndarray, x_d: np.ndarray, multiplier: float) -> np.ndarray:
    """LivePortrait's driving multiplier: x_s + (x_d − x_s)·multiplier."""
    return x_s + (x_d - x_s) * multiplier


def stitching_input(x_s: np.ndarray, x_d: np.ndarray) -> np.ndarray:
    """(1, 126) float32: concat(x_s, x_d), each flattened."""
    return np.concatenate([x_s.ravel(), x_d.ravel()])[None].astype(np.float32)


def apply_stitching(x_d: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """x_d + Δ[:63] per keypoint, then Δ[63:65] added to every keypoint's x and y."""
    d = np.asarray(delta, np.float64).ravel()
    out = x_d + d[: 3 * N_KP].reshape(N_KP, 3)
    out[:, :2] += d[3 * N_KP : 3 * N_KP + 2]
    return out


def eye_input(x_s: np.ndarray, src_left: float, src_right: float, driving: float) -> np.ndarray:
    """(1, 66) float32: x_s + [source left eye ratio, source right eye ratio, driving eye ratio]."""
    return np.concatenate([x_s.ravel(), [src_left, src_right, driving]])[None].astype(np.float32)


def lip_input(x_s: np.ndarray, src_lip: float, driving: float) -> np.ndarray:
    """(1, 65) float32: x_s + [source lip ratio, driving lip ratio]."""
    return np.concatenate([x_s.ravel(), [src_lip, driving]])[None].astype(np.float32)


def region_mask(exclude: tuple[int, ...]) -> np.ndarray:
    """(21, 1) ones with zeros at the `exclude` keypoints."""
    m = np.ones((N_KP, 1))
    m[list(exclude)] = 0.0
    return m


def apply_delta(x_d: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """x_d + Δ (63 values, one 3-vector per keypoint): how eye and lip retargeting are applied."""
    return x_d + np.asarray(delta, np.float64).reshape(N_KP, 3)
