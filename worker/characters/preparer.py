"""The hand-over between characters and renderers: a `CutOut` goes in, a renderer's arrays come out.

The characters package does what every renderer needs once per picture (decode, find the face,
crop, matte, landmarks) and hands over a `CutOut`. A renderer that precomputes something of its
own per character (a solved warp, a network's features) is a `Preparer`: its `prepare` runs once
per character and per (name, prepare_version), and the cache keeps the result beside the
character, in memory and on disk (see `cache`). Bump `prepare_version` whenever what `prepare`
returns changes: entries of the old version are then rebuilt. Nothing here imports the render
stage: renderers satisfy the protocol, characters never name them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

_NAME = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class CutOut:
    """A preprocessed character as renderers prepare from it."""

    image: np.ndarray  # (size, size, 4) uint8 straight RGBA: the square crop around the face
    landmarks: np.ndarray  # (478, 3) float32 in the crop's pixels (as `FaceState.landmarks`)
    kind: str = "human"  # human | animal | drawn (from the face marks): how its face moves

    @property
    def size(self) -> int:
        return int(self.image.shape[0])


@runtime_checkable
class Preparer(Protocol):
    """Anything that precomputes per-character arrays (every renderer is one)."""

    name: str
    prepare_version: int

    def prepare(self, character: CutOut) -> dict[str, np.ndarray]: ...


def preparer_tag(preparer: Preparer) -> str:
    """`<name>.v<version>[.<prepare_key>]`: names the preparer's arrays in the cache (folder and
    memory key). `prepare_key` (optional) is what else they depend on, e.g. a network's weights."""
    name, version = preparer.name, preparer.prepare_version
    key = getattr(preparer, "prepare_key", "")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"preparer name {name!r}: use letters, digits, '_' and '-' only")
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise ValueError(f"{name}.prepare_version {version!r}: must be an int >= 0")
    if key and not (isinstance(key, str) and _NAME.fullmatch(key)):
        raise ValueError(f"{name}.prepare_key {key!r}: use letters, digits, '_' and '-' only")
    return f"{name}.v{version}.{key}" if key else f"{name}.v{version}"


def check_arrays(tag: str, arrays: object) -> dict[str, np.ndarray]:
    """`arrays` if it is what the cache can store: names usable as file names, plain (no object) arrays."""
    if not isinstance(arrays, dict):
        raise TypeError(f"{tag}: prepare() must return a dict of arrays, got {type(arrays).__name__}")
    for k, v in arrays.items():
        if not isinstance(k, str) or not re.fullmatch(r"[A-Za-z0-9_]+", k):
            raise ValueError(f"{tag}: array name {k!r}: use letters, digits and '_' only")
        if not isinstance(v, np.ndarray) or v.dtype.hasobject:
            raise TypeError(f"{tag}: {k!r} must be a numeric numpy array (the cache never pickles)")
    return arrays
