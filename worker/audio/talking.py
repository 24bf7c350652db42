"""Offline talking renders: a character says a voice track, head and eyes from a driver or idle.

`TalkingRenderer` prepares the character once (cached assets, renderer, retargeter; a driver
video tracked once) and renders any number of clips from `VoiceClip`s: the voice's samples and
its mouth track, `.npy` files memory-mapped from the lip-sync cache (`lipsync_package`), so a
batch pays for text to speech and analysis once per line and never again. An audio file is never
held whole: it is analysed as it is decoded, and decoded again, a piece at a time, into the clip.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from worker.audio import limits, lipsync_cache
from worker.audio.analysis import MouthAnalyzer, VoiceSettings, load_track, save_track, signal_at
from worker.audio.calibration import VoiceProfile
from worker.audio.clip import SYNC_S, TalkingClipWriter, audio_offset_ms
from worker.audio.features import RATE
from worker.audio.sources import iter_audio
from worker.characters.assets import CharacterAssets
from worker.errors import UserError
from worker.retarget.retargeter import Retargeter, RetargetOptions
from worker.stopping import check_stop
from worker.track.face_state import FaceState

if TYPE_CHECKING:
    from worker.track.mediapipe_tracker import FaceTracker  # imported when a driver video is tracked

PACKAGE_FORMAT = 2
MAX_AUDIO_S = limits.RENDER_VOICE_S
LOOKAHEAD_MS = 20.0


@dataclass
class VoiceClip:
    """One line to say: the voice (16 kHz samples, or the audio file it is decoded from as it is
    used) and the mouth track (possibly memory-mapped)."""

    samples: np.ndarray | None
    track: np.ndarray
    label: str = ""
    seconds: dict[str, float] = field(default_factory=dict)  # how long making it took, per stage
    audio_file: Path | None = None
    n_samples: int = 0

    def __post_init__(self) -> None:
        if self.samples is not None:
            self.n_samples = len(self.samples)

    @property
    def duration(self) -> float:
        return self.n_samples / RATE

    def chunks(self) -> Iterator[np.ndarray]:
        """The voice in pieces (a file is decoded as it is read, never held whole)."""
        if self.samples is not None:
            yield np.asarray(self.samples, np.float32)
        elif self.audio_file is not None:
            yield from iter_audio(self.audio_file, RATE, MAX_AUDIO_S, "a voice to render")

    def head(self, seconds: float) -> np.ndarray:
        """The first `seconds` of the voice."""
        if self.samples is not None:
            return np.asarray(self.samples[: int(seconds * RATE)], np.float32)
        out, n = [], 0
        for c in self.chunks():
            out.append(c)
            n += len(c)
            if n >= seconds * RATE:
                break
        return np.concatenate(out)[: int(seconds * RATE)] if out else np.zeros(0, np.float32)


def lipsync_package(
    cache_dir: Path,
    label: str,
    key_parts: dict,
    make_samples: Callable[[], np.ndarray] | None,
    settings: VoiceSettings,
    profile: VoiceProfile,
    audio_file: Path | None = None,
    on_samples: Callable[[int], None] | None = None,
) -> VoiceClip:
    """The voice and mouth track for one line, from the cache or made now and cached.

    The key covers what the line is (text + voice, or the audio file's content), the analysis
    settings, the voice profile and the format version, so any change makes a new entry. An
    `audio_file` is analysed as it is decoded (flat memory, `on_samples` told the progress) and
    only its mouth track is cached; `make_samples` (text to speech) is kept with its track.
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
    folder = lipsync_cache.folder(cache_dir)
    wav_p, track_p, meta_p = folder / f"{key}.voice.npy", folder / f"{key}.mouth.npy", folder / f"{key}.json"
    seconds: dict[str, float] = {}
    if track_p.is_file() and meta_p.is_file() and (audio_file is not None or wav_p.is_file()):
        t0 = time.perf_counter()
        try:
            n = int(json.loads(meta_p.read_text(encoding="utf-8"))["samples"])
            track = load_track(track_p)
            samples = None if audio_file is not None else np.load(wav_p, mmap_mode="r", allow_pickle=False)
            seconds["load"] = time.perf_counter() - t0
            lipsync_cache.touch(track_p, meta_p, wav_p)
            return VoiceClip(samples, track, label, seconds, audio_file, n)
        except (OSError, ValueError, KeyError, TypeError, UserError):
            pass  # a damaged entry is rebuilt below
    t0 = time.perf_counter()
    if audio_file is not None:
        counted = [0]

        def count(k: int) -> None:
            counted[0] += k
            if on_samples is not None:
                on_samples(k)

        samples = None
        chunks = iter_audio(audio_file, RATE, MAX_AUDIO_S, "a voice to render")
        track = MouthAnalyzer(settings, profile).analyze_stream(chunks, LOOKAHEAD_MS, count)
        n = counted[0]
        if n == 0:
            raise UserError(f"{audio_file}: the audio stream is empty")
        t1 = t0
    else:
        assert make_samples is not None, "a voice clip needs an audio file or make_samples"
        samples = np.asarray(make_samples(), np.float32)
        n = len(samples)
        t1 = time.perf_counter()
        track = MouthAnalyzer(settings, profile).analyze(samples, LOOKAHEAD_MS)
    t2 = time.perf_counter()
    seconds.update(voice=t1 - t0, analysis=t2 - t1)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if samples is not None:
            tmp = wav_p.with_name(wav_p.name + ".tmp.npy")
            np.save(tmp, samples)
            os.replace(tmp, wav_p)
        save_track(track, track_p)
        tmp = meta_p.with_name(meta_p.name + ".tmp")
        tmp.write_text(json.dumps({"format": PACKAGE_FORMAT, "samples": n}), encoding="utf-8")
        os.replace(tmp, meta_p)
        lipsync_cache.prune(cache_dir, keep=key)
        track = load_track(track_p)
        if samples is not None:
            samples = np.load(wav_p, mmap_mode="r")
    except OSError:
        pass  # an unwritable cache only costs the reuse
    return VoiceClip(samples, track, label, seconds, audio_file, n)


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
        self._tracker: FaceTracker | None = None
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
            writer.set_audio(clip.chunks(), RATE)
            for k in range(n):
                check_stop()  # a stop whose raise was swallowed (see worker.stopping)
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
            off = audio_offset_ms(path, clip.head(SYNC_S))
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
