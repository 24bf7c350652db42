"""The roll diagnostics (`worker.tools.roll_reading`): what the second tracker reads of a pure tilt."""

from __future__ import annotations

import math

import numpy as np

from worker.tools import fidelity
from worker.tools.roll_reading import rigid_roll


def test_a_rigid_tilt_of_the_turned_painting_reads_as_that_tilt(testdata):
    """The painting drawn turned 33 degrees (s10), tilted rigidly by +-8 degrees: MediaPipe reads
    the tilt (measured r 0.998, slope 1.02; along d3's own roll path r 0.988), so a roll lost on
    that painting is lost in the warp's drawing or in how the tracker reads its expressions."""
    s10 = fidelity.portrait_character("s10", testdata)
    rolls = [8.0 * math.sin(2 * math.pi * i / 45) for i in range(90)]
    read = rigid_roll(s10, rolls)
    assert np.isfinite(read).all()
    slope = float(np.polyfit(rolls, read, 1)[0])
    r = float(np.corrcoef(rolls, read)[0, 1])
    print(f"r {r:.4f} slope {slope:.3f}")
    assert r >= 0.99 and 0.9 <= slope <= 1.1, (r, slope)
