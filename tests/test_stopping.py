"""A SIGTERM whose raise Python swallows (inside a __del__ here; a callback from C in CI once)
still stops an offline job at its next frame."""

from __future__ import annotations

import os
import signal
import sys

import pytest

from worker.stopping import Stopped, check_stop, stop_on_signals


class _SignalledWhileDropped:
    """Sends SIGTERM to this process from __del__: the handler runs there and its raise is ignored."""

    def __del__(self):
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(10_000):  # bytecode in which the handler runs
            pass


def _frames(n: int, checked: bool) -> int:
    done = 0
    for k in range(n):
        if checked:
            check_stop()
        if k == 3:
            _SignalledWhileDropped()  # dropped at once: __del__ runs here
        done += 1
    return done


@pytest.fixture
def ignored(monkeypatch) -> list[BaseException]:
    """The exceptions Python ignores ("Exception ignored in ...")."""
    seen: list[BaseException] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: seen.append(u.exc_value))
    return seen


def test_a_swallowed_stop_is_lost_without_the_check(ignored):
    with stop_on_signals():
        assert _frames(20, checked=False) == 20  # the hazard: the raise went nowhere
    assert [type(e) for e in ignored] == [Stopped]


def test_a_swallowed_stop_still_stops_the_next_frame(ignored):
    with pytest.raises(Stopped, match="SIGTERM"):
        with stop_on_signals():
            _frames(20, checked=True)
    assert [type(e) for e in ignored] == [Stopped]


def test_the_stop_ends_with_its_job():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Stopped):
        with stop_on_signals():
            os.kill(os.getpid(), signal.SIGHUP)
            for _ in range(10_000):
                pass
    check_stop()  # the next job starts afresh
    assert signal.getsignal(signal.SIGTERM) is before
