"""Characters: image loading, preprocessing, and the memory + disk cache.

- `preprocess.preprocess_image`: a picture -> `CharacterAssets` (face crop, matte, landmarks).
- `preparer`: `CutOut` (what renderers prepare from) and the `Preparer` protocol they satisfy.
- `cache.CharacterCache`: memory LRU over verified `.npy` entries on disk, per character and,
  beside it, per (renderer name, prepare_version).
- `library.CharacterLibrary`: a folder of pictures served through the cache; `roster.Roster`: the
  live set, preloaded in the background and watched for changes.
This package never imports the render stage: a renderer is handed in as a `Preparer`.
"""

from worker.characters.assets import CharacterAssets
from worker.characters.preparer import CutOut, Preparer

__all__ = ["CharacterAssets", "CutOut", "Preparer"]
