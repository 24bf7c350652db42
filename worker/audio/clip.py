"""A talking clip on disk: video (the file output's formats) and the voice, written in one pass.

Video codecs and alpha handling are `worker.output.file`'s (`.mp4` H.264 over a background,
`.mov` qtrle and `.webm` VP9 with alpha); the voice goes in as AAC (`.mp4`, `.mov`) or Opus
(`.webm`), interleaved with the frames so that sample 0 plays with frame 0. Written to a
temporary name and moved into place on `close()`. `audio_offset_ms` measures the sync of a
finished file by finding the voice in its decoded audio.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import cast

import av
import numpy as np
from av.audio.stream import AudioStream
from av.video.stream import VideoStream

from worker.audio.features import RATE
from worker.errors import UserError
from worker.output.base import composite
from worker.output.file import FORMATS

AUDIO_CODECS = {".mp4": "aac", ".mov": "aac", ".webm": "libopus"}
AUDIO_RATE = 48000
SYNC_S = 60.0  # the sync of a finished file is measured on its first minute


class TalkingClipWriter:
    def __init__(self, path: str | Path, fps: float, size: int, background=(0, 177, 64)) -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in AUDIO_CODECS:
            raise UserError(f"--out {str(path)!r}: use .mp4, .mov or .webm (a clip with sound)")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(f"--out {str(path)!r}: cannot create folder: {e.strerror}") from None
        if not os.access(self.path.parent, os.W_OK):
            raise UserError(f"--out {str(path)!r}: folder is not writable")
        fmt, codec, pix_fmt, self.alpha, options = FORMATS[suffix]
        self.fps = Fraction(fps).limit_denominator(1001)
        self.background = background
        self.tmp = self.path.with_name(f".{self.path.stem}.partial{self.path.suffix}")
        self.container = av.open(str(self.tmp), mode="w", format=fmt)
        # the codecs are FORMATS' video and AUDIO_CODECS' audio encoders; PyAV's stubs type a stream
        # by its codec only when the name is a literal
        self.video = cast(VideoStream, self.container.add_stream(codec, rate=self.fps, options=dict(options)))
        self.video.width = self.video.height = size + size % 2
        self.video.pix_fmt = pix_fmt
        self.video.codec_context.time_base = 1 / self.fps
        self.audio = cast(AudioStream, self.container.add_stream(AUDIO_CODECS[suffix], rate=AUDIO_RATE, layout="mono"))
        self.audio.codec_context.time_base = Fraction(1, AUDIO_RATE)
        self._chunks: Iterator[np.ndarray] = iter(())
        self._pcm = np.zeros(0, np.float32)  # the voice not yet encoded, from sample self._pcm_at on
        self._pcm_at = 0
        self._eof = False
        self._sent = 0  # audio samples handed to the encoder
        self.frames = 0

    def set_audio(self, samples: np.ndarray | Iterable[np.ndarray], rate: int = RATE) -> None:
        """The voice track (mono float32 at `rate`): one array, or chunks pulled as the frames need
        them (a file decoded as it is read), resampled to the container's rate on the way."""
        chunks = [samples] if isinstance(samples, np.ndarray) else samples
        self._chunks = _resampled(chunks, rate)
        self._pcm = np.zeros(0, np.float32)
        self._pcm_at = self._sent = 0
        self._eof = False

    def write(self, rgba: np.ndarray) -> None:
        img = rgba if self.alpha else composite(rgba, self.background)
        h, w = img.shape[:2]
        if h % 2 or w % 2:
            img = np.pad(img, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgba" if self.alpha else "rgb24")
        frame.pts = self.frames
        for packet in self.video.encode(frame):
            self.container.mux(packet)
        self.frames += 1
        self._feed_audio(int(round(self.frames / self.fps * AUDIO_RATE)))

    def _pull(self, upto: int) -> None:
        """Keep the voice from the next unsent sample to `upto` (or its end) in `self._pcm`."""
        have = [self._pcm[self._sent - self._pcm_at :]]
        n = len(have[0])
        while self._sent + n < upto and not self._eof:
            chunk = next(self._chunks, None)
            if chunk is None:
                self._eof = True
                break
            have.append(chunk)
            n += len(chunk)
        self._pcm, self._pcm_at = np.concatenate(have), self._sent

    def _feed_audio(self, upto: int, final: bool = False) -> None:
        """Encode the voice up to sample `upto` (the end of the frames written so far), a bounded
        piece at a time; `final`: to the end of the voice, its last partial frame padded."""
        step = self.audio.codec_context.frame_size or 960
        while self._sent < upto:
            stop = min(upto, self._sent + 64 * step)
            self._pull(stop + step)
            end = min(stop, self._pcm_at + len(self._pcm))
            if self._sent >= end or (not final and self._sent + step > upto):
                return
            while self._sent < end and (final or self._sent + step <= upto):
                chunk = self._pcm[self._sent - self._pcm_at : self._sent - self._pcm_at + step]
                if len(chunk) < step:
                    if not (final and self._eof):
                        return  # the rest of this frame's voice comes with the next video frame
                    chunk = np.pad(chunk, (0, step - len(chunk)))
                frame = av.AudioFrame.from_ndarray(chunk[None], format="flt", layout="mono")
                frame.sample_rate, frame.pts = AUDIO_RATE, self._sent
                frame.time_base = Fraction(1, AUDIO_RATE)
                for packet in self.audio.encode(frame):
                    self.container.mux(packet)
                self._sent += step

    def close(self) -> Path:
        try:
            self._feed_audio(1 << 62, final=True)
            for stream in (self.video, self.audio):
                for packet in stream.encode(None):
                    self.container.mux(packet)
        finally:
            self.container.close()
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        try:
            self.container.close()
        except Exception:  # noqa: S110 - already failing; the temp file goes below
            pass
        if self.tmp.exists():
            self.tmp.unlink()


def _resampled(chunks: Iterable[np.ndarray], rate: int) -> Iterator[np.ndarray]:
    """Mono float32 chunks at `rate` -> the same at AUDIO_RATE, one resampler across them all."""
    if rate == AUDIO_RATE:
        yield from (np.asarray(c, np.float32).reshape(-1) for c in chunks)
        return
    rs = av.AudioResampler(format="flt", layout="mono", rate=AUDIO_RATE)
    for c in chunks:
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(c, np.float32).reshape(1, -1), format="flt", layout="mono"
        )
        frame.sample_rate = rate
        yield from (f.to_ndarray().reshape(-1) for f in rs.resample(frame))
    yield from (f.to_ndarray().reshape(-1) for f in rs.resample(None))


