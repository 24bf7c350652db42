"""Background jobs for the studio: long work (preparing a character, rendering a clip) runs in a
thread while the page polls its progress; a job can be cancelled; one job at a time per character.

A job's function receives its `Job` and reports through `job.step()` (or the tqdm-like
`job.bar()` the render loop already knows); both raise `Cancelled` once the user cancelled, so
the work stops at its next step and cleans up through its own `finally` blocks.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from worker.errors import UserError

log = logging.getLogger(__name__)

KEEP_FINISHED = 50  # finished jobs kept for the page to read, newest first


class Cancelled(Exception):
    """Raised inside a job's work once the user pressed Cancel."""


class Busy(UserError):
    """A second job for a character that already has one running."""


@dataclass
class Job:
    id: str
    kind: str  # "prepare", "render", ...
    key: str  # what it works on (a character's file name): one running job per key
    state: str = "running"  # running, done, failed, cancelled
    done: float = 0.0
    total: float = 0.0
    message: str = ""
    result: Any = None
    error: str = ""
    started: float = field(default_factory=time.time)
    finished: float | None = None
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)

    def step(self, done: float | None = None, total: float | None = None, message: str | None = None) -> None:
        """Report progress; raises `Cancelled` when the user cancelled."""
        if total is not None:
            self.total = float(total)
        if done is not None:
            self.done = float(done)
        if message is not None:
            self.message = message
        if self._cancel.is_set():
            raise Cancelled

    def bar(self) -> _Bar:
        """A progress bar with tqdm's `update(n)`, for loops that take one (the talking renderer)."""
        return _Bar(self)

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelling(self) -> bool:
        return self._cancel.is_set()

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "kind": self.kind,
            "key": self.key,
            "state": self.state,
            "done": self.done,
            "total": self.total,
            "fraction": round(self.done / self.total, 4) if self.total else None,
            "message": self.message,
            "result": self.result,
            "error": self.error,
            "seconds": round((self.finished or time.time()) - self.started, 3),
        }


class _Bar:
    def __init__(self, job: Job) -> None:
        self.job = job

    def update(self, n: float = 1) -> None:
        self.job.step(self.job.done + n)


class JobRunner:
    """Runs jobs in threads; refuses a second running job for the same key."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._threads: list[threading.Thread] = []

    def submit(self, kind: str, key: str, work: Callable[[Job], Any], message: str = "") -> Job:
        with self._lock:
            running = next((j for j in self._jobs.values() if j.key == key and j.state == "running"), None)
            if running is not None:
                raise Busy(f"{key}: busy with a {running.kind} job; wait for it or cancel it")
            job = Job(id=str(next(self._ids)), kind=kind, key=key, message=message or f"{kind} {key}")
            self._jobs[job.id] = job
            self._forget_old()
        t = threading.Thread(target=self._run, args=(job, work), name=f"studio-{kind}-{job.id}", daemon=True)
        self._threads = [x for x in self._threads if x.is_alive()] + [t]
        t.start()
        return job

    def _run(self, job: Job, work: Callable[[Job], Any]) -> None:
        try:
            result = work(job)
        except Cancelled:
            job.state, job.message = "cancelled", "cancelled"
        except UserError as e:
            job.state, job.error = "failed", str(e)
        except Exception as e:  # the page shows one line; the log keeps the traceback
            log.error("studio job %s (%s %s) failed", job.id, job.kind, job.key, exc_info=True)
            job.state, job.error = "failed", f"{type(e).__name__}: {e}"
        else:
            job.result, job.state = result, "done"
            if job.total:
                job.done = job.total
        job.finished = time.time()
        if job.state != "done":
            log.info("studio job %s %s %s: %s %s", job.id, job.kind, job.key, job.state, job.error)

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if j.state != "running"]
        for j in sorted(finished, key=lambda j: j.started)[: max(0, len(finished) - KEEP_FINISHED)]:
            del self._jobs[j.id]

    def get(self, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise UserError(f"job {job_id}: no such job")
        return job

    def cancel(self, job_id: str) -> Job:
        job = self.get(job_id)
        job.cancel()
        return job

    def list(self) -> list[Job]:
        return sorted(self._jobs.values(), key=lambda j: j.started, reverse=True)

    def close(self, timeout: float = 10.0) -> None:
        """Cancel what runs and wait for it to stop (at its next progress step)."""
        for j in list(self._jobs.values()):
            j.cancel()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
