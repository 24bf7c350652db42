"""Driver face -> character pose: the driver's motion relative to its neutral, applied to the
character's own geometry.

Everything is measured in a canonical face frame (centre between the eyes, in-plane roll
removed, unit = 3-D inter-ocular distance), so a driver close to the camera and a small
character face move alike. Head rotation is a 3-D similarity fit of the driver's skull points
against its neutral, re-applied to the character's 3-D landmarks (a turned head foreshortens
like a turned head). Eyelids go by ratios of the apertures (the character's own eye closes when
the driver's does, whatever the two eye sizes), irises move inside the character's eye opening,
the rest of the expression is the driver's per-point residual after removing the head motion.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from worker.characters.assets import CharacterAssets
from worker.errors import UserError
from worker.retarget import geometry
from worker.retarget.idle import Idle, IdleMotion
from worker.retarget.lipsync import LIPSYNC_MODES, ROUND_GAIN, VoiceMouth, rounded, tracked_mouth_reliable
from worker.retarget.pose import TargetPose
from worker.track import landmark_ids as L
from worker.track.face_state import N_LANDMARKS, FaceState
from worker.track.one_euro import OneEuroFilter, OneEuroParams

if TYPE_CHECKING:
    from worker.retarget.mouth_signal import MouthSignal

# A driver lid gap below this fraction of its neutral gap counts as shut: MediaPipe never
# reports a fully closed lid as zero.
EYE_SHUT_RATIO = 0.3
OUTLINE_DEPTH = 0.5  # the renderer's halo uses the same (worker.render.meshwarp.prepare)
# However far a portrait is drawn turned, its head may turn at least this far away from the viewer
# and back towards them (degrees). At 3 / 12 the painting turned 33 degrees (s10) sat pinned at a
# limit through half of d3's and d9's head turns (192 of 354, 173 of 587 frames): re-tracked yaw r
# 0.903 / 0.888. At 4 / 16: 0.936 / 0.903, the far cheek squeezed or widened by the warp (no tear in the
# extreme frames). Further costs texture jitter on d9 x s10 (optical flow in the face, output / driver): away 5
# 0.806, 9 0.82 against 0.798 here (0.793 at 3); back 20 gives d3 x s10 0.975 but d9 x s10 0.81.
# Portraits drawn within 16 degrees of frontal keep their limits (max_yaw - r is larger).
# Eased into (YAW_KNEE) rather than cut off, the limit costs less (2026-12-07, d9 x s10, yaw r / texture
# jitter): cut off at 4, 0.897 / 0.802; eased over 2 degrees 0.896 / 0.795, over 6 with away 5 0.910 / 0.789
# (knee 2-8, away 4-8 swept: more room away raises yaw r and, past 5.5, texture jitter, 0.816 at 6).
YAW_AWAY_MIN, YAW_BACK_MIN = 5.0, 16.0
YAW_KNEE = 6.0  # degrees: the head's yaw eases into its limits over this much of its range
ROOM_SHARE = 0.2  # share of the room beside the face a head shift may use (see Retargeter.__init__)
OUTLINE_MIX_SIGMA = 0.1  # an outline point takes up the expression of inner points this near (eye distances)
CLOSED_LINE = 0.75  # where shut lids meet: this far from the upper lid towards the lower one
# The lips' sideways motion goes over as a share of the mouth's width, as the voice's shapes do: moved
# by the driver's inter-ocular units, a character whose mouth is wider than the driver's rounded by a
# smaller share of it (the bundled toon's mouth is 1.38 of d12's: his O/U, 0.72 of his neutral width,
# was drawn 0.80 of the toon's, re-tracked 0.88 of its A against 0.70 on s12). Clamped so a driver
# tracked with a shut, pinched mouth cannot blow a character's lips up.
LIP_SCALE = (0.6, 1.6)


def soft_clip(x: float, lo: float, hi: float, knee: float) -> float:
    """`x` kept within [lo, hi], the same as x well inside, eased into each limit over the last
    `knee` (at most half the range): smooth and rising all the way, so a head turned past its limit
    still moves a little with the driver instead of sitting pinned, and never jolts to a stop."""
    k = min(knee, 0.5 * (hi - lo))
    if k <= 0.0:
        return float(np.clip(x, lo, hi))
    if x > hi - k:
        return float(hi - k + k * math.tanh((x - hi + k) / k))
    if x < lo + k:
        return float(lo + k - k * math.tanh((lo + k - x) / k))
    return float(x)


@dataclass
class RetargetOptions:
    expression_strength: float = 1.0  # 0 = frozen face, 1 = as the driver, up to 2 = exaggerated
    head_strength: float = 1.0  # 0 = head still, 1 = as the driver
    mirror: bool = False  # driver's left becomes the character's right (a mirror image)
    idle: bool = True  # breathing, sway and blinks while the face is lost
    auto_blink: bool = False  # blink by itself even while tracking
    max_yaw: float = 32.0  # degrees; beyond that a 2-D warp shows the far side's hidden texture
    max_pitch: float = 25.0
    # a character drawn turned already (a three-quarter view) turns at most this far in all:
    # further on, the warp has no texture for the far side and the face stops reading as a face
    max_total_yaw: float = 36.0
    max_roll: float = 40.0
    # head translation limit, inter-ocular units: the shoulders stay put, so a head moved further
    # would stretch the neck past what the warp can draw (see meshwarp FOLD_DET)
    max_shift: float = 0.4
    gaze_gain: float = 1.0
    # One Euro on the head pose derived from the (already smoothed) landmarks: its 3-D fit
    # leans on the noisy depth, and a trembling head is what shows most on a still picture.
    # Expressions are not filtered again (that would cost lips and blinks their speed).
    smooth_min_cutoff: float = 0.0  # Hz at rest (0 = off: measured, it cost roll fidelity more than it saved jitter)
    smooth_beta: float = 6.0  # for translation and scale, per inter-ocular distance per second
    lipsync: str = "off"  # the voice's mouth: off | assist (face lost / mouth unreliable) | always
    round_gain: float = ROUND_GAIN  # extra rounding of the lips, camera and voice (`lipsync.rounded`); 0 = none

    # the one statement of these ranges: the config's `motion` section reads them from here
    RANGES: ClassVar[dict[str, tuple[float, float]]] = {
        "expression_strength": (0.0, 2.0),
        "head_strength": (0.0, 2.0),
        "gaze_gain": (0.0, 3.0),
        "round_gain": (0.0, 4.0),
    }
    # Steadying (0 = off), measured with the optical-flow texture jitter (worker.tools.texture_jitter):
    # One Euro at 1 Hz at rest on pitch (from the 3-D fit's noisy depth), shift/scale and the
    # expression (speed-adaptive: lips still open at full speed) took d9 x s10 from 1.24 to ~0.89 of
    # the driver's jitter and d0 x s10 from 1.01 to ~0.59, mouth and eye r unchanged. Yaw, roll and
    # the eye line stay unfiltered: even speed-adaptive (0.3 per degree/s) their lag cost roll r
    # 0.98 -> 0.95 on d12 and yaw r 0.91 -> 0.89 on d9 x s10. The shift's beta went 1.0 -> 0.3
    # (texture jitter d9 x s10 0.82 -> 0.77, d12 0.20-0.30 -> 0.16-0.25; 0.2 cost d9 x s10's
    # yaw r 0.90) for ~20 ms more lag on the head's shift (45-50 -> 65 ms on d3).
    steady_min_cutoff: float = 1.0  # Hz at rest
    steady_pitch_beta: float = 0.15  # per degree per second
    steady_move_beta: float = 0.3  # per inter-ocular distance per second (shift), per unit log scale
    steady_expression_beta: float = 10.0  # per inter-ocular distance per second
    # The lips' own (fading out over the cheeks and chin, `VoiceMouth.region`). Measured 2026-12-07
    # (`bench --fidelity`, its `lag` column): a faster mouth buys lag but no mouth r. Beta 30 took the
    # re-tracked mouth's lag on d3 x s9 / s12 from 1.21 / 1.11 frames to 0.94 / 0.79 and its r from
    # 0.979 / 0.955 to 0.981 / 0.956, texture jitter 0.43 -> 0.44 / 0.45; unfiltered lips (100 Hz)
    # 0.75 / 0.65 frames, r 0.980 / 0.957, texture 0.46 / 0.49. What holds mouth r down on the pairs
    # under 0.97 is the second tracker's reading of a mid-size opening (a dark band under s12's
    # moustache is read as shut), not lag: the drawn mouth follows the driver at r 0.999, 0.46 frames
    # late, and even shifted by its best whole frame the re-tracked r on d3 x s12 is only 0.958.
    steady_mouth_min_cutoff: float = 1.0  # Hz at rest
    steady_mouth_beta: float = 10.0  # per inter-ocular distance per second

    def validate(self) -> None:
        for name, (lo, hi) in self.RANGES.items():
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and lo <= v <= hi):
                raise UserError(f"retarget.{name}: {v!r} is out of range ({lo}..{hi})")
        if self.lipsync not in LIPSYNC_MODES:
            raise UserError(f"lipsync: {self.lipsync!r} is not one of {', '.join(LIPSYNC_MODES)}")


class _EyeFrame:
    """One eye of the character in its neutral pose: corner axis, lids and iris in (u, v)."""

    def __init__(self, lm: np.ndarray, left: bool) -> None:
        c = L.L_EYE_CORNERS if left else L.R_EYE_CORNERS
        self.upper = np.array(L.L_EYE_UPPER if left else L.R_EYE_UPPER)
        self.lower = np.array(L.L_EYE_LOWER if left else L.R_EYE_LOWER)
        self.corners = list(c)
        self.iris = L.L_IRIS if left else L.R_IRIS
        self.ring = np.arange(self.iris + 1, self.iris + 5)
        a, b = lm[c[0], :2].astype(np.float64), lm[c[1], :2].astype(np.float64)
        if a[0] > b[0]:
            a, b = b, a
        self.origin = (a + b) * 0.5
        self.half = max(float(np.linalg.norm(b - a)) * 0.5, 1e-6)
        self.ax = (b - a) / (2 * self.half)
        self.n = np.array([-self.ax[1], self.ax[0]])
        uv = self.to_uv(lm[:, :2])
        self.u_up, self.v_up = uv[self.upper, 0], uv[self.upper, 1]
        self.u_lo, self.v_lo = uv[self.lower, 0], uv[self.lower, 1]
        self.v_closed = self.v_up + CLOSED_LINE * (self.v_lo - self.v_up)
        self.u_closed = (self.u_up + self.u_lo) * 0.5
        order = np.argsort(self.u_closed)
        self.u_closed, self.v_closed = self.u_closed[order], self.v_closed[order]
        self.iris_uv = uv[self.iris]
        self.ring_uv = uv[self.ring]

    def to_uv(self, p: np.ndarray) -> np.ndarray:
        d = p - self.origin
        return np.stack([d @ self.ax, d @ self.n], axis=-1)

    def to_xy(self, uv: np.ndarray) -> np.ndarray:
        return self.origin + uv[..., :1] * self.ax + uv[..., 1:2] * self.n

    def apply(self, out: np.ndarray, base: np.ndarray, openness: float, gaze: np.ndarray) -> None:
        """Write lids and iris for `openness` (0 shut, 1 neutral) and `gaze` into `out` (x, y)."""
        shift = (base[self.corners[0], :2] + base[self.corners[1], :2]) * 0.5 - self._neutral_mid
        r = openness
        self._v[: self._n_up] = self._closed_up * (1 - r) + self.v_up * r
        self._v[self._n_up :] = self._closed_lo * (1 - r) + self.v_lo * r
        out[self._lids, :2] = self._lid_xy(self._v) + shift
        d0, d1 = gaze[0] * self.half, gaze[1] * self.half * min(r, 1.0)
        iris = np.array([self.iris_uv[0] + d0, self._closed_iris + r * (self.iris_uv[1] - self._closed_iris) + d1])
        out[self.iris, :2] = self.to_xy(iris) + shift
        ring = self.ring_uv - self.iris_uv
        ring[:, 1] *= min(r, 1.0)
        out[self.ring, :2] = self.to_xy(iris + ring) + shift

    def _lid_xy(self, v: np.ndarray) -> np.ndarray:
        return self._lid_base + v[:, None] * self.n

    def bind(self, lm: np.ndarray) -> _EyeFrame:
        self._neutral_mid = lm[self.corners, :2].astype(np.float64).mean(0)
        # what does not depend on the frame, once: the shut lid line under each lid point, the
        # lids' positions along the eye axis, the iris's height when shut
        self._closed_up = np.interp(self.u_up, self.u_closed, self.v_closed)
        self._closed_lo = np.interp(self.u_lo, self.u_closed, self.v_closed)
        self._closed_iris = float(np.interp(self.iris_uv[0], self.u_closed, self.v_closed))
        self._n_up = len(self.upper)
        self._lids = np.concatenate([self.upper, self.lower])
        u = np.concatenate([self.u_up, self.u_lo])
        self._lid_base = self.origin + u[:, None] * self.ax
        self._v = np.empty(len(u))
        return self


class _Neutral:
    """What is measured once per driver neutral (it changes only on calibration)."""

    def __init__(self, lm: np.ndarray) -> None:
        self.lm = lm.astype(np.float64)
        self.centre, self.roll, self.iod = geometry.canonical_frame(self.lm)
        canon = (self.lm - self.centre) @ geometry.rot_z(-self.roll).T / self.iod
        mirrored = canon * np.array([-1.0, 1.0, 1.0])
        d = ((mirrored[:, None, :] - canon[None, :, :]) ** 2).sum(-1)
        self.mirror_map = d.argmin(1)  # point i's mirror-image counterpart
        self.mirrored = self.flip(self.lm)
        self.cache: dict = {}

    def flip(self, lm: np.ndarray) -> np.ndarray:
        out = lm[self.mirror_map].copy()
        out[:, 0] = -out[:, 0]
        return out

    def measures(self, mirror: bool) -> tuple[np.ndarray, float, float, float, np.ndarray, float]:
        if mirror not in self.cache:
            n = self.mirrored if mirror else self.lm
            _, roll, iod = geometry.canonical_frame(n)
            gz = (geometry.gaze(n, False) + geometry.gaze(n, True)) * 0.5
            self.cache[mirror] = (n, roll, geometry.eye_aperture(n, True), geometry.eye_aperture(n, False), gz, iod)
        return self.cache[mirror]


class Retargeter:
    """Maps a driver `FaceState` (and its neutral) onto one character's landmarks."""

    def __init__(
        self, character: CharacterAssets, options: RetargetOptions | None = None, idle: Idle | None = None
    ) -> None:
        self.options = options or RetargetOptions()
        self.options.validate()
        lm = np.asarray(character.landmarks, np.float64)
        if lm.shape != (N_LANDMARKS, 3) or not np.isfinite(lm).all():
            raise UserError(f"character {character.name}: landmarks must be {N_LANDMARKS}x3 finite values")
        self.char = lm
        self.centre, self.roll, self.iod = geometry.canonical_frame(lm)
        self.pivot = lm[L.SKULL, :].mean(0)
        self.rest_yaw = geometry.head_angles(lm)[0]
        # A character drawn turned (a three-quarter view) has little texture for its far side:
        # turning further away is limited by max_total_yaw, turning back towards frontal by
        # how much of the far side the picture shows; each at least YAW_AWAY_MIN / YAW_BACK_MIN.
        r = abs(self.rest_yaw)
        o = self.options
        away = max(YAW_AWAY_MIN, min(o.max_yaw, o.max_total_yaw - r))
        back = max(YAW_BACK_MIN, o.max_yaw - r)
        self._yaw_range = (-away, back) if self.rest_yaw < 0 else (-back, away)
        self.eyes = {True: _EyeFrame(lm, True).bind(lm), False: _EyeFrame(lm, False).bind(lm)}
        # how far the head may shift each way (inter-ocular units): at most max_shift, and at most
        # ROOM_SHARE of the room between the face and the picture's edge on that side (a face
        # cropped close to the chin has little room below it before the neck would fold)
        oval = lm[L.FACE_OVAL, :2]
        size = float(character.size)
        room = np.array([oval[:, 0].min(), oval[:, 1].min(), size - oval[:, 0].max(), size - oval[:, 1].max()])
        self._shift_lo = -np.minimum(o.max_shift, ROOM_SHARE * np.maximum(room[:2], 0.0) / self.iod)
        self._shift_hi = np.minimum(o.max_shift, ROOM_SHARE * np.maximum(room[2:], 0.0) / self.iod)
        self.gap = geometry.mouth_gap(lm)
        self._jaw = np.array(L.jaw_weights(N_LANDMARKS))
        self._outline_mix = _outline_mix(lm, self.iod)
        self.voice = VoiceMouth(lm, self.options.round_gain)
        canon = (lm - self.centre) @ geometry.rot_z(-self.roll).T / self.iod
        self._mouth_w = float(np.linalg.norm(canon[L.MOUTH_CORNERS[1], :2] - canon[L.MOUTH_CORNERS[0], :2]))
        self.idle = idle or Idle()
        self._neutral: _Neutral | None = None
        self._neutral_key: tuple | None = None
        self._first: FaceState | None = None
        self._rz = geometry.rot_z(self.roll)
        o = self.options
        # head: (yaw, pitch, roll) degrees, speeds in degrees/s; (log scale, shift x, y) in IODs
        self._f_head = OneEuroFilter(OneEuroParams(o.smooth_min_cutoff, 0.15, 1.0))
        self._f_move = OneEuroFilter(OneEuroParams(o.smooth_min_cutoff, o.smooth_beta, 1.0))
        mc = o.steady_min_cutoff
        self._steady_pitch = OneEuroFilter(OneEuroParams(mc, o.steady_pitch_beta, 1.0))
        self._steady_move = OneEuroFilter(OneEuroParams(mc, o.steady_move_beta, 1.0))
        # the lips (and, fading, the cheeks and chin that move with them) get their own cutoff
        mouth = self.voice.region[:, None]
        self._steady_expr = OneEuroFilter(
            OneEuroParams(
                mc + (o.steady_mouth_min_cutoff - mc) * mouth,
                o.steady_expression_beta + (o.steady_mouth_beta - o.steady_expression_beta) * mouth,
                5.0,
            )
        )

    # -- public ---------------------------------------------------------------------------------
    def neutral_pose(self, timestamp: float = 0.0) -> TargetPose:
        """The character exactly as drawn (the identity pose)."""
        return TargetPose(landmarks=self.char.astype(np.float32), timestamp=timestamp)

    def retarget(
        self, face: FaceState | None, neutral: FaceState | None, mouth: MouthSignal | None = None
    ) -> TargetPose:
        """The character pose for `face`, measured against the driver's `neutral`.

        With no neutral yet, the first face seen is the neutral. With no landmarks at all (face
        never found) the character rests in its own pose with idle motion. `mouth` (the voice)
        drives the mouth as `options.lipsync` says.
        """
        o = self.options
        t = float(face.timestamp) if face is not None else 0.0
        drv_lm = face.landmarks if face is not None else None
        have = drv_lm is not None
        if neutral is None or neutral.landmarks is None:
            # no calibrated neutral yet: the first face seen stands in for it
            if self._first is None and have:
                self._first = FaceState(found=True, timestamp=t, landmarks=np.array(drv_lm))
            neutral = self._first
        w_idle = 0.0
        if o.idle:
            w_idle = 1.0 if face is None or not have else float(np.clip(face.lost_blend, 0.0, 1.0))
        idle = self.idle.sample(t) if (w_idle > 0 or o.auto_blink) else IdleMotion()
        blink = idle.blink * max(w_idle, 1.0 if o.auto_blink else 0.0)

        if drv_lm is not None and neutral is not None:
            nu = self._neutral_for(neutral)
            drv = np.asarray(drv_lm, np.float64)
            if o.mirror:
                drv = nu.flip(drv)
            n, n_roll, ap_l0, ap_r0, gaze0, n_iod = nu.measures(o.mirror)
            s, rot, _ = geometry.similarity_fit(n[L.SKULL, :], drv[L.SKULL, :])
            shift = (drv[L.SKULL, :].mean(0) - n[L.SKULL, :].mean(0)) / n_iod
            resid = ((drv - drv[L.SKULL, :].mean(0)) @ rot) / s + n[L.SKULL, :].mean(0) - n
            rzn = geometry.rot_z(n_roll)
            expr = resid @ rzn / n_iod  # rows rotated by Rz(-roll): canonical frame
            if o.steady_min_cutoff > 0:  # the texture's tremble between the tracker's frames
                expr = self._steady_expr(expr, t)
            extra = self._lips_to_character(expr, ((n[L.MOUTH_CORNERS[1]] - n[L.MOUTH_CORNERS[0]]) @ rzn)[:2] / n_iod)
            # A driver whose neutral mouth is open (talking while calibrating) would otherwise
            # never open the character's mouth that far: measure the opening from shut instead.
            open0 = geometry.mouth_gap(n) / n_iod - self.gap / self.iod
            if open0 > 0:
                expr[:, 1] += self._jaw * open0
            # pulled in further: the opening drawn round, as the voice's, as far as the driver's lips part
            self.voice.oval(expr, extra, geometry.mouth_gap(resid + n) / n_iod)
            yaw, pitch, roll = geometry.euler_yxz(rzn.T @ rot @ rzn)
            orient = self._orientation(nu, n, rzn, o.mirror)
            # what a viewer calls head roll is the eye line's angle in the picture
            roll2d = _wrap(geometry.canonical_frame(drv)[1] - n_roll)
            # lids and gaze on the frontalised face: the character's own head rotation adds
            # the foreshortening of a pitched head once, not twice
            front = resid + n
            open_l = _eye_openness(geometry.eye_aperture(front, True) / max(ap_l0, 1e-6))
            open_r = _eye_openness(geometry.eye_aperture(front, False) / max(ap_r0, 1e-6))
            gz = (geometry.gaze(front, False) + geometry.gaze(front, True)) * 0.5 - gaze0
        else:
            s, shift, expr = 1.0, np.zeros(3), np.zeros((N_LANDMARKS, 3))
            orient = self._rz
            yaw = pitch = roll = roll2d = 0.0
            open_l = open_r = 1.0
            gz = np.zeros(2)

        reliable = tracked_mouth_reliable(face, have and neutral is not None)
        # the hand-over runs on the camera's clock; with no camera at all, on the voice's
        self.voice.mix(expr, mouth, o.lipsync, reliable, t if face is not None or mouth is None else mouth.timestamp)
        es, hs = o.expression_strength, o.head_strength
        if self._outline_mix is not None:
            expr[L.FACE_OVAL, :] = self._outline_mix @ expr
        # expression on the character's own face, turned the way the character's face is turned
        # (a three-quarter view gets its mouth widened along the turned face, not the picture)
        pts = self.char + (expr @ orient.T) * (self.iod * es)
        open_l = float(np.clip(1.0 + es * (open_l - 1.0), 0.0, 1.4)) * (1.0 - blink)
        open_r = float(np.clip(1.0 + es * (open_r - 1.0), 0.0, 1.4)) * (1.0 - blink)
        g = np.clip(gz * o.gaze_gain * min(es, 1.0), [-0.35, -0.2], [0.35, 0.2])
        self.eyes[True].apply(pts, pts, open_l, g)
        self.eyes[False].apply(pts, pts, open_r, g)
        self._uncross_lips(pts)
        smooth = o.smooth_min_cutoff > 0 and have
        mouth_open = max(0.0, geometry.mouth_gap(pts) - self.gap) / self.iod

        # head: driver rotation (in canonical axes) -> character's canonical axes
        yaw_d = soft_clip(math.degrees(yaw) * hs + idle.yaw * w_idle, *self._yaw_range, YAW_KNEE)
        pitch_d = float(np.clip(math.degrees(pitch) * hs + idle.pitch * w_idle, -o.max_pitch, o.max_pitch))
        roll_d = float(np.clip(math.degrees(roll) * hs + idle.roll * w_idle, -o.max_roll, o.max_roll))
        line_d = float(np.clip(math.degrees(roll2d) * hs + idle.roll * w_idle, -o.max_roll, o.max_roll))
        if smooth:
            yaw_d, pitch_d, roll_d, line_d = (
                float(v) for v in self._f_head(np.array([yaw_d, pitch_d, roll_d, line_d]), t)
            )
            f = self._f_move(np.array([math.log(max(s, 1e-3)), shift[0], shift[1]]), t)
            s, shift = math.exp(f[0]), np.array([f[1], f[2], 0.0])
        if o.steady_min_cutoff > 0 and have:
            pitch_d = float(self._steady_pitch(np.array([pitch_d]), t)[0])
            f = self._steady_move(np.array([math.log(max(s, 1e-3)), shift[0], shift[1]]), t)
            s, shift = math.exp(f[0]), np.array([f[1], f[2], 0.0])
        # the driver's rotation, about the character's own (possibly turned) head axes
        driver_rot = geometry.from_euler_yxz(math.radians(yaw_d), math.radians(pitch_d), math.radians(roll_d))
        rh = orient @ driver_rot @ orient.T
        scale = float(np.clip(math.exp(hs * math.log(max(s, 1e-3))), 0.8, 1.25))
        scale *= 1.0 + (idle.scale - 1.0) * w_idle
        move = shift * hs
        mag = float(np.linalg.norm(move[:2]))
        if mag > o.max_shift:
            move = move * (o.max_shift / mag)
        move[:2] = np.clip(move[:2], self._shift_lo, self._shift_hi)
        trans = self.pivot + move * self.iod
        trans[1] += idle.dy * w_idle * self.iod
        trans[2] = self.pivot[2]
        a = scale * rh
        head = np.concatenate([a, (trans - a @ self.pivot)[:, None]], axis=1)
        # rotate with the outline's depth flattened (a silhouette slides round the head)
        zc = self.pivot[2]
        pts[L.FACE_OVAL, 2] = zc + OUTLINE_DEPTH * (pts[L.FACE_OVAL, 2] - zc)
        out = pts @ a.T + head[:, 3]
        out[L.FACE_OVAL, 2] = zc + (out[L.FACE_OVAL, 2] - zc) / OUTLINE_DEPTH
        # turn in the picture plane so the eye line tilts exactly as the driver's did (the 3-D
        # rotation alone tilts it a little differently once yaw and pitch combine, and the
        # driver's eye corners move with expressions too)
        fix = math.radians(line_d) - _wrap(geometry.canonical_frame(out)[1] - self.roll)
        if abs(fix) > 1e-6:
            rf = geometry.rot_z(fix)
            out = (out - trans) @ rf.T + trans
            head = np.concatenate([rf @ head[:, :3], (rf @ (head[:, 3] - trans) + trans)[:, None]], axis=1)
        roll_d = line_d
        return TargetPose(
            landmarks=out.astype(np.float32),
            head_matrix=head.astype(np.float32),
            mouth_open=float(mouth_open),
            eye_close_left=1.0 - open_l,
            eye_close_right=1.0 - open_r,
            gaze=(float(g[0]), float(g[1])),
            yaw=yaw_d,
            pitch=pitch_d,
            roll=roll_d,
            scale=scale,
            timestamp=t,
            idle=w_idle,
        )

    # -- helpers --------------------------------------------------------------------------------
    def _neutral_for(self, neutral: FaceState) -> _Neutral:
        assert neutral.landmarks is not None  # the caller's check
        key = (id(neutral.landmarks), float(neutral.timestamp), float(neutral.landmarks[1, 0]))
        if self._neutral is None or key != self._neutral_key:
            self._neutral = _Neutral(np.asarray(neutral.landmarks, np.float64))
            self._neutral_key = key
        return self._neutral

    def _orientation(self, nu: _Neutral, n: np.ndarray, rzn: np.ndarray, mirror: bool) -> np.ndarray:
        """Rotation from the driver's canonical face frame to the character's head in its picture.

        A 3-D fit of the character's skull points to the driver's neutral ones: a frontal
        character gives about its in-plane roll, a three-quarter view its turn as well.
        """
        key = ("orient", mirror)
        if key not in nu.cache:
            _, r_cn, _ = geometry.similarity_fit(n[L.SKULL, :], self.char[L.SKULL, :])
            nu.cache[key] = r_cn @ rzn
        return nu.cache[key]

    def _lips_to_character(self, expr: np.ndarray, corners: np.ndarray) -> float:
        """The driver's lips' sideways motion in shares of the mouth width (`LIP_SCALE`), pulled in
        further where the driver's pull in, as the voice's are (`lipsync.rounded`).

        `expr`: the canonical expression; `corners`: the driver's neutral corner-to-corner vector
        in the same canonical units. Returns the extra narrowing drawn (a share of the width, <= 0)."""
        w0 = float(np.linalg.norm(corners))
        if w0 < 1e-6:
            return 0.0
        c0, c1 = L.MOUTH_CORNERS
        share = float(np.linalg.norm(corners + expr[c1, :2] - expr[c0, :2])) / w0 - 1.0  # of its own width
        k = float(np.clip(self._mouth_w / w0, *LIP_SCALE))
        expr[:, 0] *= 1.0 + (k - 1.0) * self.voice.region
        extra = rounded(share, self.options.round_gain) - share
        if extra != 0.0:
            expr[:, 0] += self.voice.dx * extra
        return extra

    def _uncross_lips(self, pts: np.ndarray) -> None:
        """Inner lips never pass through each other (a crossing folds the warp)."""
        up, lo = L.INNER_UPPER, L.INNER_LOWER
        v_up = (pts[up, :2] - self.centre[:2]) @ self._rz[:2, 1]
        v_lo = (pts[lo, :2] - self.centre[:2]) @ self._rz[:2, 1]
        bad = v_lo < v_up
        if bad.any():
            mid = (pts[up, :2] + pts[lo, :2]) * 0.5
            idx_u = np.array(up)[bad]
            idx_l = np.array(lo)[bad]
            pts[idx_u, :2] = mid[bad]
            pts[idx_l, :2] = mid[bad]


