"""The live pipeline: capture -> track -> (retarget + render) -> outputs, each on its own thread.

Stages are joined by one-slot queues where the newest frame wins, so a stage that falls behind
skips frames (counted as drops) instead of building up latency. Requests from the control
channel only set flags that the stage threads pick up at their next frame: the control thread
never waits on the stream and the stream never waits on a client.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from worker.animator import Animator
from worker.capture import CaptureError, FrameSource
from worker.characters.roster import Roster
from worker.config import LIVE_KEYS, set_key
from worker.errors import UserError
from worker.output.fanout import OutputFanout
from worker.output.metrics import RateMeter, RollingPercentiles
from worker.track.mediapipe_tracker import FaceTracker

log = logging.getLogger(__name__)


class LatestSlot:
    """A one-item queue between two stages: `put` replaces an unread item (a drop)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: Any = None
        self.closed = False
        self.drops = 0

    def put(self, item: Any) -> None:
        with self._cond:
            if self._item is not None:
                self.drops += 1
            self._item = item
            self._cond.notify()

    def get(self, timeout: float = 0.5) -> Any:
        with self._cond:
            if self._item is None and not self.closed:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            return item

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()


@dataclass
class _Captured:
    seq: int
    image: Any  # BGR frame
    mono: float  # time.monotonic() at capture: the tracker's clock (files loop, so media time jumps)
    wall: float  # time.time() at capture: what outputs measure latency from


class StageTimer:
    def __init__(self) -> None:
        self.ms = RollingPercentiles(300)

    def add(self, seconds: float) -> None:
        self.ms.add(seconds * 1000.0)

    def snapshot(self) -> dict:
        p50, p95 = self.ms.percentiles(50, 95)
        return {"p50": _r(p50), "p95": _r(p95)}


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 2)


