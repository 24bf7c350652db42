"""Helpers the tests share for reading what the project writes."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np


def decode_rgba(path: str | Path) -> list[np.ndarray]:
    """Every frame of a video as RGBA. VP9 keeps alpha in a side channel that only libvpx's
    decoder reads (FFmpeg's native one drops it), so .webm goes through libvpx."""
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        if stream.codec_context.name == "vp9":
            dec = av.CodecContext.create("libvpx-vp9", "r")
            frames = [f for p in c.demux(stream) for f in dec.decode(p)]
        else:
            frames = list(c.decode(stream))
        return [f.to_ndarray(format="rgba") for f in frames]
