"""`meshwarp`: the default renderer. CPU only, no model weights.

Per frame: control displacements (landmarks, head halo) -> one matrix product with the
precomputed thin-plate-spline matrix gives the forward warp on a coarse grid of the character's
pixels -> a pose that would fold the picture over itself (a tear) is scaled back until it does
not -> Newton steps, warm-started from the last frame, invert it on the grid (output pixel ->
source pixel) -> upsample -> full-resolution patches of that map for the eyelids and the lips,
which the coarse grid cannot close or part by itself -> `cv2.remap` of RGBA together (the alpha
matte warps with the picture), skipping grid cells that neither move nor touch anything visible
-> the mouth interior is composited inside the warped inner lips.

Modules: `renderer` (`MeshWarpRenderer`, the per-frame chain), `prepare` (the per-character
precompute, its `prepare` step, cached by the characters package), `grid` (the grid solver:
inversion and fold limit), `eyes` (eyelid patches), `mouth_rig` (lip patches), `mouth` (the
painted interior), `patch_box` (the pixel box of a patch).

Budget (issue 3): <= 5 ms per 512 x 512 frame on one core; `worker.tools.bench.bench_render`
measures it. Most per-frame arrays are small, so the code avoids numpy's per-call and casting
overheads (float32 scalars, component-major (2, n) arrays, in-place operations) where it runs
every frame.
"""

from worker.render.meshwarp.renderer import MeshWarpRenderer

__all__ = ["MeshWarpRenderer"]
