"""The "file" output: record frames with PyAV, or as a folder of PNGs.

The format follows the path: ``.mp4`` H.264 (no alpha: composited over `background`),
``.mov`` QuickTime Animation/qtrle (alpha kept), ``.webm`` VP9 with alpha (yuva420p),
a path without a suffix (or ending in "/") a folder of numbered RGBA PNGs. Videos are
written to a temporary name beside the target and moved into place on `close()`.
Timestamps come from the capture clock (``timing: capture``, real-time playback of a live
session) or from the frame count (``timing: fps``, for offline renders).
"""

from __future__ import annotations

import os
import re
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from worker.errors import UserError, os_reason
from worker.output.base import Output, check_rgba, composite, parse_colour
from worker.output.registry import OUTPUTS

TIME_BASE = Fraction(1, 1000)
FRAME_NAME = re.compile(r"\d{6}\.png")  # what a PNG folder holds: the frames this output writes


def ensure_writable_dir(folder: Path, target: Path | None = None) -> list[Path]:
    """Create `folder` if needed and prove a file can be written in it (permissions alone do
    not tell: /proc, read-only mounts, a file in the way). `UserError` names `target`.
    Returns the folders it created, deepest first (for `remove_empty_dirs` after a failure)."""
    name = target if target is not None else folder
    made = [p for p in [folder, *folder.parents] if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except FileExistsError:
        raise UserError(f"{name}: cannot write there ({folder} is a file, not a folder)") from None
    except OSError as e:
        remove_empty_dirs(made)
        raise UserError(f"{name}: cannot write there ({os_reason(e)})") from None
    return made


def remove_empty_dirs(dirs: list[Path]) -> None:
    """Undo `ensure_writable_dir`: remove the folders it made, deepest first, while empty."""
    for d in dirs:
        try:
            d.rmdir()
        except OSError:
            return


# suffix -> (container format, codec, pixel format, keeps alpha, codec options)
FORMATS: dict[str, tuple[str, str, str, bool, dict[str, str]]] = {
    ".mp4": ("mp4", "libx264", "yuv420p", False, {"preset": "veryfast", "crf": "18"}),
    ".mov": ("mov", "qtrle", "argb", True, {}),
    ".webm": (
        "webm",
        "libvpx-vp9",
        "yuva420p",
        True,
        {"deadline": "realtime", "cpu-used": "8", "crf": "30", "b": "0", "row-mt": "1"},
    ),
}


class FileOutput(Output):
    name = "file"

    def __init__(
        self,
        path: str | os.PathLike,
        fps: float = 30.0,
        background=(0, 0, 0),
        timing: str = "capture",
        realtime: bool = True,
        clear: bool = False,
    ):
        super().__init__()
        raw = str(path)
        if not raw.strip():
            raise UserError("outputs.file.path is empty: give a .mp4, .mov, .webm file or a folder name")
        self.path = Path(path)
        self.clear = clear  # a PNG folder with frames in it may be emptied (else it is refused)
        self.png = self.path.suffix == "" or raw.endswith(("/", os.sep))
        if not self.png and self.path.suffix.lower() not in FORMATS:
            raise UserError(
                f"outputs.file.path {raw!r}: unsupported suffix {self.path.suffix!r}; use "
                f"{', '.join(FORMATS)} or a folder name for PNG frames"
            )
        if timing not in ("capture", "fps"):
            raise UserError(f"outputs.file.timing must be 'capture' or 'fps', got {timing!r}")
        self.fps = fps
        self.background = background
        self.timing = timing
        self.realtime = realtime
        self.frames = 0
        self._tmp: Path | None = None
        self._container: Any = None  # PyAV's output container and stream, open while writing
        self._stream: Any = None
        self._size: tuple[int, int] | None = None
        self._t0: float | None = None
        self._last_pts = -1
        self._made_dirs: list[Path] = []

    @classmethod
    def from_config(cls, config: dict) -> FileOutput:
        o = OUTPUTS["file"].check(config)
        return cls(
            os.path.expanduser(o["path"]),
            float(o["fps"]),
            parse_colour(o["background"], "outputs.file.background"),
            o["timing"],
            o["realtime"],
            o["clear"],
        )

    @property
    def keeps_alpha(self) -> bool:
        return self.png or FORMATS[self.path.suffix.lower()][3]

    def start(self) -> None:
        """Check the target before any frame is made: writable, not a folder (a video), new or
        empty (a PNG folder, so new frames never mix with stale ones). Raises `UserError`."""
        if self.png:
            if self.path.exists() and not self.path.is_dir():
                raise UserError(f"{self.path}: is a file, not a folder for PNG frames")
            if self.path.is_dir():
                self._empty_png_folder()
        elif self.path.is_dir():
            raise UserError(f"{self.path}: is a folder, not a video file")
        target_dir = self.path if self.png else self.path.parent
        self._made_dirs = ensure_writable_dir(target_dir, self.path)

    def _empty_png_folder(self) -> None:
        frames = [p for p in self.path.iterdir() if FRAME_NAME.fullmatch(p.name)]
        others = [p for p in self.path.iterdir() if not FRAME_NAME.fullmatch(p.name)]
        if not frames and not others:
            return
        if not self.clear or others:
            n = len(frames) + len(others)
            what = f"{n} {'frame' if not others else 'file'}{'s' * (n != 1)}"
            hint = "choose a new folder" if others else "choose a new folder or allow emptying it (--clear-out)"
            raise UserError(f"{self.path}: folder is not empty ({what}): {hint}")
        for p in frames:
            p.unlink()

    def _open(self, w: int, h: int) -> None:
        fmt, codec, pix_fmt, _alpha, options = FORMATS[self.path.suffix.lower()]
        self._tmp = self.path.with_name(f".{self.path.stem}.partial{self.path.suffix}")
        self._container = av.open(str(self._tmp), mode="w", format=fmt)
        stream = self._container.add_stream(codec, rate=round(self.fps), options=dict(options))
        stream.width, stream.height, stream.pix_fmt = w, h, pix_fmt
        stream.codec_context.time_base = TIME_BASE
        self._stream = stream
        self._size = (w, h)

    def _pts(self, capture_ts: float) -> int:
        if self.timing == "fps":
            pts = int(round(self.frames * 1000 / self.fps))
        else:
            if self._t0 is None:
                self._t0 = capture_ts
            pts = int(round((capture_ts - self._t0) * 1000))
        pts = max(pts, self._last_pts + 1)
        self._last_pts = pts
        return pts

    def send(self, rgba: np.ndarray, seq: int, capture_ts: float) -> None:
        check_rgba(rgba)
        if self.png:
            self._write_png(rgba)
        else:
            self._write_video(rgba, capture_ts)
        self.frames += 1
        self.metrics.delivered_frame(capture_ts)

    def _write_png(self, rgba: np.ndarray) -> None:
        ok, data = cv2.imencode(".png", cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
        if not ok:
            raise RuntimeError("PNG encoding failed")
        final = self.path / f"{self.frames:06d}.png"
        tmp = self.path / f".{self.frames:06d}.png.tmp"
        tmp.write_bytes(data.tobytes())
        os.replace(tmp, final)

    def _write_video(self, rgba: np.ndarray, capture_ts: float) -> None:
        h, w = rgba.shape[:2]
        if self._container is None:
            self._open(w + w % 2, h + h % 2)  # 4:2:0 needs even sides
        if (w + w % 2, h + h % 2) != self._size:
            raise ValueError(f"frame size changed from {self._size} to {(w, h)} during a recording")
        if self.keeps_alpha:
            img, fmt = rgba, "rgba"
        else:
            img, fmt = composite(rgba, self.background), "rgb24"
        if w % 2 or h % 2:
            img = np.pad(img, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format=fmt)
        frame.pts, frame.time_base = self._pts(capture_ts), TIME_BASE
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        if self._container is None:
            return
        container, self._container = self._container, None
        try:
            for packet in self._stream.encode(None):
                container.mux(packet)
        finally:
            container.close()
        assert self._tmp is not None
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        """Stop without publishing: a failed render leaves no half-made file behind."""
        container, self._container = self._container, None
        if container is not None:
            try:
                container.close()
            except Exception:  # noqa: S110 - already failing; the temp file is removed below
                pass
        if self._tmp is not None and self._tmp.exists():
            self._tmp.unlink()
        if self.png:  # a render that failed before its first frame leaves no folder behind
            for i in range(self.frames):
                (self.path / f"{i:06d}.png").unlink(missing_ok=True)
        remove_empty_dirs(self._made_dirs)

    def stats(self) -> dict:
        return {**super().stats(), "path": str(self.path), "frames": self.frames}
