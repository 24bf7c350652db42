"""The ws output's encoded pixel formats keep the alpha a Browser Source composites with: decoded
again (Pillow), fully transparent and fully opaque pixels stay exact, soft edges stay close."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from worker.tools.ws_feed import character_frames
from worker.web import ws_output as W
from worker.web.ws_output import encode


@pytest.fixture(scope="module")
def rgba() -> np.ndarray:
    return character_frames()[3]  # the painted demo character with anti-aliased edges, 512x512


def decoded(payload: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(payload)).convert("RGBA"))


@pytest.mark.parametrize(
    "fmt,quality,edge_tol",
    [(W.P.PIXEL_WEBP, 90, 16), (W.P.PIXEL_WEBP, 101, 0), (W.P.PIXEL_PNG, 90, 0)],
    ids=["webp-lossy", "webp-lossless", "png"],
)
def test_encoded_frames_keep_alpha(rgba, fmt, quality, edge_tol):
    out = decoded(encode(rgba, fmt, quality))
    a, b = rgba[..., 3], out[..., 3]
    assert out.shape == rgba.shape
    assert (b[a == 0] == 0).all() and (b[a == 255] == 255).all()
    assert np.abs(b.astype(int) - a).max() <= edge_tol  # lossy alpha at quality 50: 12 measured
    opaque = a == 255
    err = np.abs(out[..., :3].astype(int) - rgba[..., :3])[opaque]
    assert err.mean() < (4.0 if quality <= 100 else 0.01)  # colour: lossless exact, lossy close
    assert 0 < a.mean() < 255  # the picture has both


def test_raw_rgba_is_the_frame_itself(rgba):
    assert encode(rgba, W.P.PIXEL_RGBA) == rgba.tobytes()
