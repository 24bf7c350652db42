"""Characters: image loading, preprocessing, and the memory + disk cache."""

from worker.characters.assets import CharacterAssets

__all__ = ["CharacterAssets"]
