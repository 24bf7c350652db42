"""Offline talking renders: a character says a voice track, head and eyes from a driver or idle.

`TalkingRenderer` prepares the character once (cached assets, renderer, retargeter; a driver
video tracked once) and renders any number of clips from `VoiceClip`s: the voice's samples and
its mouth track, both `.npy` files memory-mapped from the lip-sync cache (`lipsync_package`),
so a batch pays for text to speech, decoding and analysis once per line and never again.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from worker.audio.analysis import MouthAnalyzer, VoiceSettings, load_track, save_track, signal_at
from worker.audio.calibration import VoiceProfile
from worker.audio.clip import TalkingClipWriter, audio_offset_ms
from worker.audio.features import RATE
from worker.characters.assets import CharacterAssets
from worker.errors import UserError
from worker.retarget.retargeter import Retargeter, RetargetOptions
from worker.track.face_state import FaceState

PACKAGE_FORMAT = 1
LOOKAHEAD_MS = 20.0


@dataclass
class VoiceClip:
    """One line to say: 16 kHz samples and the mouth track (both possibly memory-mapped)."""

    samples: np.ndarray
    track: np.ndarray
    label: str = ""
    seconds: dict[str, float] = field(default_factory=dict)  # how long making it took, per stage

    @property
    def duration(self) -> float:
        return len(self.samples) / RATE


def lipsync_package(
    cache_dir: Path,
    label: str,
    key_parts: dict,
    make_samples: Callable[[], np.ndarray],
    settings: VoiceSettings,
    profile: VoiceProfile,
) -> VoiceClip:
    """The voice and mouth track for one line, from the cache or made now and cached.

    The key covers what the line is (text + voice, or the audio file's content), the analysis
    settings, the voice profile and the format version, so any change makes a new entry.
    """
    key_src = json.dumps(
        {
            "v": PACKAGE_FORMAT,
            **key_parts,
            "settings": settings.as_dict(),
            "profile": profile.to_config(),
            "lookahead": LOOKAHEAD_MS,
        },
        sort_keys=True,
    )
    key = hashlib.sha256(key_src.encode()).hexdigest()[:24]
    folder = Path(cache_dir) / "lipsync"
    wav_p, track_p = folder / f"{key}.voice.npy", folder / f"{key}.mouth.npy"
    seconds: dict[str, float] = {}
    if wav_p.is_file() and track_p.is_file():
        t0 = time.perf_counter()
        try:
            samples = np.load(wav_p, mmap_mode="r", allow_pickle=False)
            track = load_track(track_p)
            seconds["load"] = time.perf_counter() - t0
            return VoiceClip(samples, track, label, seconds)
        except (OSError, ValueError, UserError):
            pass  # a damaged entry is rebuilt below
    t0 = time.perf_counter()
    samples = np.asarray(make_samples(), np.float32)
    t1 = time.perf_counter()
    track = MouthAnalyzer(settings, profile).analyze(samples, LOOKAHEAD_MS)
    t2 = time.perf_counter()
    seconds.update(voice=t1 - t0, analysis=t2 - t1)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = wav_p.with_name(wav_p.name + ".tmp.npy")
        np.save(tmp, samples)
        os.replace(tmp, wav_p)
        save_track(track, track_p)
        samples, track = np.load(wav_p, mmap_mode="r"), load_track(track_p)
    except OSError:
        pass  # an unwritable cache only costs the reuse
    return VoiceClip(samples, track, label, seconds)


class TalkingRenderer:
    def __init__(
        self,
        assets: CharacterAssets,
        renderer,
        size: int,
        driver: str | Path | None = None,
        fps: float = 30.0,
        expression_strength: float = 1.0,
    ) -> None:
        self.assets, self.renderer, self.size = assets, renderer, size
        self.driver = Path(driver) if driver else None
        self.fps = fps
        self.options = RetargetOptions(
            lipsync="always", idle=True, auto_blink=self.driver is None, expression_strength=expression_strength
        )
        self._faces: list[FaceState] = []
        self._neutral: FaceState | None = None
        self._source = None
        self._tracker = None
        if self.driver is not None:
            from worker.capture.video import VideoFileSource

            self._source = VideoFileSource(self.driver, loop=True)  # UserError naming the file
            self.fps = self._source.fps
        self.times: dict[str, list[float]] = {k: [] for k in ("track", "retarget", "render", "encode")}

    def _driver_face(self, k: int, t: float) -> tuple[FaceState, FaceState | None]:
        """Driver frame k, tracked once and kept (a batch reuses it), or idle when there is none."""
        if self._source is None:
            return FaceState(found=False, timestamp=t, lost_blend=1.0), None
        while len(self._faces) <= k:
            if self._tracker is None:
                from worker.track.mediapipe_tracker import FaceTracker

                self._tracker = FaceTracker()
            frame = self._source.read()
            if frame is None:
                raise UserError(f"{self.driver}: no frames could be read")
            t0 = time.perf_counter()
            self._faces.append(self._tracker.process(frame.image, frame.timestamp))
            self.times["track"].append(time.perf_counter() - t0)
            self._neutral = self._tracker.neutral
            if len(self._faces) == 30 and not any(f.found for f in self._faces):
                raise UserError(f"{self.driver}: no face found in the driving video's first second")
        return self._faces[k], self._neutral

    def render(
        self, clip: VoiceClip, out: str | Path, background=(0, 177, 64), bar=None, measure_sync: bool = True
    ) -> dict:
        """Write one clip with sound; returns frames, duration, measured audio offset, stage times."""
        n = max(1, math.ceil(clip.duration * self.fps))
        retargeter = Retargeter(self.assets, self.options)  # fresh per clip: blinks and blends start over
        writer = TalkingClipWriter(out, self.fps, self.size, background)
        ok = False
        t_start = time.perf_counter()
        try:
            writer.set_audio(np.asarray(clip.samples), RATE)
            for k in range(n):
                t = k / self.fps
                face, neutral = self._driver_face(k, t)
                if self._source is not None:
                    face = _at_time(face, t)
                t0 = time.perf_counter()
                pose = retargeter.retarget(face, neutral, signal_at(clip.track, t))
                t1 = time.perf_counter()
                rgba = self.renderer.render(self.assets, pose)
                t2 = time.perf_counter()
                writer.write(rgba)
                t3 = time.perf_counter()
                self.times["retarget"].append(t1 - t0)
                self.times["render"].append(t2 - t1)
                self.times["encode"].append(t3 - t2)
                if bar is not None:
                    bar.update(1)
            path = writer.close()
            ok = True
        finally:
            if not ok:
                writer.abort()
        wall = time.perf_counter() - t_start
        result = {
            "out": str(path),
            "frames": n,
            "fps": round(float(self.fps), 3),
            "duration_s": round(n / self.fps, 3),
            "audio_s": round(clip.duration, 3),
            "render_s": round(wall, 3),
            "video_s_per_s": round(n / self.fps / wall, 3),
        }
        if measure_sync:
            off = audio_offset_ms(path, np.asarray(clip.samples))
            result["audio_offset_ms"] = None if off is None else round(off, 2)
        return result

    def close(self) -> None:
        if self._source is not None:
            self._source.close()
        if self._tracker is not None:
            self._tracker.close()


def _at_time(face: FaceState, t: float) -> FaceState:
    """A driver face stamped with the clip's time (the driver may loop or be reused by a batch)."""
    from dataclasses import replace

    return replace(face, timestamp=t)
