"""Restart back-off for a worker that keeps dying: 1, 2, 4 ... 30 s, reset after a healthy run."""

from __future__ import annotations


class Backoff:
    """Delay before the next restart; doubles per consecutive failure up to `maximum`.

    A run that stayed up for `healthy_after` seconds counts as healthy: the next failure starts
    over at `initial`, so a worker that crashes once an hour restarts at once, while one that
    crashes at start-up does not spin the CPU of the streaming machine.
    """

    def __init__(self, initial: float = 1.0, factor: float = 2.0, maximum: float = 30.0,
                 healthy_after: float = 20.0):
        if initial <= 0 or factor < 1 or maximum < initial:
            raise ValueError("backoff needs 0 < initial <= maximum and factor >= 1")
        self.initial, self.factor, self.maximum = initial, factor, maximum
        self.healthy_after = healthy_after
        self.failures = 0

    def next_delay(self, run_seconds: float) -> float:
        """Record a failure after a run of `run_seconds`; return how long to wait."""
        if run_seconds >= self.healthy_after:
            self.failures = 0
        delay = min(self.maximum, self.initial * self.factor ** min(self.failures, 60))
        self.failures += 1
        return delay

    def reset(self) -> None:
        self.failures = 0
