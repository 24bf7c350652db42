"""The "virtualcam" output: a virtual webcam for other apps (Discord, Zoom) via pyvirtualcam.

Backends: OBS or Unity Capture on Windows, OBS on macOS, v4l2loopback on Linux. Cameras have
no alpha, so frames are composited over `background`, and resized when the camera was opened
at another size.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from worker.errors import UserError
from worker.output.base import Output, check_rgba, composite, parse_colour
from worker.output.registry import OUTPUTS

PROBE_SIZE = (640, 480)


def _import_pyvirtualcam():
    try:
        import pyvirtualcam
    except ImportError:
        raise UserError("virtualcam output needs pyvirtualcam (pip install pyvirtualcam)") from None
    return pyvirtualcam


class VirtualCamOutput(Output):
    name = "virtualcam"

    def __init__(
        self,
        width: int | None = None,
        height: int | None = None,
        fps: float = 30.0,
        device: str | None = None,
        backend: str | None = None,
        background=(0, 0, 0),
    ):
        super().__init__()
        if (width is None) != (height is None):
            raise UserError("outputs.virtualcam: give both width and height, or neither")
        self.size = None if width is None or height is None else (width, height)
        self.fps, self.device, self.backend, self.background = fps, device, backend, background
        self._cam: Any = None  # pyvirtualcam (untyped), loaded by start
        self._pvc: Any = None

    @classmethod
    def from_config(cls, config: dict) -> VirtualCamOutput:
        o = OUTPUTS["virtualcam"].check(config)
        return cls(
            o["width"],
            o["height"],
            float(o["fps"]),
            o["device"],
            o["backend"],
            parse_colour(o["background"], "outputs.virtualcam.background"),
        )

    def _open(self, size: tuple[int, int]):
        try:
            return self._pvc.Camera(
                size[0],
                size[1],
                self.fps,
                fmt=self._pvc.PixelFormat.RGB,
                device=self.device,
                backend=self.backend,
                print_fps=False,
            )
        except Exception as e:  # pyvirtualcam raises RuntimeError listing each backend's failure
            raise UserError(f"virtualcam output: no virtual camera available ({' '.join(str(e).split())})") from None

    def start(self) -> None:
        self._pvc = _import_pyvirtualcam()
        if self.size is not None:
            self._cam = self._open(self.size)
        else:
            self._open(PROBE_SIZE).close()  # fail now, with a clear message, not on the first frame

    def send(self, rgba: np.ndarray, seq: int, capture_ts: float) -> None:
        check_rgba(rgba)
        h, w = rgba.shape[:2]
        if self._cam is None:
            self.size = (w, h)
            self._cam = self._open(self.size)
        rgb = composite(rgba, self.background)
        if (w, h) != self.size:
            rgb = cv2.resize(rgb, self.size, interpolation=cv2.INTER_AREA)
        self._cam.send(rgb)
        self.metrics.delivered_frame(capture_ts)

    def close(self) -> None:
        if self._cam is not None:
            try:
                self._cam.close()
            finally:
                self._cam = None

    def stats(self) -> dict:
        return {**super().stats(), "device": None if self._cam is None else self._cam.device}
