"""The status report: the live pipeline's counters, timers and outputs as a protocol `Status`."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from worker.control import protocol as P
from worker.live.stages import StageThreads


class StatusReport:
    """Reads the stages' counters (any thread); `process` adds the worker process's metrics."""

    def __init__(self, stages: StageThreads, process: Callable[[], dict[str, Any]] | None = None) -> None:
        self.stages = stages
        self.process = process
        self.started_at = time.monotonic()

    def status(self) -> P.Status:
        s = self.stages
        outs = {o["name"]: o for o in s.fanout.stats()}
        lat = [o["latency_ms_p95"] for o in outs.values() if o.get("latency_ms_p95") is not None]
        renderer, renderer_reason = s.animator.describe_renderer()
        return P.Status(
            running=not s.stop_event.is_set(),
            uptime_s=round(time.monotonic() - self.started_at, 1),
            fps=round(s.render_rate.rate(), 2),
            latency_ms={"p95": max(lat) if lat else None, "pipeline": s.timers["total"].snapshot()},
            stages_ms={k: t.snapshot() for k, t in s.timers.items() if k != "total"},
            frames={"captured": s.captured, "tracked": s.tracked, "rendered": s.rendered, "with_face": s.faces},
            drops={
                "track": s.to_track.drops,
                "render": s.to_render.drops,
                **{name: o.get("dropped", 0) for name, o in outs.items()},
            },
            character=s.character,
            last_switch=s.last_switch,
            characters=len(s.roster.ids()),
            tracking=s.tracking_state,
            paused=s.controls.paused,
            camera=dict(s.camera),
            outputs=outs,
            warnings=list(s.warnings)[-5:],
            renderer=renderer,
            renderer_reason=renderer_reason,
            process=self.process() if self.process is not None else {},
            camera_issue=s.camera_issue,
            voice={**s.voice.status(), "lipsync": s.lipsync} if s.voice is not None else {},
        )
