"""The render stage's one interface, and the one place that picks a backend."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from worker.characters.assets import CharacterAssets
from worker.errors import UserError
from worker.retarget.pose import TargetPose


class Renderer(ABC):
    """Draws a character in a pose: `render(assets, pose)` -> straight RGBA uint8 (size, size, 4)."""

    name: str = ""

    def __init__(self, size: int = 512) -> None:
        if not (isinstance(size, int) and 64 <= size <= 2048):
            raise UserError(f"render.size: {size!r} is out of range (64..2048)")
        self.size = size

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
