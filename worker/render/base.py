"""The render stage's one interface, and the one place that picks a backend.

A renderer has two steps: `prepare(character)` once per character (whatever it precomputes;
the characters package caches the result per renderer name and `prepare_version`, see
`worker.characters.preparer`) and `draw(assets, FrameInput)` per frame, which finds those arrays
in `assets.arrays` (or prepares them itself, once, when the assets came without them).

`draw` is the one per-frame entry every caller uses (the live Animator, the offline loop, the
tools): a `FrameInput` carries the tracked face, its neutral, the video frame it was tracked on
and, for renderers that draw from a retargeted pose (`uses_pose`), that pose. The mesh warp draws
from the pose and ignores the frame; LivePortrait draws from the frame's face crop and ignores the
pose. Both implement exactly this interface (`prepare`, `draw` and the optional hooks below);
creating one by name is the registry's job (`worker.render.registry`, re-exported by the package),
so this module imports no backend and no backend import leads back here through the registry.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

from worker.characters.assets import CharacterAssets
from worker.characters.preparer import CutOut, preparer_tag
from worker.options import SIZE
from worker.retarget.pose import TargetPose
from worker.track.face_state import FaceState


@dataclass(frozen=True)
class FrameInput:
    """What a renderer draws one frame from."""

    face: FaceState | None  # the tracked face (None before the first frame)
    neutral: FaceState | None  # the tracker's calibrated neutral
    frame: np.ndarray | None = None  # the BGR video frame `face` was tracked on
    pose: TargetPose | None = None  # the retargeted pose (given to renderers whose `uses_pose`)

    @classmethod
    def of_pose(cls, pose: TargetPose) -> FrameInput:
        """A frame drawn from a retargeted pose alone (tools and tests of pose-driven renderers)."""
        return cls(face=None, neutral=None, pose=pose)


class Renderer(ABC):
    """Draws a character: `draw(assets, FrameInput)` -> straight RGBA uint8 (size, size, 4)."""

    name: str = ""
    prepare_version: int = 0  # bump whenever what `prepare` returns changes: cached copies rebuild
    prepare_key: str = ""  # optional: what else the prepared arrays depend on (e.g. weights' hashes)
    uses_pose: bool = True  # draws from the retargeted pose; False: from the face and its video frame
    selection: str = ""  # why this renderer runs (set by the registry: "auto chose ... because ...")

    def __init__(self, size: int = 512) -> None:
        self.size = SIZE.check(size, "render.size")
        self._own_prepared: dict[str, dict[str, np.ndarray]] = {}

    @abstractmethod
    def prepare(self, character: CutOut) -> dict[str, np.ndarray]:
        """Arrays this renderer precomputes once per character.

        Runs on the character loader's thread, not the render thread: it must not touch the
        renderer's per-frame state. Plain numeric arrays only (they are cached as `.npy`).
        """
        return {}

    def prepared(self, assets: CharacterAssets) -> dict[str, np.ndarray]:
        """This renderer's arrays for `assets`: the cached ones, or prepared here once if the assets
        came without them (e.g. straight from `preprocess_image`, or prepared by another renderer)."""
        if assets.prepared_by == preparer_tag(self):
            return assets.arrays
        if assets.key not in self._own_prepared:
            self._own_prepared[assets.key] = self.prepare(assets.cutout)
        return self._own_prepared[assets.key]

    @abstractmethod
    def draw(self, assets: CharacterAssets, inp: FrameInput) -> np.ndarray:
        """One frame of `assets`: straight RGBA uint8 (size, size, 4) (the per-frame entry of every caller)."""

    def calibrate(self) -> None:  # noqa: B027 - optional hook
        """The driver's next frame becomes the neutral (renderers that keep a neutral of their own)."""

    def set_motion(self, options: Any) -> None:  # noqa: B027 - optional hook
        """Motion settings (`RetargetOptions`: strengths, mirror, idle) for renderers that do not
        draw from the retargeted pose and so apply them themselves."""

    def status_line(self) -> str:
        """One line on how it runs here (device, speed), or "" when there is nothing to say."""
        return ""

    def close(self) -> None:  # noqa: B027 - optional hook
        pass
