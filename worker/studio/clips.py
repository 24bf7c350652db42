"""Talking clips from the studio (the page's "Generate"): a character says typed text (the
system's offline voices) or a recording, head and eyes idle or from a driving video, through the
same parts as `stream-animator render` (the lip-sync cache, `TalkingRenderer`, the character cache).

The character and each voice line are prepared once: the character's assets and renderer stay
in memory between clips, and every line's voice and mouth track are cached as `.npy` files, so
the second clip of a character costs only the frames. Each result says where its time went.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from worker.errors import UserError, os_reason
from worker.studio.characters import Characters, safe_name

FORMATS = ("mp4", "webm", "mov")
MAX_LINES = 20
MAX_TEXT = 2000  # characters per line
MAX_RECORDING_BYTES = 50 * 1024 * 1024
MAX_DRIVER_BYTES = 200 * 1024 * 1024
GREEN = (0, 177, 64)  # the background of an .mp4 (no transparency there)


@dataclass
class ClipRequest:
    character: str
    lines: list[str] = field(default_factory=list)  # text to say; several lines render as a batch
    voice: str | None = None
    recording: Path | None = None  # an uploaded recording instead of text
    driver: Path | None = None  # a driving video for head and eyes (default: idle motion)
    format: str = "mp4"
    fps: float = 30.0

    def check(self) -> None:
        if self.format not in FORMATS:
            raise UserError(f"format: {self.format!r} is not one of {', '.join(FORMATS)}")
        if self.recording is None:
            self.lines = [s.strip() for s in self.lines if s and s.strip()]
            if not self.lines:
                raise UserError("text: type something to say (or give a recording)")
            if len(self.lines) > MAX_LINES:
                raise UserError(f"text: {len(self.lines)} lines; at most {MAX_LINES} at once")
            long = next((i for i, s in enumerate(self.lines, 1) if len(s) > MAX_TEXT), None)
            if long:
                raise UserError(f"text: line {long} is longer than {MAX_TEXT} characters")
        if self.voice is not None and not re.fullmatch(r"[A-Za-z0-9_+.\-]{1,64}", self.voice):
            raise UserError(f"voice: {self.voice!r} is not a voice name")


class Clips:
    """Renders clips into `out_dir`; keeps each character's renderer and assets between clips."""

    def __init__(self, characters: Characters, out_dir: str | Path, cache_dir: str | Path, config: Path | None):
        self.characters = characters
        self.out_dir = Path(out_dir).expanduser()
        self.cache_dir = Path(cache_dir)
        self.uploads = self.cache_dir / "studio-uploads"
        self.config = config
        self._ready: dict[tuple, tuple] = {}  # (file, stamp, size) -> (assets, renderer)
        self._lock = threading.Lock()

    # --- uploads (recordings, driving videos): kept by content hash, outside the characters folder
    def save_upload(self, name: str, data: bytes, what: str) -> Path:
        limit = MAX_RECORDING_BYTES if what == "recording" else MAX_DRIVER_BYTES
        if len(data) > limit:
            raise UserError(f"{name}: refused: larger than the {limit >> 20} MB upload limit")
        if not data:
            raise UserError(f"{name}: refused: empty file")
        suffix = re.sub(r"[^a-z0-9.]", "", Path(name).suffix.lower())[:8] or ".bin"
        path = self.uploads / (hashlib.sha256(data).hexdigest()[:24] + suffix)
        try:
            self.uploads.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".part")
            tmp.write_bytes(data)
            tmp.replace(path)
        except OSError as e:
            raise UserError(f"{path}: cannot write ({os_reason(e)})") from None
        return path

    # --- rendering -------------------------------------------------------------------------------
    def clip_path(self, name: str) -> Path:
        p = safe_name(self.out_dir, name)
        if not p.is_file() or p.suffix.lstrip(".") not in FORMATS:
            raise UserError(f"{name}: no such clip")
        return p

    def render(self, req: ClipRequest, job) -> dict:
        from worker.audio.sources import check_length
        from worker.audio.talking import MAX_AUDIO_S, TalkingRenderer, lipsync_package
        from worker.audio.tts import synthesize
        from worker.config import voice_from_config

        req.check()
        path = self.characters.path(req.character)
        settings, profile = voice_from_config(self.config if self.config and self.config.exists() else None)
        t0 = time.perf_counter()
        steps = (1 if req.recording else len(req.lines)) + 1
        job.step(0, steps + 1, "voice: speaking the text" if req.recording is None else "voice: reading the recording")
        clips = []
        if req.recording is not None:
            rec = req.recording
            key = {"audio": hashlib.sha256(rec.read_bytes()).hexdigest()}
            check_length(rec, MAX_AUDIO_S, "a voice to render")  # a header that says too long: refused before any work
            # analysed as it is decoded, only its mouth track cached (as `render --audio`)
            clips.append(lipsync_package(self.cache_dir, rec.name, key, None, settings, profile, audio_file=rec))
            job.step(1)
        else:
            for i, line in enumerate(req.lines):
                key = {"text": line, "voice": req.voice or ""}
                clips.append(
                    lipsync_package(
                        self.cache_dir,
                        f"line {i + 1}",
                        key,
                        functools.partial(synthesize, line, req.voice),
                        settings,
                        profile,
                    )
                )
                job.step(i + 1, message=f"voice: line {i + 1} of {len(req.lines)}")
        t_voice = time.perf_counter()
        job.step(message=f"{req.character}: preparing the character")
        assets, renderer, where = self._character(path)
        t_prep = time.perf_counter()
        talker = TalkingRenderer(assets, renderer, self.characters.settings.size, req.driver, req.fps)
        frames = sum(max(1, math.ceil(c.duration * talker.fps)) for c in clips)
        job.step(0, frames, f"rendering {frames} frames")
        results = []
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            bar = job.bar()
            for clip in clips:
                out = self._free_name(path.stem, req.format)
                background = GREEN if req.format == "mp4" else (0, 0, 0)
                r = talker.render(clip, out, background, bar)
                r["file"] = Path(r["out"]).name
                r["label"] = clip.label
                r["voice_s"] = {k: round(v, 3) for k, v in clip.seconds.items()}
                results.append(r)
        finally:
            talker.close()
        t_end = time.perf_counter()
        return {
            "character": req.character,
            "character_from": where,
            "clips": results,
            "seconds": {
                "voice": round(t_voice - t0, 3),
                "character": round(t_prep - t_voice, 3),
                "render": round(t_end - t_prep, 3),
                "total": round(t_end - t0, 3),
            },
        }

    def _character(self, path: Path):
        """(assets, renderer, where): kept in memory per picture version, else from the cache."""
        from worker.render import create_renderer

        st = path.stat()
        key = (path.name, st.st_mtime_ns, st.st_size, self.characters.settings.size)
        with self._lock:
            hit = self._ready.get(key)
        if hit is not None:
            return hit[0], hit[1], "studio memory"
        renderer = create_renderer(self.characters.renderer_name, size=self.characters.settings.size)
        loaded = self.characters.library(renderer).load(path)
        if loaded.assets is None:
            renderer.close()
            raise UserError(loaded.error)
        with self._lock:
            for old in [k for k in self._ready if k[0] == path.name]:  # an older version of the picture
                self._ready.pop(old)[1].close()
            self._ready[key] = (loaded.assets, renderer)
        return loaded.assets, renderer, loaded.status

    def _free_name(self, stem: str, fmt: str) -> Path:
        stem = re.sub(r"[^A-Za-z0-9_-]+", "_", stem) or "clip"
        n = 1 + sum(1 for _ in self.out_dir.glob(f"{stem}-*.{fmt}"))
        while (p := self.out_dir / f"{stem}-{n:03d}.{fmt}").exists():
            n += 1
        return p

    def list(self) -> list[dict]:
        if not self.out_dir.is_dir():
            return []
        files = [p for p in self.out_dir.iterdir() if p.suffix.lstrip(".") in FORMATS and not p.name.startswith(".")]
        return [
            {"file": p.name, "bytes": p.stat().st_size, "time": p.stat().st_mtime}
            for p in sorted(files, key=lambda p: p.stat().st_mtime, reverse=True)
        ]

    def close(self) -> None:
        with self._lock:
            for _, renderer in self._ready.values():
                renderer.close()
            self._ready.clear()
