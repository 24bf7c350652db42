"""Push RGBA frames into an OBS async source from Python (the "direct" output).

obspython can allocate a `struct obs_source_frame` but cannot write its pixel buffer, so the
buffer address and row stride are read with ctypes at their offsets in the struct and the
pixels are copied with `ctypes.memmove`. The offsets are those of libobs 27-30 on 64-bit
systems (`uint8_t *data[8]` first, then `uint32_t linesize[8]`); `struct_offsets()` reads them
back from the SWIG wrapper, which was compiled against the real headers, and the sink refuses to
run when they disagree. OBS copies the frame inside `obs_source_output_video`, so one struct
is reused for every frame of the same size.
"""

from __future__ import annotations

import ctypes
import threading
import time
from typing import Any

DATA_OFFSET = 0  # offsetof(struct obs_source_frame, data)
LINESIZE_OFFSET = 64  # offsetof(struct obs_source_frame, linesize): 8 pointers of 8 bytes
VIDEO_FORMAT_RGBA = 6  # enum video_format in libobs/media-io/video-io.h
VIDEO_FORMAT_BGRA = 7
SOURCE_ID = "ffmpeg_source"  # OBS's Media Source: an async video source any OS has


def struct_offsets(obs) -> tuple[int, int]:
    """(offset of data, offset of linesize) in `struct obs_source_frame` as this libobs has it."""
    f = obs.obs_source_frame()
    base = int(f.this)
    return int(f.data) - base, int(f.linesize) - base


def layout_ok(obs) -> bool:
    return ctypes.sizeof(ctypes.c_void_p) == 8 and struct_offsets(obs) == (DATA_OFFSET, LINESIZE_OFFSET)


class ObsFrameSink:
    """Hands frames to the OBS source named `source_name` (looked up again if it is recreated).

    `push` runs on the script's frame thread; OBS allows outputting async video from any thread.
    """

    def __init__(self, obs, source_name: str, video_format: int = VIDEO_FORMAT_RGBA):
        self.obs = obs
        self.source_name = source_name
        self.video_format = video_format
        self._lock = threading.Lock()
        self._source = None
        self._next_lookup = 0.0
        self._frame: Any = None  # obspython's obs_source_frame
        self._size: tuple[int, int] | None = None
        self._data = 0
        self._linesize = 0
        self.pushed = 0
        self.closed = False
        if not layout_ok(obs):
            raise RuntimeError(
                f"unexpected obs_source_frame layout {struct_offsets(obs)}: this OBS "
                "is not supported by the direct output; choose the nut output"
            )

    def _get_source(self):
        obs = self.obs
        if self._source is not None and obs.obs_source_removed(self._source):
            obs.obs_source_release(self._source)
            self._source = None
        if self._source is None:
            now = time.monotonic()
            if now < self._next_lookup:
                return None
            self._next_lookup = now + 1.0  # the user may have deleted it: look again once a second
            src = obs.obs_get_source_by_name(self.source_name)
            if src is not None and obs.obs_source_get_unversioned_id(src) != SOURCE_ID:
                obs.obs_source_release(src)  # the user's own source of that name: not ours to feed
                src = None
            if src is not None:
                obs.obs_source_set_async_unbuffered(src, True)  # newest frame at the next tick
                self._source = src
        return self._source

    def refresh(self) -> None:
        """Look the source up at the next frame (it was just created)."""
        self._next_lookup = 0.0

    def _ensure_frame(self, w: int, h: int) -> None:
        if self._size == (w, h):
            return
        self._free_frame()
        f = self.obs.obs_source_frame()
        self.obs.obs_source_frame_init(f, self.video_format, w, h)
        base = int(f.this)
        self._data = ctypes.c_void_p.from_address(base + DATA_OFFSET).value or 0
        self._linesize = ctypes.c_uint32.from_address(base + LINESIZE_OFFSET).value
        if not self._data or self._linesize < w * 4:
            self.obs.obs_source_frame_free(f)
            raise RuntimeError(f"obs_source_frame_init gave no {w}x{h} buffer")
        self._frame, self._size = f, (w, h)

    def _free_frame(self) -> None:
        if self._frame is not None:
            self.obs.obs_source_frame_free(self._frame)
            self._frame, self._size, self._data, self._linesize = None, None, 0, 0

    def push(self, frame) -> bool:
        """Copy one RGBA frame (`width`, `height`, `data`) into the source; False if it is gone."""
        w, h, buf = frame.width, frame.height, frame.data
        if not isinstance(buf, bytearray):
            buf = bytearray(buf)  # ctypes needs a writable buffer to take its address
        if len(buf) != w * h * 4:
            raise ValueError(f"frame of {len(buf)} bytes is not {w}x{h} RGBA")
        with self._lock:
            src = None if self.closed else self._get_source()
            if src is None:
                return False
            self._ensure_frame(w, h)
            src_ptr = (ctypes.c_char * len(buf)).from_buffer(buf)
            row = w * 4
            if self._linesize == row:
                ctypes.memmove(self._data, src_ptr, len(buf))
            else:
                base = ctypes.addressof(src_ptr)
                for y in range(h):
                    ctypes.memmove(self._data + y * self._linesize, base + y * row, row)
            self._frame.timestamp = self.obs.os_gettime_ns()
            self.obs.obs_source_output_video(src, self._frame)
            self.pushed += 1
            return True

    def clear(self) -> None:
        """Show nothing (the worker was stopped on purpose)."""
        with self._lock:
            src = None if self.closed else self._get_source()
            if src is not None:
                self.obs.obs_source_output_video(src, None)

    def close(self) -> None:
        """Release the source and the frame; later pushes are ignored (the script is unloading).

        Runs on the UI thread during unload: it waits at most a second for a push in flight and
        would rather leak one frame buffer than hang OBS's exit.
        """
        self.closed = True
        if not self._lock.acquire(timeout=1.0):
            return
        try:
            self._free_frame()
            if self._source is not None:
                self.obs.obs_source_release(self._source)
                self._source = None
        finally:
            self._lock.release()
