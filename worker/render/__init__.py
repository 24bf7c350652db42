"""Render stage: `create_renderer(name)` -> a `Renderer` drawing `CharacterAssets` in a `TargetPose`.

- `base`: the `Renderer` interface (`prepare` once per character, `render` per frame) and the
  backend lookup.
- `meshwarp/`: the CPU mesh-warp renderer (renderer, preparation, grid solver, eyes, mouth).
"""

from worker.render.base import BACKENDS, DEFAULT_BACKEND, Renderer, create_renderer

__all__ = ["BACKENDS", "DEFAULT_BACKEND", "Renderer", "create_renderer"]
