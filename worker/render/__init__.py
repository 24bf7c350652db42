"""Render stage: `create_renderer(name)` -> a `Renderer` drawing `CharacterAssets` per `FrameInput`.

- `base`: the `Renderer` interface (`prepare` once per character, `draw` per frame), which every
  backend implements exactly; `registry`: the one table of names, options, availability, what
  `auto` picks, and `create_renderer`.
- `meshwarp/`: the CPU mesh-warp renderer (renderer, preparation, grid solver, eyes, mouth).
- `liveportrait/`: LivePortrait's networks through ONNX Runtime.
"""

from worker.render.base import FrameInput, Renderer
from worker.render.registry import DEFAULT as DEFAULT_BACKEND
from worker.render.registry import create_renderer

__all__ = ["DEFAULT_BACKEND", "FrameInput", "Renderer", "create_renderer"]
