"""Render stage: `create_renderer(name)` -> a `Renderer` drawing `CharacterAssets` per `FrameInput`.

- `base`: the `Renderer` interface (`prepare` once per character, `draw` per frame) and the
  backend lookup; `registry`: names, options, availability, and what `auto` picks.
- `meshwarp/`: the CPU mesh-warp renderer (renderer, preparation, grid solver, eyes, mouth).
- `liveportrait/`: LivePortrait's networks through ONNX Runtime.
"""

from worker.render.base import BACKENDS, DEFAULT_BACKEND, FrameInput, Renderer, create_renderer

__all__ = ["BACKENDS", "DEFAULT_BACKEND", "FrameInput", "Renderer", "create_renderer"]
