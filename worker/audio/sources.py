"""Where the voice comes from: a microphone (sounddevice) or a sound/video file paced in real time.

Every source delivers 16 kHz mono float32 hops of `HOP` samples to a callback on its own thread,
with the time (`time.perf_counter()`) at which the hop's last sample was heard. A file source
decodes the file with PyAV as it plays and loops it (for tests, and for people without a mic).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from worker.audio.features import HOP, RATE
from worker.errors import UserError

log = logging.getLogger(__name__)

HopCallback = Callable[[np.ndarray, float], None]


class TooLong(UserError):
    """Audio past the limit stated for its use (worker.audio.limits)."""


def _open_audio(p: Path):
    """An open container and its first audio stream, or a UserError naming the file."""
    if not p.is_file():
        raise UserError(f"{p}: audio file not found")
    try:
        container = av.open(str(p))
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as e:
        raise UserError(f"{p}: cannot read as audio or video ({e})") from None
    if not container.streams.audio:
        container.close()
        raise UserError(f"{p}: has no audio stream")
    return container, container.streams.audio[0]


def probe_seconds(path: str | Path) -> float | None:
    """The length of a file's first audio stream as its header states it (None when it does not)."""
    container, stream = _open_audio(Path(path))
    with container:
        if stream.duration is not None and stream.time_base is not None:
            return float(stream.duration * stream.time_base)
        if container.duration is not None:
            return container.duration / 1e6
    return None


def iter_audio(
    path: str | Path, rate: int = RATE, max_seconds: float | None = None, what: str = "audio"
) -> Iterator[np.ndarray]:
    """The first audio stream of a file (WAV, MP3, MP4, ...) as mono float32 chunks at `rate`, decoded
    as it is read: memory stays flat whatever the file's length. Past `max_seconds` (whatever the
    header claims) it stops with a UserError stating the limit."""
    p = Path(path)
    container, stream = _open_audio(p)
    limit = None if max_seconds is None else int(max_seconds * rate)
    sent = 0
    with container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        try:
            for frame in container.decode(stream):
                frame.pts = None  # let the resampler count samples itself (gaps in pts are not silence)
                for f in resampler.resample(frame):
                    chunk = f.to_ndarray().reshape(-1)
                    sent += len(chunk)
                    if limit is not None and sent > limit:
                        raise TooLong(f"{p}: longer than {hms(max_seconds)}, the limit for {what}")
                    yield chunk
            for f in resampler.resample(None):
                yield f.to_ndarray().reshape(-1)
        except av.error.FFmpegError as e:
            raise UserError(f"{p}: audio stream cannot be decoded ({e})") from None


def check_length(path: str | Path, max_seconds: float, what: str = "audio") -> float | None:
    """The length a file's header states (None when it does not), or a UserError when that is past
    `max_seconds` (worker.audio.limits); `iter_audio` still stops at the limit when a header lies."""
    stated = probe_seconds(path)
    if stated is not None and stated > max_seconds + 1.0:
        raise TooLong(f"{path}: {hms(stated)} long; {what} may be at most {hms(max_seconds)}")
    return stated


def decode_audio(path: str | Path, max_seconds: float, what: str = "audio") -> np.ndarray:
    """The first audio stream of a file as 16 kHz mono float32, the whole of it kept: only for
    short files, so the caller states how long one may be (worker.audio.limits)."""
    check_length(path, max_seconds, what)
    chunks = list(iter_audio(path, RATE, max_seconds, what))
    if not chunks or not sum(len(c) for c in chunks):
        raise UserError(f"{path}: the audio stream is empty")
    return np.ascontiguousarray(np.concatenate(chunks), dtype=np.float32)


def hms(seconds: float | None) -> str:
    """3725 -> '1:02:05', 75 -> '1:15 min', 45 -> '45 s'."""
    s = int(round(seconds or 0))
    if s >= 3600:
        return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"
    return f"{s // 60}:{s % 60:02d} min" if s >= 60 else f"{s} s"


class AudioSource:
    """Base: `start(callback)` runs the source on its own thread; `stop()` ends it."""

    name = "audio"

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.hops = 0

    def start(self, callback: HopCallback) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(callback,), name=f"audio-{self.name}", daemon=True)
        self._thread.start()

    def _run(self, callback: HopCallback) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None


