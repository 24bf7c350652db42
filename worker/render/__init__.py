"""Render stage: `create_renderer(name)` -> a `Renderer` drawing `CharacterAssets` in a `TargetPose`."""

from worker.render.base import BACKENDS, DEFAULT_BACKEND, Renderer, create_renderer
from worker.render.meshwarp import benchmark_render

__all__ = ["BACKENDS", "DEFAULT_BACKEND", "Renderer", "benchmark_render", "create_renderer"]
