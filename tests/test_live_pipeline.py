"""The live pipeline with fake stages (no camera, no MediaPipe, no renderer): fast checks of the
threads, the newest-wins hand-overs, the op table, the events and the status report. The real
parts end to end are in test_live.py."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest

from worker.capture import Frame, FrameSource, NoCamera
from worker.control import protocol as P
from worker.control.server import UnknownOp
from worker.errors import UserError
from worker.live.pipeline import Pipeline
from worker.live.records import RenderInput
from worker.output.base import Output
from worker.output.fanout import OutputFanout
from worker.retarget.mouth_signal import MouthSignal
from worker.slot import LatestSlot
from worker.track.face_state import FaceState


class FakeSource(FrameSource):
    """`n` frames at `fps`, each a tiny image whose first pixel is its number (mod 256)."""

    name = "fake"
    size = (8, 8)

    def __init__(self, n: int, fps: float = 200.0) -> None:
        self.n, self.fps, self.i = n, fps, 0

    def read(self) -> Frame | None:
        if self.i >= self.n:
            return None
        time.sleep(1.0 / self.fps)
        img = np.full((8, 8, 3), self.i % 256, np.uint8)
        self.i += 1
        return Frame(img, self.i - 1, time.monotonic())


class FakeTracker:
    """A face in every frame whose number is even; `calibrate` takes 3 frames."""

    def __init__(self, delay: float = 0.0) -> None:
        self.neutral: FaceState | None = FaceState(found=True)
        self.delay = delay
        self.calibrating_left = 0
        self.held = 0
        self.smoothing = 1.0

    @property
    def calibrating(self) -> bool:
        return self.calibrating_left > 0

    def process(self, image: np.ndarray, timestamp: float) -> FaceState:
        time.sleep(self.delay)
        self.calibrating_left = max(0, self.calibrating_left - 1)
        return FaceState(found=int(image[0, 0, 0]) % 2 == 0, timestamp=timestamp)

    def hold(self, timestamp: float) -> FaceState:
        self.held += 1
        return FaceState(found=False, timestamp=timestamp)

    def lost(self, timestamp: float) -> FaceState:
        return FaceState(found=False, timestamp=timestamp)

    def calibrate(self) -> None:
        self.calibrating_left = 3

    def set_smoothing(self, amount: float) -> None:
        self.smoothing = amount


class FakeAnimator:
    """Draws a 4x4 RGBA frame whose red channel is the character's number; `delay` per frame."""

    def __init__(self, delay: float = 0.0) -> None:
        self.assets: Any = None
        self.delay = delay
        self.last_ms = {"retarget": 0.0, "render": 0.0}
        self.options: dict[str, Any] = {}
        self.inputs: list[tuple[FaceState | None, FaceState | None]] = []
        self.mouths: list[MouthSignal | None] = []
        self.frames: list[Any] = []
        self.calibrations = 0

    def set_character(self, assets: Any) -> None:
        self.assets = assets

    def set_options(self, **changes: Any) -> None:
        self.options.update(changes)

    def calibrate(self) -> None:
        self.calibrations += 1

    def describe_renderer(self) -> tuple[str, str]:
        return "fake", "test double"

    def animate(
        self,
        face: FaceState | None,
        neutral: FaceState | None,
        mouth: MouthSignal | None = None,
        frame: Any = None,
    ) -> np.ndarray:
        self.inputs.append((face, neutral))
        self.mouths.append(mouth)
        self.frames.append(frame)
        time.sleep(self.delay)
        self.last_ms = {"retarget": 0.1, "render": self.delay * 1000.0}
        rgba = np.zeros((4, 4, 4), np.uint8)
        rgba[..., 0] = self.assets
        rgba[..., 3] = 255
        return rgba


class FakeAssets(int):
    """A character's assets reduced to a number the fake animator paints, with the (empty) meta a real one has."""

    meta: dict = {}


