"""The stage threads: capture -> track -> (retarget + render) -> outputs.

Stages are joined by `LatestSlot`s, so a stage that falls behind skips frames (counted as
drops) instead of building up latency. What the control channel asks for arrives as flags in
`Controls`, which the stage threads pick up at their next frame: the control thread never waits
on the stream and the stream never waits on a client. A stage that crashes stops the pipeline
with a warning instead of freezing the stream.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from worker.capture import CaptureError, FrameSource
from worker.characters.face_kind import not_human_status
from worker.control import protocol as P
from worker.errors import UserError, without_errno
from worker.live.ports import Animator, Characters, Fanout, Tracker, Voice
from worker.live.records import Captured, RenderInput, Tracked
from worker.live.startup import STARTUP
from worker.output.metrics import RateMeter, RollingPercentiles
from worker.slot import LatestSlot
from worker.track.face_state import FaceState

log = logging.getLogger(__name__)

STAGES = ("capture", "track", "retarget", "render", "total")
STARTING_FPS = 15.0  # camera frames drawn while the face tracker loads (the character idling)


class StageTimer:
    def __init__(self) -> None:
        self.ms = RollingPercentiles(300)

    def add(self, seconds: float) -> None:
        self.ms.add(seconds * 1000.0)

    def snapshot(self) -> dict[str, float | None]:
        p50, p95 = self.ms.percentiles(50, 95)
        return {"p50": _r(p50), "p95": _r(p95)}


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 2)


class Controls:
    """Requests from the control thread, taken by the stage threads at their next frame."""

    def __init__(self) -> None:
        self.paused = False
        self.calibrate = False  # taken by the track stage (the tracker's neutral)
        self.calibrate_render = False  # taken by the render stage (a renderer's own neutral)
        self._lock = threading.Lock()
        self._character: str | None = None
        self._requested_at = 0
        self._options: dict[str, Any] = {}

    def request_character(self, cid: str, rendered: int) -> None:
        with self._lock:
            self._character, self._requested_at = cid, rendered

    def pending_character(self) -> tuple[str | None, int]:
        with self._lock:
            return self._character, self._requested_at

    def character_done(self, cid: str) -> None:
        with self._lock:
            if self._character == cid:  # a newer request stays pending
                self._character = None

    def add_options(self, options: dict[str, Any]) -> None:
        with self._lock:
            self._options.update(options)

    def take_options(self) -> dict[str, Any]:
        with self._lock:
            opts, self._options = self._options, {}
            return opts


class StageThreads:
    """Runs the three stage loops and keeps their counters, timers and current character."""

    def __init__(
        self,
        open_source: Callable[[], FrameSource],
        tracker: Tracker,
        animator: Animator,
        fanout: Fanout,
        roster: Characters,
        controls: Controls,
        on_switch: Callable[[P.CharacterSwitch], None] | None = None,
        idle_fps: float = 30.0,
        voice: Voice | None = None,
        lipsync: str = "off",
    ) -> None:
        self._open_source = open_source
        self.idle_fps = idle_fps  # frames per second drawn while the camera is missing
        self.voice = voice
        self.lipsync = lipsync  # the voice's share of the mouth: off | assist | always
        self.tracker = tracker
        self.animator = animator
        self.fanout = fanout
        self.roster = roster
        self.controls = controls
        self.on_switch = on_switch
        self.stop_event = threading.Event()
        self.to_track: LatestSlot[Captured] = LatestSlot()
        self.to_render: LatestSlot[Tracked] = LatestSlot()
        self.timers = {name: StageTimer() for name in STAGES}
        self.captured = 0
        self.tracked = 0
        self.rendered = 0
        self.faces = 0
        self.render_rate = RateMeter(2.0)
        self.tracking_state = "starting"
        self.camera: dict[str, Any] = {}
        self.camera_issue: str | None = None  # why there is no picture (the character idles meanwhile)
        self.character: str | None = None
        self.last_switch: P.CharacterSwitch | None = None
        self.warnings: deque[str] = deque(maxlen=20)
        self.on_first_frame: Callable[[], None] | None = None  # called once, when the first frame is out
        self._threads: list[threading.Thread] = []

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self, character: str | None) -> None:
        self.character = character
        for name, fn in (("capture", self._capture_loop), ("track", self._track_loop), ("render", self._render_loop)):
            t = threading.Thread(target=self._guard(fn, name), name=name, daemon=True)
            self._threads.append(t)
            t.start()

    def stop(self) -> None:
        self.stop_event.set()
        self.to_track.close()
        self.to_render.close()
        for t in self._threads:
            t.join(5)

    def warn(self, message: str, quiet: bool = False) -> None:
        """Add to the status's warnings and log it (`quiet`: the caller has told the user already)."""
        message = without_errno(message)
        if not self.warnings or self.warnings[-1] != message:
            self.warnings.append(message)
        (log.info if quiet else log.warning)("%s", message)

    def note_character(self, cid: str, assets: Any) -> None:
        """Warn (status, so the OBS script shows it) when the character on stream needs marks."""
        line = not_human_status(cid, list(assets.meta.get("warnings", [])))
        if line:
            self.warn(line)

    def _guard(self, fn: Callable[[], None], name: str) -> Callable[[], None]:
        def run() -> None:
            try:
                fn()
            except Exception as e:  # a dead stage would freeze the stream: stop cleanly instead
                log.exception("stage %s crashed", name)
                self.warn(f"stage {name} crashed: {type(e).__name__}: {e}")
                self.stop_event.set()

        return run

    # --- capture --------------------------------------------------------------------------------
    def _capture_loop(self) -> None:
        source: FrameSource | None = None
        backoff = 0.5
        seq = 0
        lost = ""  # why a camera that was delivering stopped (reconnecting), "" if it never did
        try:
            while not self.stop_event.is_set():
                if source is None:
                    try:
                        source, seq = self._open_while_idling(seq)
                    except (CaptureError, UserError) as e:
                        why = " ".join(str(e).split())
                        self.camera_issue = (
                            f"camera lost: {lost}; reconnecting" if lost else f"no camera: {why}; retrying"
                        )
                        self.warn(f"camera unavailable: {why}; retrying in {backoff:g} s")
                        seq = self._idle_frames(seq, backoff)
                        backoff = min(backoff * 2, 5.0)
                        continue
                    if source is None:  # stopped while the camera was opening
                        break
                    backoff = 0.5
                    self.camera_issue, lost = None, ""
                    self.camera = {
                        "name": source.name,
                        "width": source.size[0],
                        "height": source.size[1],
                        "fps": round(float(source.fps), 2),
                    }
                    log.info("capture: %s %dx%d at %.1f fps", source.name, *source.size, source.fps)
                    STARTUP.mark("camera open")
                t0 = time.perf_counter()
                try:
                    frame = source.read()
                except (CaptureError, UserError, OSError) as e:
                    lost = " ".join(str(e).split())
                    self.camera_issue = f"camera lost: {lost}; reconnecting"
                    self.warn(f"camera lost: {lost}; reconnecting")
                    source.close()
                    source = None
                    continue
                if frame is None:  # a file that does not loop has ended
                    log.info("capture: end of %s", source.name)
                    self.stop_event.set()
                    break
                self.timers["capture"].add(time.perf_counter() - t0)
                if not self.captured:
                    STARTUP.mark("first frame captured")
                seq += 1
                self.captured += 1
                self.to_track.put(Captured(seq, frame.image, time.monotonic(), time.time()))
        finally:
            if source is not None:
                source.close()

    def _open_while_idling(self, seq: int) -> tuple[FrameSource | None, int]:
        """Open the camera on a helper thread while idle frames go out: a webcam or a 720p file
        takes a moment to open, and the picture (a restarted worker's first) must not wait for it.
        Returns (the source, or None when stopped meanwhile; the last sequence number)."""
        got: dict[str, Any] = {}

        def opener() -> None:
            try:
                got["source"] = self._open_source()
            except BaseException as e:  # noqa: BLE001 - raised again on the capture thread
                got["error"] = e

        t = threading.Thread(target=opener, name="camera-open", daemon=True)
        t.start()
        period = 1.0 / self.idle_fps
        while t.is_alive() and not self.stop_event.is_set():
            seq += 1
            self.to_track.put(Captured(seq, None, time.monotonic(), time.time()))
            t.join(period)
        if self.stop_event.is_set():
            t.join(5.0)
            if got.get("source") is not None:
                got["source"].close()
            return None, seq
        if "error" in got:
            raise got["error"]
        return got["source"], seq

    def _idle_frames(self, seq: int, seconds: float) -> int:
        """While the camera is missing: image-less frames at the idle rate for `seconds`, so the
        character stays on stream, resting with idle motion and blinks (the face counts as lost)."""
        end = time.monotonic() + seconds
        period = 1.0 / self.idle_fps
        while not self.stop_event.is_set() and time.monotonic() < end:
            seq += 1
            self.to_track.put(Captured(seq, None, time.monotonic(), time.time()))
            self.stop_event.wait(min(period, max(0.0, end - time.monotonic())))
        return seq

    # --- track ----------------------------------------------------------------------------------
    def _track_loop(self) -> None:
        image = None  # the frame the face handed on was tracked on (held while paused, like the face)
        last_resting = -1.0  # when the last frame went out while the tracker was loading
        while not self.stop_event.is_set():
            item = self.to_track.take(0.5)
            if item is None:
                continue
            if self.controls.calibrate:
                self.controls.calibrate = False
                self.tracker.calibrate()
            t0 = time.perf_counter()
            if item.image is None:  # the camera is opening, missing or reconnecting: the face eases to rest
                face = self.tracker.lost(item.mono)
                self.tracking_state = "no camera" if self.camera_issue or self.captured else "starting"
            elif not item.image.size:  # no camera by choice (`--source none`): idle and the voice
                face = FaceState(found=False, timestamp=item.mono, lost_blend=1.0)
                self.tracking_state = "voice only"
            elif not getattr(self.tracker, "ready", True):  # MediaPipe still loading: the character idles
                if item.mono - last_resting < 1.0 / STARTING_FPS:
                    continue  # fewer frames meanwhile: the CPU goes to loading the tracker
                last_resting = item.mono
                face = self.tracker.lost(item.mono)
                self.tracking_state = "starting"
            elif self.controls.paused:
                face = self.tracker.hold(item.mono)
                self.tracking_state = "paused"
            else:
                face = self.tracker.process(item.image, item.mono)
                if image is None:
                    STARTUP.mark("first frame tracked")
                image = item.image
                self.faces += face.found
                self.tracking_state = (
                    "calibrating" if self.tracker.calibrating and face.found else "tracking" if face.found else "lost"
                )
            self.timers["track"].add(time.perf_counter() - t0)
            self.tracked += 1
            # the voice's newest hop, taken now: sound heard up to here shows in this frame
            mouth = self.voice.latest() if self.voice is not None else None
            self.to_render.put(Tracked(item, RenderInput(face, self.tracker.neutral, mouth, frame=image)))

    # --- retarget + render ----------------------------------------------------------------------
    def _render_loop(self) -> None:
        while not self.stop_event.is_set():
            got = self.to_render.take(0.5)
            if got is None:
                continue
            item = got.captured
            self._apply_pending(item.seq)
            if self.animator.assets is None:
                continue  # the first character is still loading
            if self.controls.calibrate_render:
                self.controls.calibrate_render = False
                self.animator.calibrate()
            r = got.render
            rgba = self.animator.animate(r.face, r.neutral, r.mouth, frame=r.frame)
            self.timers["retarget"].add(self.animator.last_ms["retarget"] / 1000.0)
            self.timers["render"].add(self.animator.last_ms["render"] / 1000.0)
            self.fanout.send(rgba, item.seq, item.wall)
            if not self.rendered:
                STARTUP.mark("first frame sent")
                if self.on_first_frame is not None:
                    self.on_first_frame()
            self.timers["total"].add(time.time() - item.wall)
            self.rendered += 1
            self.render_rate.tick()

    def _apply_pending(self, seq: int) -> None:
        cid, requested_at = self.controls.pending_character()
        if cid is not None:
            assets = self.roster.get(cid)
            if assets is not None:  # still loading: stays pending, the old character keeps going
                self.controls.character_done(cid)
                self.animator.set_character(assets)
                self.character = cid
                self.last_switch = P.CharacterSwitch(cid, self.rendered - requested_at, seq)
                log.info("character: %s (from frame %d)", cid, seq)
                self.note_character(cid, assets)
                if self.on_switch is not None:
                    self.on_switch(self.last_switch)
        elif self.animator.assets is None and self.character:
            assets = self.roster.get(self.character)
            if assets is not None:
                self.animator.set_character(assets)
        opts = self.controls.take_options()
        if opts:
            motion = {k.split(".", 1)[1]: v for k, v in opts.items() if k.startswith("motion.")}
            if "voice.lipsync" in opts:
                motion["lipsync"] = self.lipsync = opts["voice.lipsync"]
            if motion:
                self.animator.set_options(**motion)
            if "smoothing" in opts:
                self.tracker.set_smoothing(float(opts["smoothing"]))
