"""`stream-animator demo`: the whole chain offline, every output format, and bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from media import decode_rgba
from PIL import Image

from worker.paths import SAMPLE_DRIVER


def demo(tmp_path: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, STREAM_ANIMATOR_LOGS=str(tmp_path / "logs"), STREAM_ANIMATOR_CACHE=str(tmp_path / "cache"))
    return subprocess.run(
        [sys.executable, "-m", "worker", "demo", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=tmp_path,
    )


def driver_frames() -> int:
    with av.open(str(SAMPLE_DRIVER)) as c:
        return sum(1 for _ in c.decode(video=0))


def test_demo_with_default_arguments(tmp_path):
    """What a newcomer runs first: bundled character, bundled clip, no webcam, no network."""
    r = demo(tmp_path, "--json", "--sheet", "sheet.png")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout.strip().splitlines()[-1])
    n = driver_frames()
    assert res["frames_in"] == n and res["frames_out"] == n
    assert res["frames_with_face"] == n
    for stage in ("capture", "track", "retarget", "render", "encode"):
        assert res["stages_ms"][stage]["median"] > 0
    out = tmp_path / "out" / "demo.mp4"
    with av.open(str(out)) as c:
        s = c.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(s)]
        assert abs(float(s.average_rate) - 25.0) < 0.01  # the driver's frame rate
    assert len(frames) == n
    # the character moves: frames differ from each other well beyond codec noise
    diffs = [np.abs(frames[i].astype(int) - frames[0].astype(int)).mean() for i in range(0, n, 10)]
    assert max(diffs) > 3.0
    assert Image.open(tmp_path / "sheet.png").size[0] > 400


@pytest.mark.parametrize("out", ["a.mov", "a.webm", "frames/"])
def test_demo_formats_keep_alpha(tmp_path, out):
    r = demo(tmp_path, "--out", out, "--size", "256", "--max-frames", "12", "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["frames_out"] == 12
    if out.endswith("/"):
        pngs = sorted((tmp_path / out).glob("*.png"))
        assert len(pngs) == 12
        rgba = np.asarray(Image.open(pngs[-1]))
    else:
        frames = decode_rgba(tmp_path / out)
        assert len(frames) == 12
        rgba = frames[-1]
    assert rgba.shape == (256, 256, 4)
    alpha = rgba[..., 3]
    assert (alpha < 10).mean() > 0.1 and (alpha > 245).mean() > 0.2  # transparent background, opaque figure


def test_demo_mp4_is_opaque_over_background(tmp_path):
    r = demo(tmp_path, "--out", "g.mp4", "--size", "256", "--max-frames", "5", "--background", "#0000ff")
    assert r.returncode == 0, r.stderr
    with av.open(str(tmp_path / "g.mp4")) as c:
        f = next(iter(c.decode(video=0))).to_ndarray(format="rgb24")
    corner = f[:8, :8].reshape(-1, 3).mean(0)
    assert corner[2] > 200 and corner[0] < 40  # the blue background shows where the character is transparent


def _noface_clip(path: Path) -> None:
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width = s.height = 128
        s.pix_fmt = "yuv420p"
        rng = np.random.default_rng(1)
        for _ in range(10):
            img = rng.integers(100, 140, (128, 128, 3), dtype=np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


@pytest.mark.parametrize("case", ["missing_driver", "noface_driver", "unwritable", "bad_suffix", "bad_character"])
def test_demo_bad_input_one_line(tmp_path, case):
    args: list[str] = []
    if case == "missing_driver":
        args, want = ["--driver", "nope.mp4"], "nope.mp4: driving video not found"
    elif case == "noface_driver":
        _noface_clip(tmp_path / "noise.mp4")
        args, want = ["--driver", "noise.mp4", "--out", "x.mp4"], "no face found in any frame"
    elif case == "unwritable":
        (tmp_path / "afile").write_text("x")
        args, want = ["--out", "afile/sub/out.mp4"], "afile"
    elif case == "bad_suffix":
        args, want = ["--out", "out.avi"], "unsupported suffix"
    else:
        (tmp_path / "char.png").write_text("not an image")
        args, want = ["--character", "char.png"], "char.png: not a readable image"
    r = demo(tmp_path, *args)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    lines = [x for x in r.stderr.splitlines() if x.startswith("error:")]
    assert len(lines) == 1 and want in lines[0], r.stderr
    if case == "noface_driver":
        assert not (tmp_path / "x.mp4").exists()  # no half-written output left behind
