"""The `liveportrait` renderer: LivePortrait's networks through ONNX Runtime (see renderer.py).

Modules: providers (execution providers), graph_prep (opset upgrade, 5-D GridSample rewrite,
FP16, paste-back appended to W+G; cached), networks (sessions bound by shape, I/O binding),
motion (keypoint maths), crop (face crop and paste-back), smoothing (One Euro on the driving
motion), render_cache (LRU and hold-still), weights (manifest and verification), renderer
(`LivePortraitRenderer`, `Driver`, `availability`), standin (small graphs with the real
signatures, for tests and measurements), overhead (`python -m worker.tools.liveportrait_overhead`:
our own per-frame cost, network ms, cache hit rate on real footage).
"""

from worker.render.liveportrait.renderer import PREPARE_VERSION, Driver, LivePortraitRenderer, availability

__all__ = ["PREPARE_VERSION", "Driver", "LivePortraitRenderer", "availability"]
