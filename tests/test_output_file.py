"""The "file" output: every format round-trips through PyAV/OpenCV; alpha where promised."""

from __future__ import annotations

import time

import av
import cv2
import numpy as np
import pytest
from media import decode_rgba

from worker.errors import UserError
from worker.output.base import composite
from worker.output.registry import create_output


def rgba_frame(i: int, h: int = 64, w: int = 80) -> np.ndarray:
    img = np.zeros((h, w, 4), np.uint8)
    img[..., 0] = 60 + i * 20
    img[..., 1] = np.arange(w)[None, :] * 3
    img[..., 2] = 255 - np.arange(h)[:, None] * 3
    img[..., 3] = 0
    img[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4, 3] = 255  # opaque box on a transparent field
    img[: h // 4, :, 3] = 128
    return img


def write(path, n: int = 6, **cfg) -> list[np.ndarray]:
    out = create_output({"type": "file", "path": str(path), "timing": "fps", **cfg})
    out.start()
    frames = [rgba_frame(i) for i in range(n)]
    for i, f in enumerate(frames):
        out.send(f, i, time.time())
    out.close()
    assert out.stats()["frames"] == n
    return frames


def test_mov_qtrle_is_lossless_with_alpha(tmp_path):
    frames = write(tmp_path / "clip.mov")
    got = decode_rgba(tmp_path / "clip.mov")
    assert len(got) == len(frames)
    for a, b in zip(got, frames, strict=True):
        assert np.array_equal(a, b)


def test_webm_vp9_keeps_alpha(tmp_path):
    frames = write(tmp_path / "clip.webm")
    got = decode_rgba(tmp_path / "clip.webm")
    assert len(got) == len(frames)
    for a, b in zip(got, frames, strict=True):
        alpha_err = np.abs(a[..., 3].astype(int) - b[..., 3])
        assert np.percentile(alpha_err, 99) <= 8, "alpha lost"
        opaque = b[..., 3] == 255
        assert np.abs(a[opaque][:, :3].astype(int) - b[opaque][:, :3]).mean() < 6


def test_mp4_h264_composites_over_background(tmp_path):
    frames = write(tmp_path / "clip.mp4", background="#2040ff", fps=25)
    got = decode_rgba(tmp_path / "clip.mp4")
    assert len(got) == len(frames)
    with av.open(str(tmp_path / "clip.mp4")) as c:
        assert c.streams.video[0].codec_context.name == "h264"
        assert abs(float(c.streams.video[0].average_rate) - 25) < 0.1
    for a, b in zip(got, frames, strict=True):
        assert (a[..., 3] == 255).all()
        want = composite(b, (0x20, 0x40, 0xFF)).astype(int)
        assert np.abs(a[..., :3].astype(int) - want).mean() < 6
    # fully transparent pixels show the background colour
    assert np.abs(got[0][-2, 2, :3].astype(int) - [0x20, 0x40, 0xFF]).max() < 20


def test_png_folder_is_lossless_with_alpha(tmp_path):
    frames = write(tmp_path / "pngs")
    files = sorted((tmp_path / "pngs").glob("*.png"))
    assert [f.name for f in files] == [f"{i:06d}.png" for i in range(len(frames))]
    for f, want in zip(files, frames, strict=True):
        bgra = cv2.imread(str(f), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(cv2.cvtColor(bgra, cv2.COLOR_BGRA2RGBA), want)
    assert not list((tmp_path / "pngs").glob(".*"))  # no temporary files left


def test_capture_timing_and_odd_size(tmp_path):
    out = create_output({"type": "file", "path": str(tmp_path / "odd.mp4")})
    out.start()
    t0 = 1_700_000_000.0
    for i in range(4):
        out.send(rgba_frame(i, 33, 47), i, t0 + i * 0.1)  # 10 fps capture clock
    assert not (tmp_path / "odd.mp4").exists()  # the target appears only when complete
    out.close()
    assert [p.name for p in tmp_path.iterdir()] == ["odd.mp4"]
    with av.open(str(tmp_path / "odd.mp4")) as c:
        s = c.streams.video[0]
        assert (s.width, s.height) == (48, 34)
        times = [float(f.pts * f.time_base) for f in c.decode(s)]
    assert np.allclose(np.diff(times), 0.1, atol=0.002)


@pytest.mark.parametrize(
    "cfg, match",
    [
        ({"path": "x.avi"}, "unsupported suffix"),
        ({}, "path is required"),
        ({"path": "x.mp4", "fps": 0}, "fps"),
        ({"path": "x.mp4", "background": "blue"}, "background"),
        ({"path": "x.mp4", "timing": "wall"}, "timing"),
        ({"path": "x.mp4", "speed": 2}, "unknown key"),
    ],
)
def test_config_errors(cfg, match):
    with pytest.raises(UserError, match=match):
        create_output({"type": "file", **cfg})
