"""The face tracker, built on a thread of its own while the character is already on stream.

Importing MediaPipe and building its face-mesh graph is the slowest step of a worker's start
(1-5 s on a busy 2-core machine, most of it MediaPipe pulling in matplotlib). A worker that OBS
restarts after a crash would show a frozen picture all that time; instead the pipeline starts at
once and the character rests and idles (breathing, blinks: a face "not found") until the tracker
is ready, then follows the camera.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import numpy as np

from worker.errors import UserError
from worker.live.ports import Tracker
from worker.track.face_state import FaceState

log = logging.getLogger(__name__)

BUILD_WAIT = 20.0  # s: at stop, a tracker still being built is waited for this long (1-5 s on a busy machine)


class TrackerLoader:
    """A `Tracker` whose real tracker comes from `make()` on a background thread.

    Until it is ready every call answers with the resting face (idle motion comes from the
    retargeter); calibration and smoothing asked for meanwhile are applied once it is.
    A tracker that fails to build raises its error (as a `UserError`) from the next call,
    which stops the pipeline with that one line.
    """

    def __init__(
        self, make: Callable[[], Tracker], on_ready: Callable[[], None] | None = None, start: bool = True
    ) -> None:
        self._make = make
        self._on_ready = on_ready
        self._tracker: Tracker | None = None
        self._error: BaseException | None = None
        self._smoothing: float | None = None
        self._calibrate = False
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._build, name="tracker-load", daemon=True)
        self._started = False
        if start:
            self.start()

    def start(self) -> None:
        """Begin building (once; later calls do nothing). The worker calls it when its first frame
        is out, so MediaPipe's import does not compete with that frame for the interpreter."""
        with self._lock:
            if self._started or self._closed:
                return
            self._started = True
        self._thread.start()

    def _build(self) -> None:
        try:
            tracker = self._make()
        except BaseException as e:  # noqa: BLE001 - reported from the stage thread's next call
            log.error("face tracker failed to start: %s", e, exc_info=True, extra={"file_only": True})
            self._error = e
            return
        with self._lock:
            if self._closed:  # the worker stopped while MediaPipe was loading
                _close(tracker)
                return
            if self._smoothing is not None:
                tracker.set_smoothing(self._smoothing)
            if self._calibrate:
                tracker.calibrate()
            self._tracker = tracker
        if self._on_ready is not None:
            self._on_ready()

    @property
    def ready(self) -> bool:
        if self._error is not None:
            raise UserError(f"face tracker: {type(self._error).__name__}: {self._error}")
        return self._tracker is not None

    @property
    def tracker(self) -> Tracker | None:
        """The real tracker once it is built, else None."""
        return self._tracker

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the tracker is built (or failed); True when it is ready."""
        self.start()
        self._thread.join(timeout)
        return self.ready

    @staticmethod
    def _resting(timestamp: float) -> FaceState:
        return FaceState(found=False, timestamp=timestamp, lost_blend=1.0)

    def _live(self) -> Tracker | None:
        """The built tracker, or None while it loads (`ready` raises when building failed)."""
        return self._tracker if self.ready else None

    # --- the Tracker port ---------------------------------------------------------------------
    @property
    def neutral(self) -> FaceState | None:
        return t.neutral if (t := self._live()) is not None else None

    @property
    def calibrating(self) -> bool:
        return t.calibrating if (t := self._live()) is not None else False

    def process(self, image: np.ndarray, timestamp: float) -> FaceState:
        return t.process(image, timestamp) if (t := self._live()) is not None else self._resting(timestamp)

    def hold(self, timestamp: float) -> FaceState:
        return t.hold(timestamp) if (t := self._live()) is not None else self._resting(timestamp)

    def lost(self, timestamp: float) -> FaceState:
        return t.lost(timestamp) if (t := self._live()) is not None else self._resting(timestamp)

    def calibrate(self) -> None:
        with self._lock:
            if self._tracker is None:
                self._calibrate = True
                return
        self._tracker.calibrate()

    def set_smoothing(self, amount: float) -> None:
        with self._lock:
            if self._tracker is None:
                self._smoothing = amount
                return
        self._tracker.set_smoothing(amount)

    def close(self, wait: float = BUILD_WAIT) -> None:
        """Close the tracker; one still being built is waited for (up to `wait` s) and closed by
        the building thread. A worker stopped a few seconds after its start would otherwise exit
        with MediaPipe's graph half-built on a daemon thread, and the interpreter's shutdown ends
        that thread inside C++ (SIGABRT, seen once in CI on a 3-s run)."""
        with self._lock:
            self._closed = True
            tracker, self._tracker = self._tracker, None
            building = self._started
        if tracker is not None:
            _close(tracker)
        if building and self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(wait)
            if self._thread.is_alive():
                log.warning("face tracker still loading after %.0f s at stop; left behind", wait)


def _close(tracker: Tracker) -> None:
    close = getattr(tracker, "close", None)  # the real tracker holds MediaPipe's graph
    if close is not None:
        close()
