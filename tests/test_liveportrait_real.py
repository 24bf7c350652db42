"""The liveportrait renderer with the REAL weights, wherever they are present.

Set STREAM_ANIMATOR_MODELS to a folder holding liveportrait/*.onnx (`stream-animator models
--download` puts them there). It renders shared footage (driver d0 onto the portrait s42 and the
sample character), writes a contact sheet, prints the per-network milliseconds and the render
cache's hit rate, and checks that the output is a moving, non-degenerate face.

It cannot run on the project's own machines or CI: no weights can be downloaded there. This is
the one test of the renderer that skips, and it says so.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from worker.render.liveportrait import Driver, LivePortraitRenderer, availability


def _models() -> Path:
    env = os.environ.get("STREAM_ANIMATOR_MODELS")
    if not env:
        pytest.skip("real LivePortrait weights are not on this machine (set STREAM_ANIMATOR_MODELS); cannot run here")
    ok, reason = availability(Path(env))
    if not ok:
        pytest.skip(f"real LivePortrait weights not usable here: {reason}")
    return Path(env)


def test_real_weights_render_shared_footage(testdata, tmp_path):
    from worker.capture.video import VideoFileSource
    from worker.tools.liveportrait_overhead import character_arrays
    from worker.track.mediapipe_tracker import FaceTracker

    models = _models()
    r = LivePortraitRenderer(size=512, models_dir=models, device=os.environ.get("STREAM_ANIMATOR_DEVICE", "auto"))
    print("\n" + "\n".join(r.provider_lines()))
    rgba, lm = character_arrays(testdata / "footage" / "portraits" / "s42.jpg", 512)
    arrays = r.prepare_picture(rgba, lm)
    src = VideoFileSource(testdata / "footage" / "driving" / "d0.mp4")
    outs = []
    with FaceTracker() as tracker:
        while (f := src.read()) is not None:
            face = tracker.process(f.image, f.timestamp)
            outs.append(r.drive(arrays, Driver.from_face(cv2.cvtColor(f.image, cv2.COLOR_BGR2RGB), face)))
    src.close()
    assert r.nets["F"].runs == 1
    s = r.stats()
    print("network ms:", s["network_ms"], "own ms:", s["own_ms"], "cache:", s["cache"])
    print(r.status_line())
    picks = [outs[i] for i in np.linspace(0, len(outs) - 1, 8).astype(int)]
    sheet = np.concatenate([np.concatenate(picks[:4], axis=1), np.concatenate(picks[4:], axis=1)], axis=0)
    out_dir = Path(os.environ.get("STREAM_ANIMATOR_SHEETS", tmp_path))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "liveportrait_d0_s42.png"
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGBA2BGRA))
    print("contact sheet:", path)
    stack = np.stack([o[..., :3].astype(np.float32) for o in outs])
    assert stack.std(axis=0).mean() > 1.0  # the face moves with the driver
    assert 20 < stack.mean() < 235  # neither black nor blown out (FP16 black frames)
