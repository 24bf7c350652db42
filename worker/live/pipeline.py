"""The live pipeline: the stage threads, the op table and the status report, put together.

`Pipeline.request(op, args)` is the control channel's entry point; `publish` (the control
server's) announces a character switch once it has taken effect (a ``character`` event) and a
changed characters folder (a ``characters`` event).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from worker.capture import FrameSource
from worker.control import protocol as P
from worker.live.ops import ControlOps
from worker.live.ports import Animator, Characters, Fanout, Tracker, Voice
from worker.live.report import StatusReport
from worker.live.stages import Controls, StageThreads


class Pipeline:
    def __init__(
        self,
        open_source: Callable[[], FrameSource],
        roster: Characters,
        animator: Animator,
        tracker: Tracker,
        fanout: Fanout,
        publish: Callable[[dict], None] | None = None,
        process: Callable[[], dict[str, Any]] | None = None,
        voice: Voice | None = None,
        lipsync: str = "off",
        idle_fps: float = 30.0,
    ) -> None:
        self.publish = publish
        self.roster = roster
        self.controls = Controls()
        self.stages = StageThreads(
            open_source,
            tracker,
            animator,
            fanout,
            roster,
            self.controls,
            on_switch=lambda sw: self._publish("character", sw),
            idle_fps=idle_fps,
            voice=voice,
            lipsync=lipsync,
        )
        self.report = StatusReport(self.stages, process)
        self.ops = ControlOps(self.stages, self.status)
        self.stop_event = self.stages.stop_event

    def start(self, character: str | None) -> None:
        self.stages.start(character)

    def stop(self) -> None:
        self.stages.stop()

    def warn(self, message: str) -> None:
        self.stages.warn(message)

    def request(self, op: str, args: dict) -> dict:
        return self.ops.request(op, args)

    def status(self) -> P.Status:
        return self.report.status()

    @property
    def character(self) -> str | None:
        return self.stages.character

    def characters_changed(self, change: str, cid: str) -> None:
        """`Roster.on_change`: tell subscribers the folder's new list (roster thread)."""
        self._publish("characters", self.ops.character_list())

    def _publish(self, name: str, data: Any) -> None:
        if self.publish is not None:
            self.publish(P.event(name, data))
