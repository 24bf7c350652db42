"""The shared offline frame loop (`worker.tools.offline`): the chain demo, bench and fidelity run."""

from __future__ import annotations

import numpy as np
import pytest

from worker.capture.video import VideoFileSource
from worker.characters.preprocess import preprocess_image
from worker.paths import SAMPLE_CHARACTER, SAMPLE_DRIVER
from worker.render import create_renderer
from worker.retarget import Retargeter, RetargetOptions
from worker.tools.offline import StageTimes, animate, source_frames, track_frames
from worker.track.mediapipe_tracker import FaceTracker

FRAMES = 12


@pytest.fixture(scope="module")
def char():
    return preprocess_image(SAMPLE_CHARACTER)


def test_loop_is_the_tracked_retargeted_rendered_chain(char):
    times = StageTimes()
    with VideoFileSource(SAMPLE_DRIVER) as src, FaceTracker() as tracker:
        tracked = track_frames(source_frames(src, FRAMES), tracker, times, detail=True)
        out = [(f.index, f.timestamp, f.face, f.rgba.copy()) for f in animate(tracked, char, create_renderer(), times)]
    assert [i for i, *_ in out] == list(range(FRAMES))
    assert all(face.found for _, _, face, _ in out)
    # every stage timed once per frame; the tracker's two halves add up to the whole
    assert set(times.seconds) == {"capture", "track", "mesh", "post", "retarget", "render"}
    assert all(len(v) == FRAMES and min(v) >= 0 for v in times.seconds.values())
    track, parts = np.array(times.seconds["track"]), np.add(times.seconds["mesh"], times.seconds["post"])
    assert np.all(parts <= track + 1e-6) and np.all(track - parts < 1e-3)
    stats = times.stats_ms(skip=2)
    assert stats["render"]["n"] == FRAMES - 2 and 0 < stats["render"]["median"] <= stats["render"]["p95"]
    # the same frames through the stages by hand: identical pictures, bit for bit
    renderer, rt = create_renderer(), Retargeter(char, RetargetOptions())
    with VideoFileSource(SAMPLE_DRIVER) as src, FaceTracker() as tracker:
        for _, ts, _, rgba in out:
            frame = src.read()
            assert frame.timestamp == ts
            face = tracker.process(frame.image, frame.timestamp)
            assert np.array_equal(renderer.render(char, rt.retarget(face, tracker.neutral)), rgba)


def test_loop_stops_at_the_end_and_times_the_callers_stage(char):
    times = StageTimes()
    frames = [(np.zeros((120, 160, 3), np.uint8), i / 30.0) for i in range(3)]  # no face: still rendered
    with FaceTracker() as tracker:
        for f in animate(
            track_frames(frames, tracker, times), char, create_renderer(size=128), times, RetargetOptions(idle=False)
        ):
            with times.stage("encode"):
                assert f.rgba.shape == (128, 128, 4) and not f.face.found
    assert {k: len(v) for k, v in times.seconds.items()} == {
        "capture": 3,
        "track": 3,
        "retarget": 3,
        "render": 3,
        "encode": 3,
    }
    assert times.median_ms("nothing") != times.median_ms("nothing")  # NaN for a stage never timed
