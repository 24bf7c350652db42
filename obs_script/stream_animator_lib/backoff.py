"""Restart back-off for a worker that keeps dying: 0.2, 1, 2, 4 ... 30 s, reset after a healthy run."""

from __future__ import annotations


class Backoff:
    """Delay before the next restart: `first` after a healthy run, then `initial`, doubling per
    consecutive failure up to `maximum`.

    A run that stayed up for `healthy_after` seconds counts as healthy: the next failure starts
    over at `first`, so a worker that crashes once an hour is back on stream at once (the stream
    waits for the restart), while one that crashes at start-up does not spin the CPU of the
    streaming machine (one quick retry, then 1, 2, 4 ... s).
    """

    def __init__(
        self,
        initial: float = 1.0,
        factor: float = 2.0,
        maximum: float = 30.0,
        healthy_after: float = 20.0,
        first: float = 0.2,
    ):
        if initial <= 0 or factor < 1 or maximum < initial or not 0 < first <= initial:
            raise ValueError("backoff needs 0 < first <= initial <= maximum and factor >= 1")
        self.first, self.initial, self.factor, self.maximum = first, initial, factor, maximum
        self.healthy_after = healthy_after
        self.failures = 0

    def next_delay(self, run_seconds: float) -> float:
        """Record a failure after a run of `run_seconds`; return how long to wait."""
        if run_seconds >= self.healthy_after:
            self.failures = 0
        if self.failures == 0:
            delay = self.first
        else:
            delay = min(self.maximum, self.initial * self.factor ** min(self.failures - 1, 60))
        self.failures += 1
        return delay

    def reset(self) -> None:
        self.failures = 0