class FakeRoster:
    """Characters a.png, b.png, c.png (assets 1, 2, 3); `loading` ones are not ready yet."""

    def __init__(self) -> None:
        self.assets = {"a.png": FakeAssets(1), "b.png": FakeAssets(2), "c.png": FakeAssets(3)}
        self.loading: set[str] = set()
        self.reloads = 0

    def ids(self) -> list[str]:
        return sorted(self.assets)

    def get(self, cid: str) -> Any:
        return None if cid in self.loading else self.assets.get(cid)

    def describe(self) -> list[dict]:
        return [
            {"id": c, "index": i + 1, "name": c[:-4], "state": "loading" if c in self.loading else "ready"}
            for i, c in enumerate(self.ids())
        ]

    def resolve(
        self, current: str | None, character: str | None = None, index: int | None = None, step: int | None = None
    ) -> str:
        ids = self.ids()
        if character is not None:
            if character not in ids:
                raise UserError(f"unknown character {character!r}")
            return character
        if index is not None:
            return ids[index - 1]
        pos = ids.index(current) if current in ids else -1
        return ids[(pos + (step or 0)) % len(ids)]

    def reload(self) -> None:
        self.reloads += 1


class Recorder(Output):
    """Keeps what it was sent; `delay` makes it a slow output."""

    realtime = True

    def __init__(self, name: str, delay: float = 0.0) -> None:
        super().__init__()
        self.name, self.delay = name, delay
        self.frames: list[tuple[int, int]] = []  # (seq, character number)

    def send(self, rgba: np.ndarray, seq: int, capture_ts: float) -> None:
        time.sleep(self.delay)
        self.frames.append((seq, int(rgba[0, 0, 0])))
        self.metrics.delivered_frame(capture_ts)


def wait_for(pred, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.01)
    return None


class FakeVoice:
    """A voice whose mouth opens a little more with every hop read (openness = reads / 1000)."""

    def __init__(self) -> None:
        self.muted = False
        self.reads = 0

    def latest(self) -> MouthSignal:
        self.reads += 1
        return MouthSignal(0.0 if self.muted else min(self.reads / 1000, 1.0), voiced=not self.muted, timestamp=0.0)

    def status(self) -> dict[str, Any]:
        return {"mic": "fake", "muted": self.muted, "voiced": not self.muted}


class Rig:
    def __init__(
        self,
        n: int = 100_000,
        fps: float = 200.0,
        track_delay: float = 0.0,
        render_delay: float = 0.0,
        outputs: list[Output] | None = None,
        voice: FakeVoice | None = None,
        source=None,
    ) -> None:
        self.tracker = FakeTracker(track_delay)
        self.animator = FakeAnimator(render_delay)
        self.roster = FakeRoster()
        self.outputs = outputs if outputs is not None else [Recorder("rec")]
        self.fanout = OutputFanout(self.outputs).start()
        self.events: list[dict] = []
        self.pipeline = Pipeline(
            source or (lambda: FakeSource(n, fps)),
            self.roster,
            self.animator,
            self.tracker,
            self.fanout,
            publish=self.events.append,
            process=lambda: {"rss_mb": 1.0},
            voice=voice,
            lipsync="assist" if voice is not None else "off",
        )
        self.animator.set_character(FakeAssets(1))

    def __enter__(self) -> Rig:
        self.pipeline.start("a.png")
        return self

    def __exit__(self, *exc) -> None:
        self.pipeline.stop()
        self.fanout.close()


def test_frames_flow_in_order_and_the_status_fits_the_protocol():
    with Rig(n=60) as rig:
        assert wait_for(lambda: rig.pipeline.stop_event.is_set(), 10), "a source that ended stops the pipeline"
    st = rig.pipeline.status()
    frames = rig.outputs[0].frames
    seqs = [s for s, _ in frames]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs) and len(seqs) >= 30
    # every rendered frame reached the output or was replaced by a newer one there (a realtime
    # output on a busy machine: counted as its drop)
    assert st.frames["captured"] == 60 and st.frames["rendered"] == len(seqs) + st.drops.get("rec", 0)
    assert st.frames["with_face"] > 0 and st.character == "a.png" and not st.running
    data = st.to_dict()
    assert set(data) == set(P.STATUS_FIELDS)
    assert P.Status.from_dict(P.decode(P.encode(data))) == st  # survives the wire
    # the render stage got the record: the tracker's face and the neutral it measured against
    face, neutral = rig.animator.inputs[-1]
    assert isinstance(face, FaceState) and neutral is rig.tracker.neutral


