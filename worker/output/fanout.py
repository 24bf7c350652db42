"""Run several outputs at once, each on its own thread behind a newest-wins `LatestSlot`."""

from __future__ import annotations

import logging
import threading
import time

import numpy as np

from worker.errors import UserError, os_reason
from worker.output.base import Output, check_rgba
from worker.slot import LatestSlot

log = logging.getLogger(__name__)

Frame = tuple[np.ndarray, int, float]  # rgba, seq, capture time


class OutputFanout:
    """Delivers every frame to every output without letting a slow one hold up the rest.

    `send()` never blocks on a realtime output: a frame still waiting for a busy output is
    replaced by the newer one and counted as dropped in that output's stats. Outputs with
    ``realtime = False`` (offline file rendering) make `send()` wait instead. The RGBA array
    is shared between the outputs: the producer must not write into it after `send()`.
    """

    def __init__(self, outputs: list[Output]):
        self.outputs = list(outputs)
        self.warnings: list[str] = []
        self.disabled: set[str] = set()  # outputs switched off live (by name)
        self._slots: list[LatestSlot[Frame]] = []
        self._threads: list[threading.Thread] = []
        self._started = False

    def start(self, strict: bool = True) -> OutputFanout:
        """Start every output. strict=False keeps going without the ones that fail (their
        one-line errors go to `warnings`); strict=True closes the started ones and re-raises."""
        ok: list[Output] = []
        for out in self.outputs:
            try:
                out.start()
            except UserError as e:
                if strict:
                    for o in ok:
                        o.close()
                    raise
                self.warnings.append(f"{out.name}: {e}")
                log.info("output %s disabled: %s", out.name, e)  # the caller reports it, once
                continue
            ok.append(out)
        self.outputs = ok
        for out in self.outputs:
            slot: LatestSlot[Frame] = LatestSlot()
            t = threading.Thread(target=self._run, args=(out, slot), name=f"output-{out.name}", daemon=True)
            self._slots.append(slot)
            self._threads.append(t)
            t.start()
        self._started = True
        return self

    def send(self, rgba: np.ndarray, seq: int, capture_ts: float) -> None:
        check_rgba(rgba)
        item = (rgba, seq, capture_ts)
        for out, slot in zip(self.outputs, self._slots, strict=True):
            if out.name in self.disabled:
                continue
            if slot.put(item, wait=not out.realtime):
                out.metrics.dropped_frames(1)

    def set_enabled(self, name: str, enabled: bool) -> None:
        """Switch an output off (it gets no frames, keeps its connection) or back on, live."""
        if name not in {o.name for o in self.outputs}:
            raise UserError(f"no output {name!r} is running (running: {', '.join(o.name for o in self.outputs)})")
        if enabled:
            self.disabled.discard(name)
        else:
            self.disabled.add(name)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every output has taken and finished its pending frame."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(s.idle() for s in self._slots):
                return True
            time.sleep(0.002)
        return False

    def _run(self, out: Output, slot: LatestSlot[Frame]) -> None:
        try:
            self._deliver(out, slot)
        finally:
            # Closed on the thread that sent: GUI toolkits (the preview window) hang when a
            # window is destroyed from another thread than the one that drew it.
            try:
                out.close()
            except Exception:
                log.exception("closing output %s failed", out.name)

    def _deliver(self, out: Output, slot: LatestSlot[Frame]) -> None:
        failures = 0
        while True:
            item = slot.take()
            if item is None:
                return
            try:
                out.send(*item)
                failures = 0
            except Exception as e:  # one bad frame or device hiccup must not end the output
                failures += 1
                out.metrics.error(" ".join(f"{type(e).__name__}: {os_reason(e)}".split())[:300])
                if failures == 1 or failures % 100 == 0:
                    log.warning("output %s failed (%d in a row): %s", out.name, failures, e, exc_info=failures == 1)

    def close(self, timeout: float = 5.0) -> None:
        """Stop every output: each closes itself on its own thread; one that does not finish
        within `timeout` seconds (a hung device) is left behind (its thread is a daemon)."""
        for slot in self._slots:
            slot.close()
        deadline = time.monotonic() + timeout
        for out, t in zip(self.outputs, self._threads, strict=False):
            t.join(max(0.0, deadline - time.monotonic()))
            if t.is_alive():
                log.warning("output %s did not stop within %.0f s; left behind", out.name, timeout)
        if not self._started:  # never started: nothing runs on a thread of its own
            for out in self.outputs:
                try:
                    out.close()
                except Exception:
                    log.exception("closing output %s failed", out.name)
        self._slots.clear()
        self._threads.clear()

    def stats(self) -> list[dict]:
        return [{**out.stats(), "enabled": out.name not in self.disabled} for out in self.outputs]

    def __enter__(self) -> OutputFanout:
        if not self._started:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()
