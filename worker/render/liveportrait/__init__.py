"""The `liveportrait` renderer: LivePortrait's networks through ONNX Runtime (see renderer.py).

Modules: providers (execution providers), graph_prep (opset upgrade, 5-D GridSample rewrite,
FP16 with the keypoint path kept FP32, paste-back appended to W+G; cached), networks (sessions
bound by the published tensor names, by shape only where unambiguous; I/O binding),
motion (keypoint maths), crop (face crop and paste-back), smoothing (One Euro on the driving
motion), render_cache (LRU and hold-still), weights (manifest and verification), renderer
(`LivePortraitRenderer`, `Driver`, `availability`), standin (small graphs with the real
signatures, for tests and measurements), gpu_check (`stream-animator gpu-check`: the full-size
networks on the best provider here). Dev tools beside it: worker/tools/liveportrait_overhead.py
(our own per-frame cost on real footage) and worker/tools/liveportrait_graphs.py (the real
architecture with random weights, in every export convention).
"""

from worker.render.liveportrait.renderer import PREPARE_VERSION, Driver, LivePortraitRenderer, availability

__all__ = ["PREPARE_VERSION", "Driver", "LivePortraitRenderer", "availability"]
