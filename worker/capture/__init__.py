"""Capture stage: frame sources (webcam, video file, `none`) behind the `FrameSource` interface."""

from __future__ import annotations

from pathlib import Path

from worker.capture.base import Frame, FrameSource
from worker.capture.errors import CaptureError
from worker.capture.none import NoCamera, is_none
from worker.capture.video import VideoFileSource
from worker.capture.webcam import CameraInfo, WebcamSource, list_cameras

__all__ = [
    "CameraInfo",
    "CaptureError",
    "Frame",
    "FrameSource",
    "NoCamera",
    "VideoFileSource",
    "WebcamSource",
    "list_cameras",
    "open_source",
]


def open_source(
    spec: str,
    *,
    width: int = 1280,
    height: int = 720,
    fps: float = 30.0,
    mjpeg: bool = True,
    loop: bool = False,
    realtime: bool = False,
) -> FrameSource:
    """Open "webcam" / "webcam:0" / "webcam:<part of a name>", a video or image file path, or
    "none" (no camera: empty frames at `fps`).

    Camera settings apply to webcams, `loop`/`realtime` to files.
    """
    s = str(spec).strip()
    if is_none(s):
        return NoCamera(fps)
    if s.lower() == "webcam" or s.lower().startswith("webcam:"):
        which = s[len("webcam:") :].strip() if ":" in s else "0"
        if not which:
            raise CaptureError(f"camera missing in {spec!r}: use webcam:<index> or webcam:<name>")
        return WebcamSource(which, width=width, height=height, fps=fps, mjpeg=mjpeg)
    return VideoFileSource(Path(s).expanduser(), loop=loop, realtime=realtime)
