"""What renderers precompute once per character; stored in the character cache.

`prepare_arrays` is called by preprocessing; its result is saved as `.npy` files beside the
character and handed back memory-mapped in `CharacterAssets.arrays`. Bump `PREPARE_VERSION`
whenever the arrays change: it is part of the cache key, so old entries are rebuilt.
"""

from __future__ import annotations

import numpy as np

PREPARE_VERSION = 4


def prepare_arrays(image: np.ndarray, landmarks: np.ndarray) -> dict[str, np.ndarray]:
    """Per-character arrays for the renderers (RGBA `image`, (478, 3) `landmarks` in its pixels)."""
    from worker.render.meshwarp_prepare import prepare_meshwarp

    return prepare_meshwarp(image, landmarks)