class Pipeline:
    """Runs the stages; `request(op, args)` is the control channel's entry point."""

    def __init__(
        self,
        config: dict,
        open_source: Callable[[], FrameSource],
        roster: Roster,
        animator: Animator,
        tracker: FaceTracker,
        fanout: OutputFanout,
    ) -> None:
        self.config = config
        self._open_source = open_source
        self.roster = roster
        self.animator = animator
        self.tracker = tracker
        self.fanout = fanout
        self.stop_event = threading.Event()
        self.started_at = time.monotonic()
        self.paused = False
        self.character: str | None = None
        self._pending_character: str | None = None
        self._calibrate = False
        self._pending_options: dict[str, Any] = {}
        self._opts_lock = threading.Lock()
        self._to_track = LatestSlot()
        self._to_render = LatestSlot()
        self.timers = {name: StageTimer() for name in ("capture", "track", "retarget", "render", "total")}
        self.captured = 0
        self.tracked = 0
        self.rendered = 0
        self.faces = 0
        self.render_rate = RateMeter(2.0)
        self.tracking_state = "starting"
        self.camera: dict = {}
        self.warnings: deque[str] = deque(maxlen=20)
        self._threads: list[threading.Thread] = []
        # the last switch: frames still rendered with the old character after the request
        self.last_switch: dict = {}
        self._switch_requested_at = 0

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self, character: str | None) -> None:
        self.character = character
        for name, fn in (("capture", self._capture_loop), ("track", self._track_loop),
                         ("render", self._render_loop)):
            t = threading.Thread(target=self._guard(fn, name), name=name, daemon=True)
            self._threads.append(t)
            t.start()

    def stop(self) -> None:
        self.stop_event.set()
        self._to_track.close()
        self._to_render.close()
        for t in self._threads:
            t.join(5)

    def warn(self, message: str) -> None:
        if not self.warnings or self.warnings[-1] != message:
            self.warnings.append(message)
        log.warning("%s", message)

    def _guard(self, fn: Callable[[], None], name: str) -> Callable[[], None]:
        def run() -> None:
            try:
                fn()
            except Exception as e:  # a dead stage would freeze the stream: stop cleanly instead
                log.exception("stage %s crashed", name)
                self.warn(f"stage {name} crashed: {type(e).__name__}: {e}")
                self.stop_event.set()
        return run

    # --- stages ---------------------------------------------------------------------------------
    def _capture_loop(self) -> None:
        source: FrameSource | None = None
        backoff = 0.5
        seq = 0
        try:
            while not self.stop_event.is_set():
                if source is None:
                    try:
                        source = self._open_source()
                    except (CaptureError, UserError) as e:
                        self.tracking_state = "no camera"
                        self.warn(f"camera unavailable: {e}; retrying in {backoff:.0f} s")
                        self.stop_event.wait(backoff)
                        backoff = min(backoff * 2, 5.0)
                        continue
                    backoff = 0.5
                    self.camera = {"name": source.name, "width": source.size[0], "height": source.size[1],
                                   "fps": round(float(source.fps), 2)}
                    log.info("capture: %s %dx%d at %.1f fps", source.name, *source.size, source.fps)
                t0 = time.perf_counter()
                try:
                    frame = source.read()
                except (CaptureError, UserError, OSError) as e:
                    self.warn(f"camera lost: {e}; reconnecting")
                    source.close()
                    source = None
                    continue
                if frame is None:  # a file that does not loop has ended
                    log.info("capture: end of %s", source.name)
                    self.stop_event.set()
                    break
                self.timers["capture"].add(time.perf_counter() - t0)
                seq += 1
                self.captured += 1
                self._to_track.put(_Captured(seq, frame.image, time.monotonic(), time.time()))
        finally:
            if source is not None:
                source.close()

    def _track_loop(self) -> None:
        while not self.stop_event.is_set():
            item: _Captured | None = self._to_track.get()
            if item is None:
                continue
            if self._calibrate:
                self._calibrate = False
                self.tracker.calibrate()
            t0 = time.perf_counter()
            if self.paused:
                face = self.tracker.hold(item.mono)
                self.tracking_state = "paused"
            else:
                face = self.tracker.process(item.image, item.mono)
                self.faces += face.found
                self.tracking_state = ("calibrating" if self.tracker.calibrating and face.found else
                                       "tracking" if face.found else "lost")
            self.timers["track"].add(time.perf_counter() - t0)
            self.tracked += 1
            self._to_render.put((item, face, self.tracker.neutral))

    def _render_loop(self) -> None:
        while not self.stop_event.is_set():
            got = self._to_render.get()
            if got is None:
                continue
            item, face, neutral = got
            self._apply_pending(item.seq)
            if self.animator.assets is None:
                continue  # the first character is still loading
            rgba = self.animator.animate(face, neutral)
            self.timers["retarget"].add(self.animator.last_ms["retarget"] / 1000.0)
            self.timers["render"].add(self.animator.last_ms["render"] / 1000.0)
            self.fanout.send(rgba, item.seq, item.wall)
            self.timers["total"].add(time.time() - item.wall)
            self.rendered += 1
            self.render_rate.tick()

    def _apply_pending(self, seq: int) -> None:
        cid = self._pending_character
        if cid is not None:
            assets = self.roster.get(cid)
            if assets is not None:
                self._pending_character = None
                self.animator.set_character(assets)
                self.character = cid
                self.last_switch = {"character": cid, "frames_late": self.rendered - self._switch_requested_at,
                                    "first_seq": seq}
                log.info("character: %s (from frame %d)", cid, seq)
        elif self.animator.assets is None and self.character:
            assets = self.roster.get(self.character)
            if assets is not None:
                self.animator.set_character(assets)
        if self._pending_options:
            with self._opts_lock:
                opts, self._pending_options = self._pending_options, {}
            motion = {k.split(".", 1)[1]: v for k, v in opts.items() if k.startswith("motion.")}
            if motion:
                self.animator.set_options(**motion)
            if "smoothing" in opts:
                self.tracker.set_smoothing(float(opts["smoothing"]))

    # --- control channel (runs on the control thread: only flags and look-ups) ------------------
    def request(self, op: str, args: dict) -> dict:
        fn = getattr(self, f"_op_{op}", None)
        if fn is None:
            from worker.control.server import UnknownOp

            raise UnknownOp(op)
        return fn(args)

    def _op_status(self, args: dict) -> dict:
        return self.status()

    def _op_list_characters(self, args: dict) -> dict:
        return {"characters": self.roster.describe(), "current": self.character}

    def _op_set_character(self, args: dict) -> dict:
        cid = self.roster.resolve(self.character, args.get("character"), args.get("index"), args.get("step"))
        ready = self.roster.get(cid) is not None
        self._switch_requested_at = self.rendered
        self._pending_character = cid
        return {"character": cid, "ready": ready}

    def _op_calibrate(self, args: dict) -> dict:
        self._calibrate = True
        return {"calibrating": True}

    def _op_pause(self, args: dict) -> dict:
        self.paused = True
        return {"paused": True}

    def _op_resume(self, args: dict) -> dict:
        self.paused = False
        return {"paused": False}

    def _op_set_options(self, args: dict) -> dict:
        opts = args.get("options")
        if not isinstance(opts, dict) or not opts:
            raise UserError("set_options needs 'options': a mapping of settings")
        changes = {}
        for key, value in opts.items():
            if key.startswith("outputs."):  # "outputs.nut": false switches that output off
                if not isinstance(value, bool):
                    raise UserError(f"option {key!r} must be true or false")
                self.fanout.set_enabled(key.split(".", 1)[1], value)
                changes[key] = value
                continue
            if key not in LIVE_KEYS:
                raise UserError(f"option {key!r} cannot change live (live: {', '.join(sorted(LIVE_KEYS))}, "
                                f"outputs.<name>)")
            set_key(self.config, key, value)  # validates, names the key on error
            changes[key] = value
        with self._opts_lock:  # outputs.* took effect above; the rest at the next frame
            self._pending_options.update({k: v for k, v in changes.items() if not k.startswith("outputs.")})
        return {"options": changes}

    def _op_reload_characters(self, args: dict) -> dict:
        self.roster.reload()
        return {"reloading": True}

    def _op_shutdown(self, args: dict) -> dict:
        self.stop_event.set()
        return {"stopping": True}

    # --- reporting ------------------------------------------------------------------------------
    def status(self) -> dict:
        outs = {s["name"]: s for s in self.fanout.stats()}
        lat = [o.get("latency_ms_p95") for o in outs.values()]
        lat = [x for x in lat if x is not None]
        return {
            "running": not self.stop_event.is_set(),
            "uptime_s": round(time.monotonic() - self.started_at, 1),
            "fps": round(self.render_rate.rate(), 2),
            # capture -> delivery, worst output; "pipeline" is capture -> handed to the outputs
            "latency_ms": {"p95": max(lat) if lat else None, "pipeline": self.timers["total"].snapshot()},
            "stages_ms": {k: t.snapshot() for k, t in self.timers.items() if k != "total"},
            "frames": {"captured": self.captured, "tracked": self.tracked, "rendered": self.rendered,
                       "with_face": self.faces},
            "drops": {"track": self._to_track.drops, "render": self._to_render.drops,
                      **{name: o.get("dropped", 0) for name, o in outs.items()}},
            "character": self.character,
            "last_switch": self.last_switch,
            "characters": len(self.roster.ids()),
            "tracking": self.tracking_state,
            "paused": self.paused,
            "camera": self.camera,
            "outputs": outs,
            "warnings": list(self.warnings)[-5:],
        }