def audio_offset_ms(path: str | Path, reference: np.ndarray, rate: int = RATE, max_s: float = SYNC_S) -> float | None:
    """Where `reference` (the voice, mono at `rate`) plays in the file, relative to its first video
    frame, in ms (0 = in sync; > 0 = the sound comes late). Found by cross-correlating the first
    `max_s` of the file's decoded audio with the reference's; None for a silent reference."""
    reference = np.asarray(reference[: int(max_s * rate)], np.float32)
    if float(np.abs(reference).max(initial=0.0)) < 1e-4:
        return None
    with av.open(str(path)) as c:
        if not c.streams.audio or not c.streams.video:
            raise UserError(f"{path}: needs a video and an audio stream to measure sync")
        v0 = next(iter(c.decode(c.streams.video[0]))).time or 0.0
    with av.open(str(path)) as c:
        rs = av.AudioResampler(format="flt", layout="mono", rate=rate)
        chunks, a0, n_got = [], None, 0
        for f in c.decode(c.streams.audio[0]):
            if a0 is None:
                a0 = f.time or 0.0
            f.pts = None
            new = [g.to_ndarray().reshape(-1) for g in rs.resample(f)]
            chunks += new
            n_got += sum(len(g) for g in new)
            if n_got > (max_s + 2.0) * rate:
                break  # enough to find the voice in: a long file is not decoded whole
        chunks += [g.to_ndarray().reshape(-1) for g in rs.resample(None)]
    got = np.concatenate(chunks)
    ref = np.asarray(reference, np.float32)
    n = 1 << int(np.ceil(np.log2(len(got) + len(ref))))
    xc = np.fft.irfft(np.fft.rfft(got, n) * np.conj(np.fft.rfft(ref, n)), n)
    lag = int(np.argmax(xc))
    if lag > n // 2:
        lag -= n
    return ((a0 or 0.0) + lag / rate - v0) * 1000.0
