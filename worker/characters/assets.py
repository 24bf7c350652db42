"""`CharacterAssets`: a character after preprocessing, as held in the cache and given to renderers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from worker.characters.preparer import CutOut


@dataclass(frozen=True)
class CharacterAssets:
    """A preprocessed character.

    `image` is straight (not premultiplied) RGBA uint8 of `size` x `size`, the square crop around
    the face; `landmarks` (478, 3) float32 are in that crop's pixels (same convention as
    `FaceState.landmarks`). `arrays` holds what one renderer precomputed for this character
    (`prepared_by` names it, `<name>.v<version>`; empty when none did), memory-mapped from the
    disk cache; see `worker.characters.preparer`.
    """

    key: str  # cache key of the character: content hash + settings + format version
    name: str  # the file name without its extension
    source: str  # path of the image it came from
    size: int
    image: np.ndarray  # (size, size, 4) uint8 RGBA
    landmarks: np.ndarray  # (478, 3) float32
    crop_box: tuple[float, float, float, float]  # x0, y0, x1, y1 of the crop in the source image
    had_alpha: bool  # the source had its own alpha (kept); else the matte is from segmentation
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    prepared_by: str = ""  # tag of the preparer whose `arrays` these are ("" = none)

    @property
    def cutout(self) -> CutOut:
        """What a renderer prepares from."""
        return CutOut(self.image, self.landmarks, str(self.meta.get("kind", "human")))

    @property
    def nbytes(self) -> int:
        return int(self.image.nbytes + self.landmarks.nbytes + sum(a.nbytes for a in self.arrays.values()))
