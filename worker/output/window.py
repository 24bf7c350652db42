"""The "window" output: a preview window (OpenCV HighGUI), transparency shown as a checkerboard."""

from __future__ import annotations

import cv2
import numpy as np

from worker.errors import UserError
from worker.output.base import Output, check_rgba, checkerboard, composite, parse_colour
from worker.output.registry import OUTPUTS, display_available


class WindowOutput(Output):
    name = "window"

    def __init__(self, title: str = "Stream Animator", background: str | tuple[int, int, int] = "checker"):
        super().__init__()
        self.title = title
        self.background = background
        self._checker: np.ndarray | None = None
        self._open = False

    @classmethod
    def from_config(cls, config: dict) -> WindowOutput:
        o = OUTPUTS["window"].check(config)
        bg = o["background"]
        return cls(str(o["title"]), bg if bg == "checker" else parse_colour(bg, "outputs.window.background"))

    def start(self) -> None:
        if not display_available():
            raise UserError("window output needs a display (DISPLAY/WAYLAND_DISPLAY is not set)")

    def _bgr(self, rgba: np.ndarray) -> np.ndarray:
        h, w = rgba.shape[:2]
        background = self.background
        if isinstance(background, str):  # "checker", the only name
            if self._checker is None or self._checker.shape[:2] != (h, w):
                self._checker = checkerboard(h, w)
            a = rgba[..., 3:4].astype(np.uint16)
            rgb = (rgba[..., :3].astype(np.uint16) * a + self._checker.astype(np.uint16) * (255 - a) + 127) // 255
            rgb = rgb.astype(np.uint8)
        else:
            rgb = composite(rgba, background)
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)

    def send(self, rgba: np.ndarray, seq: int, capture_ts: float) -> None:
        check_rgba(rgba)
        try:
            cv2.imshow(self.title, self._bgr(rgba))
            cv2.waitKey(1)  # lets HighGUI paint; keys are ignored
        except cv2.error as e:
            raise UserError(f"window output: OpenCV cannot open a window ({' '.join(str(e).split())[:200]})") from None
        self._open = True
        self.metrics.delivered_frame(capture_ts)

    def close(self) -> None:
        if self._open:
            try:
                cv2.destroyWindow(self.title)
                cv2.waitKey(1)
            except cv2.error:
                pass
            self._open = False
