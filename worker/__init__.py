"""Stream Motion Animator worker: capture -> track -> retarget -> render -> outputs."""

import os

# Before anything imports numpy: the worker's BLAS calls are on tiny matrices (pose fits, 3x3s),
# where OpenBLAS's extra threads only spin. Measured on the live worker at 25 FPS (2 cores): its one
# extra thread alone took 0.45 of a core, and 2.5x the worker's total CPU. A user's own setting wins.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

__version__ = "0.1.0"
