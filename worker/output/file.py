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
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from worker.errors import UserError
from worker.output.base import Output, check_rgba, composite, parse_colour
from worker.output.registry import OUTPUTS

TIME_BASE = Fraction(1, 1000)

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
    ):
        super().__init__()
        self.path = Path(path)
        raw = str(path)
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
        self._container = None
        self._stream = None
        self._size: tuple[int, int] | None = None
        self._t0: float | None = None
        self._last_pts = -1

    @classmethod
    def from_config(cls, config: dict) -> FileOutput:
        o = OUTPUTS["file"].check(config)
        return cls(
            os.path.expanduser(o["path"]),
            float(o["fps"]),
            parse_colour(o["background"], "outputs.file.background"),
            o["timing"],
            o["realtime"],
        )

    @property
    def keeps_alpha(self) -> bool:
        return self.png or FORMATS[self.path.suffix.lower()][3]

    def start(self) -> None:
        target_dir = self.path if self.png else self.path.parent
        try:
            target_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(f"outputs.file.path {str(self.path)!r}: cannot create folder: {e.strerror}") from None
        if not os.access(target_dir, os.W_OK):
            raise UserError(f"outputs.file.path {str(self.path)!r}: folder is not writable")

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

    def stats(self) -> dict:
        return {**super().stats(), "path": str(self.path), "frames": self.frames}
