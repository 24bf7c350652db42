"""Process metrics for status replies."""

from __future__ import annotations

import json

from worker.control.metrics import ProcessMetrics


def test_process_metrics_snapshot_is_json_and_sane():
    m = ProcessMetrics()
    sum(i * i for i in range(200_000))  # some CPU time to measure
    s = m.snapshot()
    json.dumps(s)
    assert s["rss_mb"] > 10 and s["threads"] >= 1 and s["cpu_count"] >= 1
    assert 0 <= s["cpu_percent"] <= 100 * s["cpu_count"]
    try:
        import pynvml  # noqa: F401
    except ImportError:
        assert not any(k.startswith("gpu") for k in s)
