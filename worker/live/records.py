"""What travels between the live stages: small frozen records, one per hand-over.

capture -> track: `Captured` (the camera image and its clocks); track -> render: `Tracked`, whose
`RenderInput` is everything the render stage draws from: the face, the neutral it is measured
against, and a mouth signal from audio when a voice input is running (None until then).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from worker.track.face_state import FaceState


@dataclass(frozen=True)
class Captured:
    seq: int
    image: Any  # BGR frame (numpy array); None while the camera is missing (the character idles)
    mono: float  # time.monotonic() at capture: the tracker's clock (files loop, so media time jumps)
    wall: float  # time.time() at capture: what outputs measure latency from


@dataclass(frozen=True)
class MouthSignal:
    """The mouth as heard: voice activity and shape, 0..1 each (from a microphone or file)."""

    voiced: bool
    open: float
    wide: float = 0.0


@dataclass(frozen=True)
class RenderInput:
    face: FaceState | None
    neutral: FaceState | None
    mouth: MouthSignal | None = None


@dataclass(frozen=True)
class Tracked:
    captured: Captured
    render: RenderInput
