"""Small summary statistics shared by benchmarks and reports."""

from __future__ import annotations

import numpy as np


def stats_ms(seconds: list[float]) -> dict:
    """Median and p95 in milliseconds of durations given in seconds, rounded for reports."""
    if not seconds:
        return {"median": None, "p95": None, "n": 0}
    a = np.asarray(seconds) * 1000.0
    return {"median": round(float(np.median(a)), 3), "p95": round(float(np.percentile(a, 95)), 3), "n": len(a)}