def _outline_mix(lm: np.ndarray, iod: float) -> np.ndarray | None:
    """(n_outline, 478) weights: each outline point's expression as a blend of its own and that of
    the inner points it lies on in the character's picture.

    On a face drawn turned, the far side's outline is hidden behind the cheek and MediaPipe puts
    it on the nose, lips or jaw. Moved by the driver's outline (which on a frontal driver is far
    from the mouth) it would stay while the lip a few pixels away drops with the jaw, and the
    warp would fold between them. Blended, it moves with what it lies on; on a frontal
    character the outline is clear of the inner points and keeps its own motion.
    """
    sigma = OUTLINE_MIX_SIGMA * iod
    oval = np.asarray(L.FACE_OVAL)
    inner = np.setdiff1d(np.arange(468), oval)  # the face mesh without the outline (no irises)
    d = np.linalg.norm(lm[oval, None, :2] - lm[None, inner, :2], axis=-1)
    w = np.exp(-((d / sigma) ** 2))
    w[w < 1e-3] = 0.0
    if not w.any():
        return None
    mix = np.zeros((len(oval), len(lm)))
    mix[np.arange(len(oval)), oval] = 1.0
    mix[:, inner] = w
    return mix / mix.sum(1, keepdims=True)


def _wrap(a: float) -> float:
    """Angle in radians wrapped to (-pi, pi]."""
    return (a + math.pi) % (2 * math.pi) - math.pi


def _eye_openness(ratio: float) -> float:
    """Driver lid ratio (current / neutral) -> 0 shut .. 1 neutral .. >1 wide."""
    return (ratio - EYE_SHUT_RATIO) / (1.0 - EYE_SHUT_RATIO)
