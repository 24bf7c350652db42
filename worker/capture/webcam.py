"""Webcam capture with OpenCV, chosen by index or by (part of) the device name."""

from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2

from worker.capture.base import Frame, FrameSource
from worker.capture.errors import CaptureError

MAX_PROBE_INDEX = 10
_MAX_READ_FAILURES = 30  # about one second of a 30 fps camera delivering nothing
_V4L_SYSFS = Path("/sys/class/video4linux")


@dataclass(frozen=True)
class CameraInfo:
    index: int
    name: str
    width: int = 0  # what the camera delivers by default, when probed
    height: int = 0


def _backend() -> int:
    """The OpenCV backend per OS: the native one opens fast and honours MJPEG/size/fps requests."""
    if sys.platform.startswith("linux"):
        return cv2.CAP_V4L2
    if sys.platform == "win32":
        return cv2.CAP_DSHOW  # MSMF takes seconds to open and ignores MJPEG on many cameras
    if sys.platform == "darwin":
        return cv2.CAP_AVFOUNDATION
    return cv2.CAP_ANY


@contextlib.contextmanager
def _quiet_opencv():
    """OpenCV logs a warning for every index it cannot open; probing should be silent."""
    log = getattr(cv2, "utils", None) and getattr(cv2.utils, "logging", None)
    if log is None:
        yield
        return
    old = log.getLogLevel()
    log.setLogLevel(log.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        log.setLogLevel(old)


def _linux_names() -> dict[int, str]:
    names: dict[int, str] = {}
    if not _V4L_SYSFS.is_dir():
        return names
    for dev in _V4L_SYSFS.glob("video*"):
        try:
            idx = int(dev.name[len("video") :])
            names[idx] = (dev / "name").read_text(encoding="utf-8", errors="replace").strip()
        except (ValueError, OSError):
            continue
    return names


def list_cameras(max_index: int = MAX_PROBE_INDEX) -> list[CameraInfo]:
    """Cameras that open and deliver a frame, probing indexes 0..max_index-1 quietly.

    On Linux the names come from /sys/class/video4linux (and only existing /dev/videoN nodes
    are probed); elsewhere OpenCV cannot name devices, so they are called "Camera N".
    """
    linux = sys.platform.startswith("linux")
    names = _linux_names() if linux else {}
    found: list[CameraInfo] = []
    with _quiet_opencv():
        for i in range(max_index):
            if linux and not Path(f"/dev/video{i}").exists():
                continue
            cap = cv2.VideoCapture(i, _backend())
            try:
                if not cap.isOpened():
                    continue
                ok, img = cap.read()
                if not ok or img is None:
                    continue  # e.g. a V4L2 metadata node of a camera
                found.append(CameraInfo(i, names.get(i, f"Camera {i}"), img.shape[1], img.shape[0]))
            finally:
                cap.release()
    return found


def resolve_camera(index_or_name: int | str) -> int:
    """A camera index from an index ("0") or a case-insensitive part of a camera's name."""
    if isinstance(index_or_name, int):
        return index_or_name
    s = str(index_or_name).strip()
    if s.isdigit():
        return int(s)
    cams = list_cameras()
    matches = [c for c in cams if s.lower() in c.name.lower()]
    if not matches:
        have = ", ".join(f"{c.index}: {c.name}" for c in cams) or "none found"
        raise CaptureError(f"no camera named {s!r} (cameras: {have})")
    return matches[0].index


class WebcamSource(FrameSource):
    """Frames from a camera; timestamps are `time.monotonic()` at capture.

    `size` and `fps` report what the camera actually delivers (cameras round requests to
    their own modes); `measured_fps` follows the real frame rate as frames arrive.
    """

    def __init__(
        self,
        index_or_name: int | str = 0,
        width: int = 1280,
        height: int = 720,
        fps: float = 30.0,
        mjpeg: bool = True,
    ) -> None:
        self.index = resolve_camera(index_or_name)
        self.name = f"webcam:{index_or_name}"
        with _quiet_opencv():
            self._cap = cv2.VideoCapture(self.index, _backend())
        if not self._cap.isOpened():
            raise CaptureError(f"camera {index_or_name!r} could not be opened (in use, or not connected?)")
        if mjpeg:  # uncompressed YUYV cannot carry 720p30 over USB 2 on most webcams
            self._cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*"MJPG"))
        self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        self._cap.set(cv2.CAP_PROP_FPS, fps)
        self._cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # newest frame, not a queue of stale ones
        ok, img = self._cap.read()
        if not ok or img is None:
            self._cap.release()
            raise CaptureError(f"camera {index_or_name!r} opened but delivered no frame")
        self.size = (int(img.shape[1]), int(img.shape[0]))
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS) or fps)
        self.measured_fps = 0.0
        self._pending = img
        self._index = 0
        self._last_t: float | None = None

    def read(self) -> Frame | None:
        if self._pending is not None:
            img, self._pending = self._pending, None
        else:
            img = None
            for _ in range(_MAX_READ_FAILURES):
                ok, img = self._cap.read()
                if ok and img is not None:
                    break
                img = None
                time.sleep(0.03)
            if img is None:
                raise CaptureError(f"camera {self.name!r} stopped delivering frames")
        t = time.monotonic()
        if self._last_t is not None and t > self._last_t:
            inst = 1.0 / (t - self._last_t)
            self.measured_fps = inst if self.measured_fps == 0 else 0.9 * self.measured_fps + 0.1 * inst
        self._last_t = t
        frame = Frame(image=img, index=self._index, timestamp=t)
        self._index += 1
        return frame

    def close(self) -> None:
        self._cap.release()
