"""Find the face in a still picture: MediaPipe face detection (all faces) + face mesh (the main one)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import cv2
import numpy as np

from worker.mp_runtime import mediapipe, quiet_native_stderr


@dataclass
class StillFace:
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)  # x0,y0,x1,y1 px
    scores: list[float] = field(default_factory=list)
    landmarks: np.ndarray | None = None  # (478, 3) float32 px of the main face, None if no mesh

    @property
    def found(self) -> bool:
        return self.landmarks is not None

    @property
    def main_box(self) -> tuple[float, float, float, float] | None:
        """Tight box of the main face's landmarks (what crops are built from)."""
        if self.landmarks is None:
            return None
        xy = self.landmarks[:, :2]
        x0, y0 = xy.min(axis=0)
        x1, y1 = xy.max(axis=0)
        return float(x0), float(y0), float(x1), float(y1)


class StillFaceFinder:
    """Reusable detector + mesh for still images (building MediaPipe graphs costs ~100 ms)."""

    def __init__(self) -> None:
        mp = mediapipe()
        with quiet_native_stderr():
            # model 1 = full range: also finds small faces in large pictures
            self._detector = mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.5)
            self._mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=True, refine_landmarks=True, max_num_faces=1, min_detection_confidence=0.3
            )
        self._lock = threading.Lock()  # MediaPipe graphs are not re-entrant

    def close(self) -> None:
        self._detector.close()
        self._mesh.close()

    def find(self, rgb: np.ndarray) -> StillFace:
        """All faces' boxes, and the mesh of the largest one, in `rgb`'s pixels."""
        h, w = rgb.shape[:2]
        out = StillFace()
        with self._lock, quiet_native_stderr():
            det = self._detector.process(rgb)
            for d in det.detections or []:
                b = d.location_data.relative_bounding_box
                out.boxes.append((b.xmin * w, b.ymin * h, (b.xmin + b.width) * w, (b.ymin + b.height) * h))
                out.scores.append(float(d.score[0]))
            if out.boxes:
                # Mesh a generous square around the largest face: the mesh's own detector is
                # short-range and misses faces that are small in a big picture.
                big = max(out.boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
                out.landmarks = self._mesh_around(rgb, big)
            if out.landmarks is None:
                out.landmarks = self._mesh_full(rgb)
        main = out.main_box
        if main is not None and not out.boxes:
            out.boxes.append(main)
            out.scores.append(0.5)
        return out

    def mesh(self, rgb: np.ndarray) -> np.ndarray | None:
        """Landmarks of the face filling `rgb` (e.g. an already-cropped character), or None."""
        with self._lock, quiet_native_stderr():
            return self._mesh_full(rgb)

    def _mesh_full(self, rgb: np.ndarray) -> np.ndarray | None:
        res = self._mesh.process(np.ascontiguousarray(rgb))
        if not res.multi_face_landmarks:
            return None
        h, w = rgb.shape[:2]
        return landmarks_to_pixels(res.multi_face_landmarks[0], w, h)

    def _mesh_around(self, rgb: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray | None:
        h, w = rgb.shape[:2]
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        side = 2.2 * max(box[2] - box[0], box[3] - box[1])
        scale = min(1.0, 640.0 / side)  # the mesh runs at 192-256 px: no gain from more pixels
        m = np.array([[scale, 0, side * scale / 2 - cx * scale], [0, scale, side * scale / 2 - cy * scale]])
        n = max(int(round(side * scale)), 32)
        crop = cv2.warpAffine(rgb, m, (n, n), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
        lm = self._mesh_full(crop)
        if lm is None:
            return None
        lm[:, 0] = (lm[:, 0] - m[0, 2]) / scale
        lm[:, 1] = (lm[:, 1] - m[1, 2]) / scale
        lm[:, 2] = lm[:, 2] / scale
        # sanity: the mesh must sit on the detected face, not on something beside it
        mx, my = lm[:, 0].mean(), lm[:, 1].mean()
        if not (box[0] - 0.5 * (box[2] - box[0]) < mx < box[2] + 0.5 * (box[2] - box[0])):
            return None
        if not (box[1] - 0.5 * (box[3] - box[1]) < my < box[3] + 0.5 * (box[3] - box[1])):
            return None
        _ = w, h
        return lm


def landmarks_to_pixels(face_landmarks, width: int, height: int) -> np.ndarray:
    """MediaPipe NormalizedLandmarkList -> (N, 3) float32 pixels (z scaled by width, as MediaPipe)."""
    a = np.array([(p.x, p.y, p.z) for p in face_landmarks.landmark], dtype=np.float32)
    a[:, 0] *= width
    a[:, 1] *= height
    a[:, 2] *= width
    return a


_shared: StillFaceFinder | None = None
_shared_lock = threading.Lock()


def shared_finder() -> StillFaceFinder:
    """One finder per process (preprocessing and `check` reuse it)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = StillFaceFinder()
        return _shared
