"""Capture stage: video files through PyAV (real footage), and the webcam errors (no camera here)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from worker.capture import CaptureError, VideoFileSource, WebcamSource, list_cameras, open_source
from worker.errors import UserError


@pytest.fixture()
def d0(testdata):
    return testdata / "footage" / "driving" / "d0.mp4"


def test_video_file_frames_and_media_timestamps(d0):
    with VideoFileSource(d0) as src:
        assert (src.fps, src.size, src.frame_count) == (25.0, (512, 512), 78)
        assert src.duration == pytest.approx(78 / 25)
        frames = list(src)
    assert len(frames) == 78
    assert [f.index for f in frames] == list(range(78))
    np.testing.assert_allclose([f.timestamp for f in frames], np.arange(78) / 25.0, atol=1e-6)
    img = frames[0].image
    assert img.shape == (512, 512, 3) and img.dtype == np.uint8 and img.flags.c_contiguous
    assert not np.array_equal(frames[0].image, frames[40].image)


def test_video_file_loops_with_increasing_time(d0):
    with VideoFileSource(d0) as first_pass:
        frames = [first_pass.read() for _ in range(3)]
    with VideoFileSource(d0, loop=True) as src:
        looped = [src.read() for _ in range(78 * 2 + 3)]
    assert all(f is not None for f in looped)
    ts = np.array([f.timestamp for f in looped])
    assert (np.diff(ts) > 0).all()
    np.testing.assert_allclose(np.diff(ts), 1 / 25.0, atol=1e-6)
    assert looped[78].index == 78
    for k in range(3):  # the second and third passes start over with the same pictures
        np.testing.assert_array_equal(looped[78 + k].image, frames[k].image)
        np.testing.assert_array_equal(looped[156 + k].image, frames[k].image)


def test_video_file_realtime_paces_to_the_clip(d0, monkeypatch):
    with VideoFileSource(d0, realtime=True) as src:
        t0 = time.monotonic()
        for _ in range(26):  # frames 0..25: one second of media at 25 fps
            src.read()
        elapsed = time.monotonic() - t0
    # never ahead of the clip (does not depend on the machine); late only by what a busy box adds
    assert 0.95 <= elapsed < 3.0, elapsed
    # not paced: as fast as it decodes, so it never waits (judged by its calls, not by the clock: at
    # load average 30 decoding two seconds of media took longer than two seconds)
    waits: list[float] = []
    monkeypatch.setattr("worker.capture.video.time.sleep", waits.append)
    with VideoFileSource(d0) as src:
        for _ in range(50):
            src.read()
    assert waits == []


def test_missing_or_unreadable_video_is_a_user_error(tmp_path):
    missing = tmp_path / "nope.mp4"
    with pytest.raises(UserError, match="nope.mp4"):
        VideoFileSource(missing)
    bad = tmp_path / "garbage.mp4"
    bad.write_bytes(b"this is not a video" * 100)
    with pytest.raises(UserError, match="garbage.mp4"):
        VideoFileSource(bad)
    with pytest.raises(UserError, match="nope.mp4"):
        open_source(str(missing))


def test_open_source_dispatches(d0, testdata):
    src = open_source(str(d0), loop=True)
    try:
        assert isinstance(src, VideoFileSource) and src.loop
    finally:
        src.close()
    with open_source(str(testdata / "footage" / "portraits" / "s9.jpg")) as still:  # an image is one frame
        f = still.read()
        assert f is not None and f.image.ndim == 3 and still.read() is None


def test_webcam_errors_name_the_camera():
    assert issubclass(CaptureError, UserError)
    cams = list_cameras()
    assert all(0 <= c.index < 10 and c.name for c in cams)
    free = next(i for i in range(9, -1, -1) if i not in {c.index for c in cams})
    with pytest.raises(CaptureError, match=str(free)):
        WebcamSource(free)
    with pytest.raises(CaptureError, match="no camera named 'NoSuchCam-xyz'"):
        open_source("webcam:NoSuchCam-xyz")
    with pytest.raises(CaptureError, match="camera missing"):
        open_source("webcam:")
