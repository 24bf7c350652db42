"""Idle life: auto-blink and a little breathing and sway, for when the face is lost.

Everything is a smooth function of time (sums of slow sines, blinks at pseudo-random but
deterministic intervals), so that it can be blended in and out without jumps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class IdleMotion:
    yaw: float = 0.0  # degrees
    pitch: float = 0.0
    roll: float = 0.0
    dy: float = 0.0  # vertical shift, inter-ocular units (breathing)
    scale: float = 1.0
    blink: float = 0.0  # 0 open .. 1 shut


class Idle:
    """Idle motion generator. `sample(t)` is deterministic for a given seed."""

    BLINK_S = 0.16  # a blink: close and reopen

    def __init__(
        self, seed: int = 7, sway_deg: float = 2.0, breath: float = 0.012, blink_every: tuple[float, float] = (2.5, 6.0)
    ) -> None:
        rng = np.random.default_rng(seed)
        self.sway_deg = sway_deg
        self.breath = breath
        # a long, fixed schedule of blink start times; repeats after its end
        gaps = rng.uniform(blink_every[0], blink_every[1], 64)
        self._blinks = np.cumsum(gaps)
        self._period = float(self._blinks[-1] + blink_every[0])
        self._phase = rng.uniform(0, 2 * math.pi, 6)

    def blink(self, t: float) -> float:
        t = t % self._period
        i = int(np.searchsorted(self._blinks, t)) - 1
        if i < 0:
            return 0.0
        x = (t - float(self._blinks[i])) / self.BLINK_S
        if x >= 1.0:
            return 0.0
        return math.sin(math.pi * x) ** 0.6  # quick close, brief hold, reopen

    def sample(self, t: float) -> IdleMotion:
        p = self._phase
        a = self.sway_deg
        yaw = a * (0.8 * math.sin(2 * math.pi * 0.07 * t + p[0]) + 0.4 * math.sin(2 * math.pi * 0.13 * t + p[1]))
        pitch = a * 0.5 * math.sin(2 * math.pi * 0.05 * t + p[2])
        roll = a * 0.6 * math.sin(2 * math.pi * 0.09 * t + p[3])
        breath = math.sin(2 * math.pi * 0.22 * t + p[4])  # ~13 breaths a minute
        return IdleMotion(
            yaw=yaw,
            pitch=pitch,
            roll=roll,
            dy=-self.breath * 0.5 * breath,
            scale=1.0 + self.breath * 0.25 * breath,
            blink=self.blink(t),
        )
