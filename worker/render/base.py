"""The render stage's one interface, and the one place that picks a backend.

A renderer has two steps: `prepare(character)` once per character (whatever it precomputes;
the characters package caches the result per renderer name and `prepare_version`, see
`worker.characters.preparer`) and `render(assets, pose)` per frame, which finds those arrays in
`assets.arrays` (or prepares them itself, once, when the assets came without them).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from worker.characters.assets import CharacterAssets
from worker.characters.preparer import CutOut, preparer_tag
from worker.errors import UserError
from worker.retarget.pose import TargetPose


class Renderer(ABC):
    """Draws a character in a pose: `render(assets, pose)` -> straight RGBA uint8 (size, size, 4)."""

    name: str = ""
    prepare_version: int = 0  # bump whenever what `prepare` returns changes: cached copies rebuild

    def __init__(self, size: int = 512) -> None:
        if not (isinstance(size, int) and 64 <= size <= 2048):
            raise UserError(f"render.size: {size!r} is out of range (64..2048)")
        self.size = size
        self._own_prepared: dict[str, dict[str, np.ndarray]] = {}

    def prepare(self, character: CutOut) -> dict[str, np.ndarray]:
        """Arrays this renderer precomputes once per character (none by default).

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
    def render(self, assets: CharacterAssets, pose: TargetPose) -> np.ndarray: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        pass


# name -> "module:Class"; imported on first use so optional backends cost nothing until chosen
BACKENDS: dict[str, str] = {
    "meshwarp": "worker.render.meshwarp:MeshWarpRenderer",
    "liveportrait": "worker.render.liveportrait:LivePortraitRenderer",
}
DEFAULT_BACKEND = "meshwarp"


def create_renderer(name: str = DEFAULT_BACKEND, **opts) -> Renderer:
    """The renderer called `name` (see `BACKENDS`), built with `opts` (e.g. size=512)."""
    from worker.render.registry import create_renderer as create  # the registry decides (availability too)

    return create(name, **opts)