def test_a_slow_renderer_drops_frames_instead_of_adding_latency():
    with Rig(fps=400, render_delay=0.02) as rig:
        assert wait_for(lambda: rig.pipeline.stages.rendered >= 25, 10)
        st = rig.pipeline.status()
    assert st.drops["render"] > st.frames["rendered"]  # most tracked frames were replaced, not queued
    # capture -> handed to the outputs stays about one render long (20 ms; a queue would have grown
    # to ~500 ms by now), with room for a busy machine
    assert st.latency_ms["pipeline"]["p95"] < 300


def test_a_slow_output_does_not_hold_up_the_other():
    fast, slow = Recorder("fast"), Recorder("slow", delay=0.05)
    with Rig(fps=300, outputs=[fast, slow]) as rig:
        assert wait_for(lambda: len(fast.frames) >= 100, 10)
        st = rig.pipeline.status()
    assert len(slow.frames) < len(fast.frames) / 3
    assert st.drops["slow"] > 0 and st.drops["fast"] < st.drops["slow"] / 3


def test_switch_waits_for_a_loading_character_then_announces_itself():
    with Rig() as rig:
        p = rig.pipeline
        rig.roster.loading.add("b.png")
        assert p.request("set_character", {"step": 1}) == {"character": "b.png", "ready": False}
        time.sleep(0.2)
        assert p.character == "a.png" and not rig.events  # the old one keeps going meanwhile
        rig.roster.loading.clear()
        assert wait_for(lambda: p.character == "b.png")
        n = len(rig.outputs[0].frames)
        assert wait_for(lambda: len(rig.outputs[0].frames) > n + 5)
        assert rig.outputs[0].frames[-1][1] == 2  # drawn with b's assets
        ev = rig.events[-1]
        assert ev["event"] == "character" and P.CharacterSwitch.from_dict(ev["data"]).character == "b.png"
        assert p.status().last_switch == P.CharacterSwitch.from_dict(ev["data"])
        # an index counts from 1, as the rows say
        rows = P.CharacterList.from_dict(p.request("list_characters", {}))
        assert [r.index for r in rows.characters] == [1, 2, 3] and rows.current == "b.png"
        assert p.request("set_character", {"index": 3})["character"] == "c.png"
        assert wait_for(lambda: p.character == "c.png")
        # a changed folder is announced with the new list
        p.characters_changed("added", "c.png")
        assert rig.events[-1]["event"] == "characters"
        assert P.CharacterList.from_dict(rig.events[-1]["data"]).current == "c.png"


def test_pause_calibrate_and_live_options_reach_the_stages():
    with Rig() as rig:
        p = rig.pipeline
        assert wait_for(lambda: p.status().tracking == "tracking" or p.status().tracking == "lost")
        p.request("calibrate", {})
        assert wait_for(lambda: rig.tracker.calibrating_left == 0 and p.status().tracking != "calibrating")
        assert wait_for(lambda: rig.animator.calibrations == 1)  # the renderer's own neutral too, once
        # the captured frame travels with its face to the renderer (liveportrait crops the face from it)
        assert all(f is not None and f.shape == (8, 8, 3) for f in rig.animator.frames[-5:])
        p.request("pause", {})
        assert wait_for(lambda: p.status().tracking == "paused") and wait_for(lambda: rig.tracker.held > 5)
        assert p.status().paused
        # while paused the face is held, and so is the frame it was tracked on (not the live image)
        n = len(rig.animator.frames)
        assert wait_for(lambda: len(rig.animator.frames) > n + 5)
        held = rig.animator.frames[n + 1 :]
        assert all(f is held[0] for f in held) and rig.animator.calibrations == 1
        p.request("resume", {})
        assert wait_for(lambda: p.status().tracking != "paused")
        res = p.request("set_options", {"options": {"motion.expression_strength": 1.5, "smoothing": 0.5}})
        assert res == {"options": {"motion.expression_strength": 1.5, "smoothing": 0.5}}
        assert wait_for(lambda: rig.animator.options == {"expression_strength": 1.5} and rig.tracker.smoothing == 0.5)
        with pytest.raises(UserError, match="cannot change live"):
            p.request("set_options", {"options": {"camera.fps": 60}})
        with pytest.raises(UserError, match="motion.head_strength"):
            p.request("set_options", {"options": {"motion.head_strength": 9}})
        p.request("set_options", {"options": {"outputs.rec": False}})
        assert p.status().outputs["rec"]["enabled"] is False
        with pytest.raises(UnknownOp):
            p.request("fly", {})
        assert p.request("reload_characters", {}) == {"reloading": True} and rig.roster.reloads == 1
        assert p.request("shutdown", {}) == {"stopping": True} and p.stop_event.is_set()


