"""Assemble the live worker from a config: characters, tracker, animator, outputs, pipeline, control.

`LiveWorker` is what `stream-animator run` runs: it builds every part from the typed config
(`worker.config.Settings`), handing each part only its own section,
wires the roster's change callback and the pipeline's events to the control server, and stops
everything in order. With `voice.mic` set, a `VoiceInput` (microphone or file) runs beside the
camera and its mouth goes into every frame (`voice.lipsync`); `camera.source: none` runs with the
voice alone.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from worker import performance
from worker.capture import FrameSource, open_source
from worker.capture.none import is_none
from worker.characters.cache import open_cache
from worker.characters.library import CharacterLibrary
from worker.characters.preprocess import PreprocessSettings
from worker.characters.roster import Roster
from worker.config import Settings
from worker.control import protocol as P
from worker.control.metrics import ProcessMetrics
from worker.control.server import ControlServer
from worker.errors import UserError
from worker.live.animator import Animator
from worker.live.pipeline import Pipeline
from worker.live.startup import STARTUP
from worker.live.tracker_loader import TrackerLoader
from worker.output.fanout import OutputFanout
from worker.output.registry import create_output
from worker.track.mediapipe_tracker import FaceTracker

if TYPE_CHECKING:
    from worker.audio.stage import VoiceInput

log = logging.getLogger(__name__)


class LiveWorker:
    """Everything `stream-animator run` runs. `source_factory` replaces the configured camera."""

    def __init__(
        self,
        settings: Settings,
        token: str,
        source_factory: Callable[[], FrameSource] | None = None,
        frame_port: int | None = None,
    ) -> None:
        self.settings = settings
        self.token = token
        self.metrics = ProcessMetrics()
        self.no_camera = source_factory is None and is_none(settings.camera.source)
        self.voice: VoiceInput | None = None
        self.voice_warning: str | None = None
        if settings.voice.mic is not None:
            self.voice = self._voice()  # before anything heavy: a missing mic with no camera stops here
        elif self.no_camera:
            raise UserError("camera.source none needs a voice: give --mic (a microphone or an audio/video file)")
        # Everything that can be checked is checked before any work, in this order: the camera
        # source (a file must be a video), the outputs (at least one must work), the cache.
        self._check_renderer()
        camera = source_factory or self._camera_factory()
        self.fanout = self._outputs(frame_port)
        STARTUP.mark("outputs listening")
        try:
            self._assemble(camera)
        except BaseException:
            self.fanout.close()
            raise

    def _assemble(self, camera: Callable[[], FrameSource]) -> None:
        s = self.settings
        self.animator = Animator(
            s.renderer.name,
            size=s.characters.size,
            options=s.motion.retarget_options(s.voice.lipsync if self.voice is not None else "off"),
            renderer_opts=s.renderer.options(),
        )
        log.info("renderer: %s", self.animator.renderer.selection)  # which one draws, and why
        STARTUP.mark("renderer ready")
        try:
            self.roster = self._characters()
            first = self._first_character()
        except BaseException:
            self.animator.close()
            raise
        assets = self.roster.get(first)
        assert assets is not None  # `_first_character` returns a loaded one
        self.animator.set_character(assets)
        STARTUP.mark("first character loaded")
        perf = performance.profile(s.performance)
        performance.apply_threads(perf)
        # MediaPipe loads beside the running pipeline: the character idles on stream meanwhile
        self.tracker = TrackerLoader(
            lambda: FaceTracker(track_every=perf.track_every),
            on_ready=lambda: STARTUP.mark("tracker ready"),
            start=False,
        )
        self.tracker.set_smoothing(s.smoothing)
        self.pipeline = Pipeline(
            camera,
            self.roster,
            self.animator,
            self.tracker,
            self.fanout,
            process=self.metrics.snapshot,
            voice=self.voice,
            lipsync=self.animator.options.lipsync,
            idle_fps=s.camera.fps,
        )
        for w in self.fanout.warnings:
            self.pipeline.stages.warn(f"output {w}", quiet=True)  # `run` prints them, once
        if self.voice_warning:
            self.pipeline.warn(self.voice_warning)
        self.pipeline.stages.note_character(first, assets)
        # the tracker starts loading once the first (idle) frame is out, or after a second at the latest
        self.pipeline.stages.on_first_frame = self.tracker.start
        self.first = first
        self.server = ControlServer(self.pipeline.request, self.token, port=s.control.port)
        self.pipeline.publish = self.server.publish
        # the ws output (worker.web, a layer above this one) serves the same API: hand it the ops,
        # the stages (for `say` and `render`) and the events
        web: list[Any] = [o for o in self.fanout.outputs if hasattr(o, "attach")]
        for o in web:
            o.attach(self.pipeline.request, self.pipeline.stages)
        if web:
            listeners = [self.server.publish, *(o.publish for o in web)]

            def publish(event: dict) -> None:
                for listener in listeners:
                    listener(event)

            self.pipeline.publish = publish
        self.roster.on_change = self.pipeline.characters_changed

    def _check_renderer(self) -> None:
        """A renderer that cannot run here (no weights, no GPU) is the first thing said, as the
        renderer itself would say it: cheaper than anything else to find out."""
        from worker.render.registry import RENDERERS

        entry = RENDERERS.get(self.settings.renderer.name)
        if entry is not None:
            ok, reason = entry.availability()
            if not ok and not self.settings.renderer.unverified:  # unverified: the renderer labels it
                raise UserError(f"renderer.name: {reason}")

    def _outputs(self, frame_port: int | None) -> OutputFanout:
        """Create and start the configured outputs; `UserError` (one line per output) when none works."""
        outputs = []
        for oc in self.settings.outputs:
            oc = dict(oc)
            if oc.get("type") == "obs":
                oc.setdefault("token", self.token)
                if "port" not in oc and frame_port is not None:
                    oc["port"] = frame_port
            outputs.append(create_output(oc))
        fanout = OutputFanout(outputs).start(strict=False)
        if outputs and not fanout.outputs:
            fanout.close()
            if len(fanout.warnings) == 1:
                raise UserError(f"no output can run: {fanout.warnings[0]}")
            raise UserError("no output can run:\n" + "\n".join(f"  {w}" for w in fanout.warnings))
        return fanout

    # --- assembly ---------------------------------------------------------------------------------
    def _characters(self) -> Roster:
        c = self.settings.characters
        cache = open_cache(self.settings.cache_dir)  # checked writable before any character loads
        return Roster(
            CharacterLibrary(
                Path(c.folder).expanduser(),
                cache,
                PreprocessSettings(size=c.size),
                preparer=self.animator.renderer,
            )
        )  # its arrays cached per character

    def _first_character(self) -> str:
        """Load the starting character now (the stream needs a face); the rest load in the background."""
        folder = self.roster.library.folder
        ids = self.roster.scan_now()
        if not ids:
            raise UserError(f"{folder}: no character images (PNG, JPEG, WebP)")
        wanted = self.settings.characters.current
        order = ids
        if wanted is not None:
            try:
                order = [self.roster.resolve(None, character=wanted)] + ids
            except UserError:
                raise UserError(f"characters.current: {wanted!r} is not in {folder}") from None
        for cid in order:
            r = self.roster.load_now(cid)
            if r.assets is not None:
                return cid
            log.warning("%s", r.error)
        raise UserError(f"{folder}: no usable character (see the log for each image)")

    def _voice(self) -> VoiceInput | None:
        """The voice input of `voice.mic` (started by `start`); a microphone that cannot be found
        is one line: an error when it is the only input, else a warning and the camera alone."""
        # imported only with a voice: PyAV and the voice analysis cost a worker without one start-up time
        from worker.audio.sources import open_source as open_audio
        from worker.audio.stage import VoiceInput

        v = self.settings.voice
        settings, profile = v.analysis()
        try:
            return VoiceInput(open_audio(str(v.mic)), settings, profile)
        except UserError as e:
            self._voice_failed(e)
            return None

    def _voice_failed(self, e: UserError) -> None:
        if self.no_camera:
            raise e
        self.voice_warning = f"voice off: {e}"  # the pipeline's warning (the log and the status)

    def _start_voice(self) -> None:
        """Open the microphone (or start the file's clock); one that refuses to open is one line."""
        if self.voice is None:
            return
        try:
            self.voice.start()
        except UserError as e:
            self.voice = self.pipeline.stages.voice = None
            if self.no_camera:  # the only input: the caller reports the one line
                self.fanout.close()
                self.tracker.close()
                self.animator.close()
                raise
            self.pipeline.warn(f"voice off: {e}")
            return
        log.info("voice: %s (lipsync %s)", self.voice.status()["mic"], self.settings.voice.lipsync)

    def _camera_factory(self) -> Callable[[], FrameSource]:
        cam = self.settings.camera
        spec = cam.source
        if is_none(spec):
            return lambda: open_source("none", fps=cam.fps)
        if not spec.lower().startswith("webcam"):
            # A file is checked now: something that is not a video is an error at start, never
            # a camera to retry forever. (A webcam that is missing is retried while the character idles.)
            open_source(spec).close()

        def make() -> FrameSource:
            return open_source(
                spec,
                width=cam.width,
                height=cam.height,
                fps=cam.fps,
                mjpeg=cam.mjpeg,
                loop=True,
                realtime=True,
            )

        return make

    # --- lifecycle --------------------------------------------------------------------------------
    @property
    def control_port(self) -> int:
        return self.server.port

    @property
    def frame_port(self) -> int | None:
        return next((getattr(o, "port", None) for o in self.fanout.outputs if o.name == "obs"), None)

    @property
    def browser_source_url(self) -> str | None:
        """The Browser Source page's address when the ws output runs."""
        ws: Any = next((o for o in self.fanout.outputs if o.name == "ws"), None)
        return ws.source_url() if ws is not None else None

    def ready_line(self) -> bytes:
        extra = {"browser_source": self.browser_source_url} if self.browser_source_url else {}
        return P.ready_line(self.control_port, self.frame_port, **extra)

    def start(self) -> LiveWorker:
        self._start_voice()
        self.server.start()
        self.roster.start()
        self.pipeline.start(self.first)
        self._tracker_timer = threading.Timer(1.0, self.tracker.start)
        self._tracker_timer.daemon = True
        self._tracker_timer.start()
        return self

    def stop(self) -> P.Status:
        """Stop everything; returns the final status."""
        self.roster.on_change = None
        timer = getattr(self, "_tracker_timer", None)
        if timer is not None:
            timer.cancel()
        self.pipeline.stop()
        if self.voice is not None:
            self.voice.stop()
        status = self.pipeline.status()
        self.server.stop()
        self.fanout.close()
        self.roster.stop()
        self.tracker.close()
        self.animator.close()
        return status
