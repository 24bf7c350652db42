"""Video file capture with PyAV: exact media timestamps, optional looping and real-time pacing."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from worker.capture.base import Frame, FrameSource
from worker.capture.errors import CaptureError
from worker.errors import UserError, os_reason


class VideoFileSource(FrameSource):
    """Frames of a video file (anything FFmpeg reads, including a single still image).

    Timestamps are media time in seconds from the first frame. With `loop=True` the file
    restarts at its end and timestamps and indexes keep increasing (one loop's duration is
    added per pass), so downstream filters never see time go backwards. With `realtime=True`
    `read()` sleeps so that frames come out at the clip's own pace, like a camera; a consumer
    that falls more than half a second behind is re-anchored instead of being rushed.
    """

    def __init__(self, path: str | Path, loop: bool = False, realtime: bool = False) -> None:
        import av

        self.path = Path(path)
        self.name = self.path.name
        self.loop, self.realtime = loop, realtime
        if not self.path.is_file():
            what = "is a folder, not a video file" if self.path.is_dir() else "video file not found"
            raise UserError(f"{self.path}: {what}")
        try:
            self._container = av.open(str(self.path))
        except (av.error.FFmpegError, OSError, ValueError) as e:
            raise UserError(f"{self.path}: not a readable video ({os_reason(e)})") from None
        if not self._container.streams.video:
            self._container.close()
            raise UserError(f"{self.path}: no video stream in it (not a video)")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        cc = self._stream.codec_context
        self.size = (int(cc.width), int(cc.height))
        rate = self._stream.average_rate or self._stream.guessed_rate
        self.fps = float(rate) if rate else 30.0
        self.frame_count = int(self._stream.frames or 0)
        if self.frame_count <= 0 and self._stream.duration and self._stream.time_base:
            self.frame_count = int(round(float(self._stream.duration * self._stream.time_base) * self.fps))
        self._t0: float | None = None  # media time of the first frame
        self._offset = 0.0  # added per completed loop
        self._last_media_t = 0.0
        self._last_ts = -1.0
        self._index = 0
        self._wall0: float | None = None
        self._frames = self._container.decode(self._stream)

    @property
    def duration(self) -> float:
        """Seconds of one pass (frame count / fps)."""
        return self.frame_count / self.fps if self.fps else 0.0

    def _next_video_frame(self):
        import av

        try:
            return next(self._frames)
        except StopIteration:
            return None
        except av.error.FFmpegError as e:
            raise CaptureError(f"error decoding {self.path} at frame {self._index}: {e}") from None

    def read(self) -> Frame | None:
        vf = self._next_video_frame()
        if vf is None and self.loop and self._index > 0:
            # one pass = last frame's time + one frame period
            self._offset += self._last_media_t + 1.0 / self.fps
            self._container.seek(0, stream=self._stream)
            self._frames = self._container.decode(self._stream)
            vf = self._next_video_frame()
        if vf is None:
            return None
        media_t = float(vf.time) if vf.time is not None else self._index / self.fps
        if self._t0 is None:
            self._t0 = media_t
        media_t -= self._t0
        if vf.time is None or (self._index > 0 and media_t + self._offset <= self._last_ts):
            media_t = self._last_media_t + 1.0 / self.fps  # missing or non-increasing pts
        self._last_media_t = media_t
        ts = media_t + self._offset
        self._last_ts = ts
        image = vf.to_ndarray(format="bgr24")
        if self.realtime:
            self._pace(ts)
        frame = Frame(image=np.ascontiguousarray(image), index=self._index, timestamp=ts)
        self._index += 1
        return frame

    def _pace(self, ts: float) -> None:
        now = time.monotonic()
        if self._wall0 is None:
            self._wall0 = now - ts
        wait = self._wall0 + ts - now
        if wait > 0:
            time.sleep(wait)
        elif wait < -0.5:  # consumer far behind: carry on from here at the clip's pace
            self._wall0 = now - ts

    def close(self) -> None:
        self._container.close()
