"""The parts the live pipeline drives, as structural types: the real ones (OpenCV capture,
MediaPipe tracker, `Animator`, `OutputFanout`, `Roster`, `VoiceInput`) and the fakes of the fast
tests both fit.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from worker.capture import FrameSource
from worker.retarget.mouth_signal import MouthSignal
from worker.track.face_state import FaceState


class Tracker(Protocol):
    @property
    def neutral(self) -> FaceState | None: ...

    @property
    def calibrating(self) -> bool: ...

    def process(self, image: np.ndarray, timestamp: float) -> FaceState: ...

    def hold(self, timestamp: float) -> FaceState: ...

    def lost(self, timestamp: float) -> FaceState: ...

    def calibrate(self) -> None: ...

    def set_smoothing(self, amount: float) -> None: ...


class Animator(Protocol):
    """Retarget + render: the render stage's one collaborator."""

    assets: Any
    last_ms: dict[str, float]

    def set_character(self, assets: Any) -> None: ...

    def set_options(self, **changes: Any) -> None: ...

    def calibrate(self) -> None: ...

    def describe_renderer(self) -> tuple[str, str]: ...

    def animate(
        self,
        face: FaceState | None,
        neutral: FaceState | None,
        mouth: MouthSignal | None = None,
        frame: np.ndarray | None = None,
    ) -> np.ndarray: ...


class Voice(Protocol):
    """The voice input (microphone or file): its newest mouth signal, read once per frame."""

    muted: bool

    def latest(self) -> MouthSignal: ...

    def status(self) -> dict[str, Any]: ...


class Fanout(Protocol):
    def send(self, rgba: np.ndarray, seq: int, capture_ts: float) -> None: ...

    def set_enabled(self, name: str, enabled: bool) -> None: ...

    def stats(self) -> list[dict]: ...


class Characters(Protocol):
    """The roster: which characters exist, which are loaded, and how a request names one."""

    def ids(self) -> list[str]: ...

    def get(self, cid: str) -> Any: ...

    def describe(self) -> list[dict]: ...

    def resolve(
        self, current: str | None, character: str | None = None, index: int | None = None, step: int | None = None
    ) -> str: ...

    def reload(self) -> None: ...


__all__ = ["Animator", "Characters", "Fanout", "FrameSource", "Tracker", "Voice"]