class FileAudioSource(AudioSource):
    """A file's audio, paced in real time, looped (or once with `loop=False`).

    The file is decoded as it plays (a few hops ahead), so an hours-long file costs no more memory
    than a short one; `samples` (16 kHz mono float32) plays an array instead of a file.
    """

    name = "file"

    def __init__(self, path: str | Path, loop: bool = True, samples: np.ndarray | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        self.samples = None if samples is None else np.asarray(samples, np.float32)
        if self.samples is None and next(iter_audio(self.path), None) is None:  # fails here, as one line
            raise UserError(f"{self.path}: the audio stream is empty")
        self.loop = loop
        self.started_at = 0.0  # perf_counter when sample 0 was "heard"

    def _hops(self) -> Iterator[np.ndarray]:
        """The hops of one pass through the file (or the array); a partial last hop is dropped."""
        if self.samples is not None:
            x = self.samples
            for k in range(len(x) // HOP):
                yield x[k * HOP : (k + 1) * HOP]
            return
        carry = np.zeros(0, np.float32)
        for chunk in iter_audio(self.path):
            carry = np.concatenate([carry, chunk])
            n = len(carry) // HOP
            for k in range(n):
                yield carry[k * HOP : (k + 1) * HOP]
            carry = carry[n * HOP :]

    def _run(self, callback: HopCallback) -> None:
        self.started_at = t0 = time.perf_counter()
        i = 0
        while not self._stop.is_set():
            played = 0
            for hop in self._hops():
                if self._stop.is_set():
                    return
                due = t0 + (i + 1) * HOP / RATE
                wait = due - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                callback(hop, due)
                self.hops += 1
                played += 1
                i += 1
            if not self.loop or played == 0:
                return


def _sounddevice():
    """The sounddevice module, or a UserError when PortAudio is missing (Linux without libportaudio2)."""
    try:
        import sounddevice as sd
    except OSError as e:  # sounddevice raises OSError when it cannot load PortAudio
        raise UserError(f"no audio input available: {e} (on Linux: install libportaudio2)") from None
    return sd


@dataclass
class Microphone:
    index: int
    name: str
    channels: int
    default_rate: float
    host_api: str
    default: bool

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def list_microphones() -> list[Microphone]:
    """Input devices; an empty list when there are none or no audio system at all."""
    return microphones_and_reason()[0]


def microphones_and_reason() -> tuple[list[Microphone], str]:
    """Input devices, and when there are none, why (no PortAudio, no sound server, no inputs)."""
    try:
        sd = _sounddevice()
        devices = sd.query_devices()
        apis = sd.query_hostapis()
        default_in = sd.default.device[0] if sd.default.device else -1
    except UserError as e:
        log.info("%s", e)
        return [], str(e).replace("no audio input available: ", "")
    except Exception as e:  # PortAudio errors (no sound server) mean: no microphones
        log.info("cannot list audio devices: %s", e)
        return [], f"the audio system did not answer ({e})"
    out = []
    for i, d in enumerate(devices):
        if d.get("max_input_channels", 0) > 0:
            api = apis[d["hostapi"]]["name"] if apis else ""
            out.append(
                Microphone(
                    i, d["name"], int(d["max_input_channels"]), float(d["default_samplerate"]), api, i == default_in
                )
            )
    return out, "" if out else "the audio system lists no input devices"


def find_microphone(spec: str | int) -> Microphone:
    """`default`, an index or (part of) a device name -> the device; UserError naming what exists."""
    mics, reason = microphones_and_reason()
    if not mics:
        raise UserError(
            f"microphone {spec!r}: no microphones found ({reason}); an audio or video file can be the voice"
        )
    s = str(spec).strip()
    if s.lower() == "default":
        return next((m for m in mics if m.default), mics[0])
    if s.isdigit():
        for m in mics:
            if m.index == int(s):
                return m
    else:
        hits = [m for m in mics if s.lower() in m.name.lower()]
        if hits:
            return hits[0]
    have = "; ".join(f"{m.index}: {m.name}" for m in mics)
    raise UserError(f"microphone {spec!r} not found (have: {have})")


class MicAudioSource(AudioSource):
    """A microphone through sounddevice, 16 kHz mono (resampled if the device will not do 16 kHz).

    PortAudio's callback only queues the block; splitting into hops and the caller's analysis
    run on this source's own thread, so a slow analysis never makes PortAudio drop input.
    """

    name = "mic"

    def __init__(self, spec: str | int = "default") -> None:
        super().__init__()
        self.device = find_microphone(spec)
        self._queue: queue.Queue = queue.Queue(maxsize=200)
        self.overflows = 0

    def start(self, callback: HopCallback) -> None:
        """Open the device here, so a device that will not open fails in the caller as one line."""
        self._stream, self._rate = self._open()
        self._stream.start()
        super().start(callback)

    def _on_block(self, indata, frames, t, status) -> None:  # PortAudio's thread: queue and return
        if status:
            self.overflows += 1
        try:
            self._queue.put_nowait((indata[:, 0].copy(), time.perf_counter()))
        except queue.Full:
            self.overflows += 1

    def _open(self):
        sd = _sounddevice()
        opts = {
            "device": self.device.index,
            "channels": 1,
            "dtype": "float32",
            "latency": "low",
            "callback": self._on_block,
        }
        try:
            return sd.InputStream(samplerate=RATE, blocksize=HOP, **opts), RATE
        except Exception:  # the device refuses 16 kHz: take its own rate and resample
            rate = int(self.device.default_rate)
            try:
                return sd.InputStream(samplerate=rate, blocksize=int(round(HOP * rate / RATE)), **opts), rate
            except Exception as e:
                raise UserError(f"microphone {self.device.name!r}: cannot open it ({e})") from None

    def _run(self, callback: HopCallback) -> None:
        rate, buf = self._rate, np.zeros(0, np.float32)
        try:
            while not self._stop.is_set():
                try:
                    block, t = self._queue.get(timeout=0.1)
                except queue.Empty:
                    continue
                if rate != RATE:
                    n = int(round(len(block) * RATE / rate))
                    block = np.interp(np.linspace(0, len(block) - 1, n), np.arange(len(block)), block)
                buf = np.concatenate([buf, block.astype(np.float32)])
                while len(buf) >= HOP:
                    left = (len(buf) - HOP) / RATE  # samples after this hop were heard later
                    callback(buf[:HOP], t - left)
                    buf = buf[HOP:]
                    self.hops += 1
        finally:
            self._stream.stop()
            self._stream.close()


def open_source(spec: str, loop: bool = True) -> AudioSource:
    """`default`, a device index or name, or a path to an audio/video file."""
    p = Path(spec)
    if p.suffix and (
        p.exists()
        or p.suffix.lower()
        in (".wav", ".mp3", ".mp4", ".m4a", ".ogg", ".flac", ".mov", ".webm", ".mkv", ".opus", ".aac")
    ):
        return FileAudioSource(p, loop=loop)
    return MicAudioSource(spec)
