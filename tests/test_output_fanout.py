"""OutputFanout: a slow output drops frames for itself only; failing outputs don't stop others."""

from __future__ import annotations

import time

import numpy as np
import pytest

from worker.errors import UserError
from worker.output.base import Output
from worker.output.fanout import OutputFanout
from worker.output.file import FileOutput


class Recorder(Output):
    """An output that takes `delay` seconds per frame and remembers what it got."""

    def __init__(self, name: str, delay: float = 0.0, fail_every: int = 0):
        super().__init__()
        self.name, self.delay, self.fail_every = name, delay, fail_every
        self.seqs: list[int] = []

    def send(self, rgba: np.ndarray, seq: int, capture_ts: float) -> None:
        if self.fail_every and seq % self.fail_every == 0:
            raise OSError(f"device hiccup at {seq}")
        time.sleep(self.delay)
        self.seqs.append(seq)
        self.metrics.delivered_frame(capture_ts)


def test_slow_output_never_stalls_the_fast_one():
    fast, slow = Recorder("fast"), Recorder("slow", delay=0.05)
    fan = OutputFanout([fast, slow]).start()
    img = np.zeros((8, 8, 4), np.uint8)
    t0 = time.perf_counter()
    for i in range(100):
        fan.send(img, i, time.time())
        time.sleep(0.002)
    elapsed = time.perf_counter() - t0
    assert fan.flush(2.0)
    fan.close()
    assert elapsed < 2.5  # 100 frames, ~0.3 s here; the slow output alone would need 5 s
    # newest-wins: a busy 2-core box may not wake the fast thread within every 2 ms gap
    assert len(fast.seqs) >= 50 and len(fast.seqs) > 2 * len(slow.seqs) and fast.seqs[-1] == 99
    assert slow.seqs == sorted(slow.seqs) and slow.seqs[-1] == 99
    assert len(slow.seqs) <= (elapsed + 2.0) / 0.05 + 1 < 100  # at most one per 50 ms: the rest dropped
    st = {s["name"]: s for s in fan.stats()}
    assert st["slow"]["dropped"] == 100 - len(slow.seqs)
    assert st["fast"]["dropped"] == 100 - len(fast.seqs)
    assert st["slow"]["fps"] > 0 and st["slow"]["latency_ms_p95"] >= 50


def test_output_errors_are_counted_not_fatal():
    flaky = Recorder("flaky", fail_every=3)
    fan = OutputFanout([flaky]).start()
    img = np.zeros((4, 4, 4), np.uint8)
    for i in range(30):
        fan.send(img, i, time.time())
        assert fan.flush(1.0)
    fan.close()
    st = fan.stats()[0]
    assert st["errors"] == 10 and "device hiccup" in st["last_error"] and len(flaky.seqs) == 20


def test_non_realtime_output_gets_every_frame(tmp_path):
    rec = FileOutput(tmp_path / "frames", realtime=False)
    slow = Recorder("slow", delay=0.01)
    slow.realtime = False
    fan = OutputFanout([rec, slow]).start()
    img = np.full((16, 16, 4), 200, np.uint8)
    for i in range(20):
        fan.send(img, i, time.time())
    fan.close()
    assert slow.seqs == list(range(20))
    assert len(list((tmp_path / "frames").glob("*.png"))) == 20


def test_start_strict_or_lenient(tmp_path):
    (tmp_path / "a_file").write_text("not a folder")
    bad_path = tmp_path / "a_file" / "out.mp4"
    with pytest.raises(UserError, match="a_file is a file, not a folder"):
        OutputFanout([Recorder("ok"), FileOutput(bad_path)]).start(strict=True)
    fan = OutputFanout([Recorder("ok"), FileOutput(bad_path)]).start(strict=False)
    assert [o.name for o in fan.outputs] == ["ok"]
    assert len(fan.warnings) == 1 and fan.warnings[0].startswith(f"file: {bad_path}: cannot write there")
    fan.close()


def test_rejects_non_rgba():
    fan = OutputFanout([Recorder("ok")]).start()
    with pytest.raises(ValueError, match="RGBA"):
        fan.send(np.zeros((4, 4, 3), np.uint8), 0, time.time())
    fan.close()
