"""The `Output` interface and small helpers its backends share (options, colours, alpha)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from worker.errors import UserError
from worker.output.metrics import OutputMetrics


class Output(ABC):
    """A destination for rendered frames.

    `send()` is called from the output's own thread (see `OutputFanout`) with an (h, w, 4)
    uint8 RGBA array (straight alpha) that the output must not modify, the frame's sequence
    number, and its capture timestamp in ``time.time()`` seconds. An output that cannot keep
    up simply takes longer: the fanout drops frames for it, never for the others.
    """

    name: str = "output"
    # False: the fanout waits for this output instead of dropping (offline file rendering).
    realtime: bool = True

    def __init__(self) -> None:
        self.metrics = OutputMetrics()

    @classmethod
    def from_config(cls, config: dict) -> Output:
        """Build from a config dict (``{"type": ..., **options}``); see `registry.create_output`."""
        raise NotImplementedError

    def start(self) -> None:  # noqa: B027 - optional hook: open devices, listen, check deps
        """Acquire resources; raise `UserError` with a clear message when impossible."""

    @abstractmethod
    def send(self, rgba: np.ndarray, seq: int, capture_ts: float) -> None: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        pass

    def stats(self) -> dict:
        return {"name": self.name, **self.metrics.snapshot()}


def parse_colour(value: Any, field: str) -> tuple[int, int, int]:
    """ "#rrggbb" or [r, g, b] (0..255) -> (r, g, b); on a command line also "[r, g, b]" / "r,g,b"."""
    if isinstance(value, str) and "," in value:
        parts = value.strip().strip("[]()").split(",")
        try:
            value = [int(p.strip()) for p in parts]
        except ValueError:
            pass
    if isinstance(value, str):
        s = value.lstrip("#")
        if len(s) == 6:
            try:
                return int(s[0:2], 16), int(s[2:4], 16), int(s[4:6], 16)
            except ValueError:
                pass
    elif (
        isinstance(value, (list, tuple))
        and len(value) == 3
        and all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in value)
    ):
        return int(value[0]), int(value[1]), int(value[2])
    raise UserError(f'{field} must be "#rrggbb" or [r, g, b] with 0..255, got {value!r}')


def check_rgba(rgba: np.ndarray) -> None:
    if rgba.dtype != np.uint8 or rgba.ndim != 3 or rgba.shape[2] != 4:
        raise ValueError(f"output frames must be (h, w, 4) uint8 RGBA, got {rgba.shape} {rgba.dtype}")


def composite(rgba: np.ndarray, background: tuple[int, int, int]) -> np.ndarray:
    """Straight-alpha RGBA over a solid colour -> (h, w, 3) uint8 RGB."""
    a = rgba[..., 3:4].astype(np.uint16)
    rgb = rgba[..., :3].astype(np.uint16)
    bg = np.asarray(background, dtype=np.uint16)
    out = (rgb * a + bg * (255 - a) + 127) // 255
    return out.astype(np.uint8)


def checkerboard(h: int, w: int, cell: int = 16) -> np.ndarray:
    """Grey checkerboard (h, w, 3) uint8, the usual way to show transparency."""
    yy, xx = np.mgrid[0:h, 0:w]
    light = (yy // cell + xx // cell) % 2 == 0
    out = np.where(light[..., None], 204, 153).astype(np.uint8)
    return np.repeat(out, 3, axis=2)
