"""The "spout" output (Windows): share frames as a Spout2 sender through SpoutGL.

OBS receives it with the Spout2 plugin's ``spout_capture`` source (``compositemode`` 2 or 3
keeps alpha). SpoutGL ships Windows wheels only, so it is imported only there, when the
output starts.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from worker.errors import UserError
from worker.output.base import Output, check_rgba
from worker.output.registry import OUTPUTS

GL_RGBA = 0x1908  # OpenGL enum; saves a PyOpenGL dependency for one constant


class SpoutOutput(Output):
    name = "spout"

    def __init__(self, sender_name: str = "Stream Animator"):
        super().__init__()
        if not isinstance(sender_name, str) or not sender_name.strip():
            raise UserError("outputs.spout.sender_name must be a non-empty string")
        self.sender_name = sender_name
        self._spoutgl: Any = None  # SpoutGL (untyped), loaded by start
        self._sender: Any = None

    @classmethod
    def from_config(cls, config: dict) -> SpoutOutput:
        o = OUTPUTS["spout"].check(config)
        return cls(o["sender_name"])

    def start(self) -> None:
        if sys.platform != "win32":
            raise UserError("spout output needs Windows and SpoutGL")
        try:
            import SpoutGL  # noqa: N813 - the package's own name
        except ImportError:
            raise UserError("spout output needs Windows and SpoutGL (pip install SpoutGL)") from None
        self._spoutgl = SpoutGL

    def send(self, rgba: np.ndarray, seq: int, capture_ts: float) -> None:
        check_rgba(rgba)
        if self._sender is None:
            # Created on the output thread, which then owns Spout's OpenGL/DirectX state.
            self._sender = self._spoutgl.SpoutSender()
            self._sender.setSenderName(self.sender_name)
        h, w = rgba.shape[:2]
        if not self._sender.sendImage(np.ascontiguousarray(rgba), w, h, GL_RGBA, False, 0):
            raise RuntimeError("SpoutGL sendImage failed")
        self.metrics.delivered_frame(capture_ts)

    def close(self) -> None:
        if self._sender is not None:
            try:
                self._sender.releaseSender()
            finally:
                self._sender = None
