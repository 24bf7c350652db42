"""`bench --recovery`'s parts that need no OBS: the 720p camera clip it makes, the picture-moved
test it applies to OBS's screenshots, and its one-line refusals. The benchmark itself runs a
real OBS (minutes): `stream-animator bench --recovery`."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction

import av
import numpy as np

from worker.tools.recovery import MOVED_LEVEL, _differs, make_camera_clip


def test_the_camera_clip_is_720p_at_the_source_rate(tmp_path):
    src = tmp_path / "src.mp4"
    with av.open(str(src), "w") as out:
        s = out.add_stream("libx264", rate=Fraction(25, 1))
        s.width, s.height, s.pix_fmt = 320, 240, "yuv420p"
        for i in range(12):
            img = np.full((240, 320, 3), 20 * i % 256, np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    dst = make_camera_clip(src, tmp_path / "cam.mp4")
    with av.open(str(dst)) as c:
        v = c.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(v)]
        assert (v.width, v.height) == (1280, 720) and v.average_rate == 25
    assert len(frames) == 12
    mid = frames[-1]
    assert mid[:, :100].max() < 16  # the picture is centred, black bars beside it
    assert abs(int(mid[360, 640, 0]) - 20 * 11 % 256) < 12


def test_a_screenshot_counts_as_moved_only_past_the_noise_level():
    a = np.zeros((16, 16, 4), np.uint8)
    b = a.copy()
    b[0, :4] = 3  # a few pixels of PNG/scaling noise
    assert not _differs(a, b)
    c = a.copy()
    c[..., 0] = int(MOVED_LEVEL * 4) + 1  # the whole picture changed a little: a new frame
    assert _differs(a, c)
    assert _differs(a, None) and not _differs(None, None)


def test_bad_rounds_are_one_line(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "worker", "bench", "--recovery", "--runs", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert r.returncode == 2 and r.stderr.strip() == "error: --runs and --kills must be at least 1"


def test_the_bench_kills_a_worker_the_script_counts_as_healthy():
    """bench --recovery measures a one-off crash: it waits as long as the script's back-off takes to
    call a run healthy (after which the restart comes at its first, shortest delay)."""
    from pathlib import Path

    from worker.tools.recovery import HEALTHY_S

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "obs_script"))
    from stream_animator_lib.backoff import Backoff

    b = Backoff()
    assert b.healthy_after == HEALTHY_S
    assert b.next_delay(HEALTHY_S) == b.first == 0.2
