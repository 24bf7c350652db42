"""`FaceTracker`: MediaPipe face mesh (478 points, video mode) -> smoothed `FaceState`.

Per frame (`measure`): face mesh -> landmarks in pixels -> head pose (solvePnP against our
canonical face, `worker.track.pose`) and expression features (`worker.track.features`).
Then (`update`): One Euro smoothing of the mesh (`worker.track.one_euro.LandmarkSmoother`),
pose and features measured again on the smoothed mesh, so that they agree with the landmarks
a renderer receives, and a light One Euro pass over pose and features. `raw_landmarks` keeps
the unsmoothed mesh.

Around that:
* Neutral pose: the average of the first `neutral_frames` confident frames, re-taken after
  `calibrate()` (the old neutral stays valid until the new one is complete). Exposed as
  `tracker.neutral` so that retargeting expresses motion relative to it.
* Face lost: the last state is held for `hold_s`, then eased to the neutral over `ease_out_s`
  (`lost_blend` goes 0 -> 1, `found` is False throughout). When the face comes back, the
  output eases from wherever it was to the live state over `ease_in_s`, so nothing jumps.
* Confidence: the legacy face-mesh API does not expose its face-presence score, so confidence
  is how well a rigid head explains the landmarks: the RMS reprojection error of the head-pose
  fit as a fraction of the inter-ocular distance: 1 at <= 12 %, 0 at >= 30 %. Tracked faces of
  the test footage score 2-13 % (the rest is the difference between their face shapes and our
  canonical one); a mesh that is not a rigid head (a bad fit, a wildly distorted frame)
  scores lower. Only `found` is MediaPipe's own decision.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from worker.track.blend import blend_states, mean_state, smoothstep
from worker.track.face_state import N_LANDMARKS, FaceState
from worker.track.features import FEATURE_NAMES, face_features
from worker.track.one_euro import DEFAULTS, LandmarkSmoother, OneEuroFilter, OneEuroParams
from worker.track.pose import HeadPoseSolver

_FEATURES = FEATURE_NAMES[1:7]  # eyes, mouth, brows (not the scale, not gaze)
_CONF_GOOD, _CONF_BAD = 0.12, 0.30  # reprojection RMS / inter-ocular distance


def _confidence(reprojection_error: float, face_scale: float) -> float:
    r = reprojection_error / max(face_scale, 1e-6)
    return float(np.clip((_CONF_BAD - r) / (_CONF_BAD - _CONF_GOOD), 0.0, 1.0))


class FaceTracker:
    """Tracks one face through a video stream; call `process` once per frame, in time order."""

    def __init__(
        self,
        *,
        smoothing: bool = True,
        filters: dict[str, OneEuroParams] | None = None,
        neutral_frames: int = 15,
        min_confidence: float = 0.5,
        hold_s: float = 0.3,
        ease_out_s: float = 0.7,
        ease_in_s: float = 0.2,
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
        track_every: int = 1,
        per_frame: bool = False,
    ) -> None:
        """`per_frame`: find and fit the face in every frame on its own (MediaPipe's static-image
        mode: no region carried over from the last frame), a second, independent reading."""
        import mediapipe as mp  # heavy import, only when a tracker is made

        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=per_frame,
            max_num_faces=1,
            refine_landmarks=True,
            min_detection_confidence=min_detection_confidence,
            min_tracking_confidence=min_tracking_confidence,
        )
        self.smoothing = smoothing
        if track_every < 1:
            raise ValueError("track_every must be >= 1")
        self.track_every = track_every  # face mesh on every n-th frame (performance: low)
        self._frame_no = 0
        self.mesh_runs = 0  # frames the face mesh ran on
        self._last_raw: FaceState | None = None
        params = {**DEFAULTS, **(filters or {})}
        self._base_params = params
        self._paused = False
        self._pending_smoothing: float | None = None
        self._f_lm = LandmarkSmoother(params["shape"], params["frame"])
        self._f_pose = OneEuroFilter(params["pose"])
        self._f_feat = OneEuroFilter(params["features"])
        self._pose = HeadPoseSolver()  # on raw landmarks (measure)
        self._pose_smooth = HeadPoseSolver()  # on smoothed landmarks
        self.neutral_frames = neutral_frames
        self.min_confidence = min_confidence
        self.hold_s, self.ease_out_s, self.ease_in_s = hold_s, ease_out_s, ease_in_s
        self.neutral: FaceState | None = None
        self._neutral_buf: list[FaceState] | None = []  # None = not collecting
        self._last: FaceState | None = None  # last output
        self._lost_since: float | None = None
        self._lost_from: FaceState | None = None
        self._resume_from: FaceState | None = None
        self._resume_t0 = 0.0

    # --- public -------------------------------------------------------------------------------
    def calibrate(self) -> None:
        """Re-take the neutral pose from the next `neutral_frames` confident frames."""
        self._neutral_buf = []

    @property
    def calibrating(self) -> bool:
        return self._neutral_buf is not None

    def set_smoothing(self, amount: float) -> None:
        """0 = raw tracking, 1 = the tuned default, 2 = twice as steady (half the cutoffs and
        betas: less shimmer, more lag), and so on in between. Safe to call from another thread:
        it takes effect at the next frame."""
        self._pending_smoothing = float(amount)

    def _apply_smoothing(self, amount: float) -> None:
        if amount <= 0:
            self.smoothing = False
            return
        if not self.smoothing:  # the filters' state is stale: start them afresh
            self._reset_filters()
        self.smoothing = True

        def scaled(p: OneEuroParams) -> OneEuroParams:
            return OneEuroParams(p.mincutoff / amount, p.beta / amount, p.dcutoff)

        b = self._base_params
        self._f_lm.shape.params = scaled(b["shape"])
        self._f_lm.frame.params = scaled(b["frame"])
        self._f_pose.params = scaled(b["pose"])
        self._f_feat.params = scaled(b["features"])

    def hold(self, timestamp: float) -> FaceState:
        """While paused: the last output, frozen, re-stamped; no frame is analysed. The next
        `process` eases in from it (as after a lost face), so resuming does not jump."""
        self._paused = True
        if self._last is None:
            base = self.neutral or FaceState(found=False, lost_blend=1.0)
            return dataclasses.replace(base, timestamp=timestamp)
        return dataclasses.replace(self._last, timestamp=timestamp)

    def lost(self, timestamp: float) -> FaceState:
        """No picture at `timestamp` (the camera is missing): the face counts as lost, so the
        character eases to rest and idles, exactly as when you leave the frame."""
        return self.update(FaceState(found=False, timestamp=timestamp))

    def _reset_filters(self) -> None:
        for f in (self._f_lm, self._f_pose, self._f_feat):
            f.reset()

    def reset(self) -> None:
        """Forget the stream (filters, pose warm start, lost state); keeps the neutral."""
        self._reset_filters()
        self._pose.reset()
        self._pose_smooth.reset()
        self._last = self._lost_since = self._lost_from = self._resume_from = None
        self._last_raw = None

    def close(self) -> None:
        self._mesh.close()

    def __enter__(self) -> FaceTracker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def process(self, bgr_image: np.ndarray, timestamp: float) -> FaceState:
        """Track one BGR frame taken at `timestamp` seconds; always returns a state.

        With `track_every` > 1 the face mesh runs on every n-th frame only; a frame between reuses
        the last found measurement at its own time, so the One Euro filters carry the motion on."""
        self._frame_no += 1
        last = self._last_raw
        if self.track_every > 1 and last is not None and self._frame_no % self.track_every:
            return self.update(dataclasses.replace(last, timestamp=timestamp))
        raw = self.measure(bgr_image, timestamp)
        self.mesh_runs += 1
        self._last_raw = raw if raw.found else None
        return self.update(raw)

    def update(self, raw: FaceState) -> FaceState:
        """Everything after the face mesh: smoothing, neutral, lost/resume easing.

        `raw` is a `measure`/`measure_landmarks` result (or a not-found state)."""
        pending, self._pending_smoothing = self._pending_smoothing, None
        if pending is not None:
            self._apply_smoothing(pending)
        out = self._on_found(raw) if raw.found else self._on_lost(raw)
        self._paused = False
        self._last = out
        return out

    def measure_landmarks(self, landmarks: np.ndarray, timestamp: float, frame_size: tuple[int, int]) -> FaceState:
        """The unsmoothed state for (478, 3) landmarks in pixels of a `frame_size` (w, h) frame."""
        pts = np.asarray(landmarks, np.float32)
        if pts.shape != (N_LANDMARKS, 3):
            raise ValueError(f"expected ({N_LANDMARKS}, 3) landmarks, got {pts.shape}")
        return self._state_from_landmarks(pts, timestamp, frame_size)

    def measure(self, bgr_image: np.ndarray, timestamp: float) -> FaceState:
        """The unsmoothed state of one frame (no filtering, neutral or lost handling)."""
        if bgr_image.ndim != 3 or bgr_image.shape[2] != 3:
            raise ValueError(f"expected an (h, w, 3) BGR image, got {bgr_image.shape}")
        h, w = bgr_image.shape[:2]
        rgb = cv2.cvtColor(bgr_image, cv2.COLOR_BGR2RGB)
        rgb.flags.writeable = False
        res = self._mesh.process(rgb)
        if not res.multi_face_landmarks:
            return FaceState(found=False, timestamp=timestamp, frame_size=(w, h))
        lm = res.multi_face_landmarks[0].landmark
        pts = np.array([(q.x, q.y, q.z) for q in lm], np.float32)
        if len(pts) != N_LANDMARKS:
            raise RuntimeError(f"face mesh returned {len(pts)} landmarks, expected {N_LANDMARKS}")
        pts *= np.array([w, h, w], np.float32)
        return self._state_from_landmarks(pts, timestamp, (w, h))

    # --- internals ----------------------------------------------------------------------------
    def _state_from_landmarks(
        self, pts: np.ndarray, t: float, size: tuple[int, int], solver: HeadPoseSolver | None = None
    ) -> FaceState:
        pose = (solver or self._pose).solve(pts, size)
        f = face_features(pts)
        return FaceState(
            found=True,
            timestamp=t,
            frame_size=size,
            confidence=_confidence(pose.reprojection_error, f["face_scale"]),
            landmarks=pts,
            raw_landmarks=pts,
            pitch=pose.pitch,
            yaw=pose.yaw,
            roll=pose.roll,
            translation=pose.tvec.astype(np.float32),
            face_scale=f["face_scale"],
            eye_open_left=f["eye_open_left"],
            eye_open_right=f["eye_open_right"],
            mouth_open=f["mouth_open"],
            mouth_width=f["mouth_width"],
            brow_raise_left=f["brow_raise_left"],
            brow_raise_right=f["brow_raise_right"],
            gaze=(f["gaze_x"], f["gaze_y"]),
        )

    def _smooth(self, raw: FaceState) -> FaceState:
        """Smoothed landmarks, and pose and features measured on them (then lightly filtered)."""
        t = raw.timestamp
        assert raw.raw_landmarks is not None  # only found faces are smoothed
        lm = self._f_lm(raw.raw_landmarks, t).astype(np.float32)
        out = self._state_from_landmarks(lm, t, raw.frame_size, self._pose_smooth)
        out.raw_landmarks = raw.raw_landmarks
        out.confidence = raw.confidence
        pitch, yaw, roll = self._f_pose(np.array([out.pitch, out.yaw, out.roll]), t)
        feats = self._f_feat(np.array([getattr(out, n) for n in _FEATURES] + list(out.gaze)), t)
        out.pitch, out.yaw, out.roll = float(pitch), float(yaw), float(roll)
        for name, v in zip(_FEATURES, feats[:-2], strict=True):
            setattr(out, name, float(v))
        out.gaze = (float(feats[-2]), float(feats[-1]))
        return out

    def _on_found(self, raw: FaceState) -> FaceState:
        t = raw.timestamp
        had_face = self._last is not None and self._last.landmarks is not None
        if (self._lost_since is not None or self._paused) and had_face:
            # the face is back (or tracking resumes): restart the filters, ease in
            self._reset_filters()
            self._resume_from, self._resume_t0 = self._last, t
            self._lost_since = self._lost_from = None
        live = self._smooth(raw) if self.smoothing else raw
        self._collect_neutral(live)
        out = live
        if self._resume_from is not None:
            u = (t - self._resume_t0) / self.ease_in_s if self.ease_in_s > 0 else 1.0
            if u >= 1.0:
                self._resume_from = None
            else:
                w = smoothstep(u)
                out = blend_states(self._resume_from, live, w)
                out.found = True
                out.lost_blend = float(self._resume_from.lost_blend * (1.0 - w))
                out.raw_landmarks = raw.raw_landmarks
        return out

    def _on_lost(self, raw: FaceState) -> FaceState:
        t = raw.timestamp
        if self._lost_since is None or self._paused:
            self._lost_since, self._lost_from = t, self._last
            self._resume_from = None
            self._pose.reset()
            self._pose_smooth.reset()
        src = self._lost_from if self._lost_from is not None and self._lost_from.landmarks is not None else None
        target = self.neutral if self.neutral is not None else src
        if src is None:
            src = target
        if src is None:  # never saw a face: nothing to hold
            return dataclasses.replace(raw, lost_blend=1.0)
        elapsed = t - self._lost_since
        u = (elapsed - self.hold_s) / self.ease_out_s if self.ease_out_s > 0 else float(elapsed >= self.hold_s)
        w = smoothstep(u)
        assert target is not None  # src is not None, and target falls back to it
        out = blend_states(src, target, w)
        out.found = False
        out.confidence = 0.0
        out.raw_landmarks = None
        out.timestamp, out.frame_size = t, raw.frame_size
        out.lost_blend = float(src.lost_blend + (1.0 - src.lost_blend) * w)
        return out

    def _collect_neutral(self, state: FaceState) -> None:
        if self._neutral_buf is None or state.confidence < self.min_confidence:
            return
        self._neutral_buf.append(state)
        if len(self._neutral_buf) >= self.neutral_frames:
            self.neutral = mean_state(self._neutral_buf)
            self._neutral_buf = None
