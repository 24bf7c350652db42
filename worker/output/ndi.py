"""The "ndi" output: an NDI sender (RGBA with alpha) for two-PC setups, through cyndilib.

The worker runs on the gaming PC; OBS on the streaming PC receives the frames with the DistroAV
plugin's NDI source, selecting the sender by its name (``--output ndi:NAME``; shown in OBS as
"HOST (NAME)"). cyndilib's Linux and Windows wheels carry the NDI runtime (libndi) inside;
elsewhere the NDI runtime must be installed, and a missing one is a one-line error at start.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np

from worker.errors import UserError
from worker.output.base import Output, check_rgba
from worker.output.registry import OUTPUTS

RUNTIME_HINT = "pip install cyndilib; on macOS also install the NDI runtime from https://ndi.video/tools/"


def load_cyndilib():
    """The cyndilib module, or a UserError naming what is missing (the package or libndi)."""
    try:
        import cyndilib
    except ImportError as e:  # no package, or the package without a loadable libndi
        raise UserError(f"ndi output: NDI runtime not available ({e}); {RUNTIME_HINT}") from None
    except OSError as e:
        raise UserError(f"ndi output: NDI runtime (libndi) failed to load ({e}); {RUNTIME_HINT}") from None
    return cyndilib


class NdiOutput(Output):
    name = "ndi"

    def __init__(self, sender_name: str = "Stream Animator", fps: int = 30):
        super().__init__()
        if not isinstance(sender_name, str) or not sender_name.strip():
            raise UserError("outputs.ndi.name must be a non-empty string")
        self.sender_name = sender_name.strip()
        self.fps = fps
        self._ndi: Any = None  # cyndilib (untyped), loaded by start
        self._sender: Any = None
        self._size: tuple[int, int] | None = None  # (w, h) the open sender was made for

    @classmethod
    def from_config(cls, config: dict) -> NdiOutput:
        o = OUTPUTS["ndi"].check(config)
        return cls(o["name"], o["fps"])

    def start(self) -> None:
        self._ndi = load_cyndilib()

    def _open(self, w: int, h: int) -> None:
        """A sender is tied to one frame size: (re)made on the first frame and when the size changes."""
        self._close_sender()
        ndi = self._ndi
        frame = ndi.VideoSendFrame()
        frame.set_resolution(w, h)
        frame.set_fourcc(ndi.FourCC.RGBA)
        frame.set_frame_rate(Fraction(self.fps, 1))
        # clock_video=False: frames go out when rendered; the pipeline already paces them
        sender = ndi.Sender(self.sender_name, clock_video=False)
        sender.set_video_frame(frame)
        try:
            sender.open()
        except Exception as e:  # libndi refuses (no network stack, bad name): one line
            raise UserError(f"ndi output: cannot open NDI sender {self.sender_name!r}: {e}") from None
        self._sender, self._size = sender, (w, h)

    def send(self, rgba: np.ndarray, seq: int, capture_ts: float) -> None:
        check_rgba(rgba)
        if self._ndi is None:
            self.start()
        h, w = rgba.shape[:2]
        if self._size != (w, h):
            self._open(w, h)
        if not self._sender.write_video(np.ascontiguousarray(rgba).reshape(-1)):
            raise RuntimeError("NDI write_video failed")
        self.metrics.delivered_frame(capture_ts)

    def connections(self, timeout: float = 0.0) -> int:
        """How many receivers are connected right now (0 before the first frame)."""
        return 0 if self._sender is None else int(self._sender.get_num_connections(timeout))

    def _close_sender(self) -> None:
        if self._sender is not None:
            try:
                self._sender.close()
            finally:
                self._sender, self._size = None, None

    def close(self) -> None:
        self._close_sender()
