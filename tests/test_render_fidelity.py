"""Fidelity on real footage: track -> retarget -> render, then MediaPipe again on the output.

A subsample of the full table (each driver once, each character once, the first 150 frames);
`python -m worker.render.fidelity` prints all 16 pairs.
"""

from __future__ import annotations

import pytest

from worker.render import fidelity as F

PAIRS = (("d0", "s42"), ("d3", "s10"), ("d9", "s12"), ("d12", "s9"))
FRAMES = 150


@pytest.mark.slow
@pytest.mark.parametrize("driver,character", PAIRS)
def test_output_follows_the_driver(testdata, driver, character):
    states, neutrals = F.track_driver(testdata / "footage" / "driving" / f"{driver}.mp4", FRAMES)
    res = F.run_pair(driver, states, neutrals, F.portrait_character(character, testdata))
    print(F.format_table([res]))
    assert res.failures() == [], F.format_table([res])


def test_metrics_detect_a_frozen_character(testdata):
    """The metrics can fail: a character that ignores the driver scores r ~ 0 and gain 0."""
    from worker.retarget.retargeter import RetargetOptions

    states, neutrals = F.track_driver(testdata / "footage" / "driving" / "d12.mp4", 60)
    res = F.run_pair("d12", states, neutrals, F.portrait_character("s42", testdata),
                     RetargetOptions(idle=False, expression_strength=0.0, head_strength=0.0))
    assert res.gain < 0.2
    assert any("mouth r" in f for f in res.failures())
