"""What travels between the live stages: small frozen records, one per hand-over.

capture -> track: `Captured` (the camera image and its clocks); track -> render: `Tracked`, whose
`RenderInput` is everything the render stage draws from: the face, the neutral it is measured
against, the voice's newest `MouthSignal` (taken as the record is made) when a voice input
is running, else None, and the captured frame the face was tracked on (renderers that crop the
driver's face from it need it). With no camera at all (`--source none`) `Captured.image` is empty (0x0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from worker.retarget.mouth_signal import MouthSignal
from worker.track.face_state import FaceState


@dataclass(frozen=True)
class Captured:
    seq: int
    image: Any  # BGR frame (numpy array); 0x0 with no camera (`--source none`), None while it is missing
    mono: float  # time.monotonic() at capture: the tracker's clock (files loop, so media time jumps)
    wall: float  # time.time() at capture: what outputs measure latency from


@dataclass(frozen=True)
class RenderInput:
    face: FaceState | None
    neutral: FaceState | None
    mouth: MouthSignal | None = None
    frame: Any = None  # the BGR camera image `face` was tracked on (`Captured.image`)


@dataclass(frozen=True)
class Tracked:
    captured: Captured
    render: RenderInput