def test_a_crashing_stage_stops_the_pipeline_with_a_warning():
    with Rig() as rig:

        def boom(face, neutral, mouth=None, frame=None):
            raise RuntimeError("renderer exploded")

        rig.animator.animate = boom  # type: ignore[method-assign]
        assert wait_for(rig.pipeline.stop_event.is_set)
    assert any("stage render crashed: RuntimeError: renderer exploded" in w for w in rig.pipeline.status().warnings)


def test_latest_slot_newest_wins_and_wait_mode():
    slot: LatestSlot[int] = LatestSlot()
    assert slot.put(1) is False and slot.put(2) is True and slot.drops == 1
    assert slot.take(0) == 2 and slot.take(0.01) is None and slot.idle()
    # wait=True: the producer waits until the consumer has finished the previous item
    slot.put(3)
    got: list[int] = []

    def consume() -> None:
        while (v := slot.take(1.0)) is not None:
            time.sleep(0.02)
            got.append(v)

    t = threading.Thread(target=consume)
    t.start()
    for i in range(4, 8):
        slot.put(i, wait=True)
    assert wait_for(slot.idle)
    slot.close()
    t.join(2)
    assert got == [3, 4, 5, 6, 7] and slot.drops == 1


def test_render_input_carries_the_voice_mouth():
    r = RenderInput(FaceState(found=True), None)
    assert r.mouth is None
    assert RenderInput(None, None, MouthSignal(0.6, voiced=True)).mouth.openness == 0.6  # type: ignore[union-attr]


def test_the_voice_mouth_reaches_every_frame_and_mute_and_lipsync_work_live():
    voice = FakeVoice()
    with Rig(voice=voice) as rig:
        p = rig.pipeline
        assert wait_for(lambda: len(rig.animator.mouths) > 20)
        opens = [m.openness for m in list(rig.animator.mouths)[:20] if m is not None]
        assert len(opens) == 20 and opens == sorted(opens) and opens[-1] > opens[0]  # read afresh per frame
        st = p.status()
        assert st.voice == {"mic": "fake", "muted": False, "voiced": True, "lipsync": "assist"}
        assert set(st.to_dict()) == set(P.STATUS_FIELDS)
        assert p.request("mute", {}) == {"muted": True} and voice.muted
        n = len(rig.animator.mouths)
        assert wait_for(lambda: len(rig.animator.mouths) > n + 5)
        assert rig.animator.mouths[-1].openness == 0.0 and p.status().voice["muted"] is True  # type: ignore[union-attr]
        assert p.request("unmute", {}) == {"muted": False} and not voice.muted
        p.request("set_options", {"options": {"voice.lipsync": "always"}})
        assert wait_for(lambda: rig.animator.options.get("lipsync") == "always")
        assert p.status().voice["lipsync"] == "always"
        with pytest.raises(UserError, match="voice.lipsync"):
            p.request("set_options", {"options": {"voice.lipsync": "sometimes"}})
    with Rig() as rig:  # no voice: the mouth is None and mute says why it cannot
        assert wait_for(lambda: len(rig.animator.mouths) > 5)
        assert rig.animator.mouths[-1] is None and rig.pipeline.status().voice == {}
        with pytest.raises(UserError, match="no voice input"):
            rig.pipeline.request("mute", {})


def test_no_camera_paces_empty_frames_and_never_calls_the_tracker():
    with Rig(voice=FakeVoice(), source=lambda: NoCamera(fps=50)) as rig:
        t0 = time.monotonic()
        time.sleep(1.0)
        st = rig.pipeline.status()
        elapsed = time.monotonic() - t0
    # paced at the configured rate: never ahead of it (does not depend on speed), some frames at all
    assert 15 <= st.frames["captured"] <= 50 * elapsed + 5, (st.frames, elapsed)
    assert st.tracking == "voice only" and st.frames["with_face"] == 0 and st.camera["name"] == "none"
    face, neutral = rig.animator.inputs[-1]
    assert face is not None and not face.found and face.lost_blend == 1.0 and face.timestamp > 0
    assert rig.tracker.held == 0
