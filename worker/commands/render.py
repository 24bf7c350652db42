"""`stream-animator render`: a talking clip of a character from an audio file or from text.

The mouth comes from the voice (the live lip-sync analysis, run offline with look-ahead), head
and eyes from `--driver` or idle motion with blinks; the voice is muxed in (AAC in .mp4/.mov,
Opus in .webm). `--batch LINES.txt` renders one clip per line with the character prepared once.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

from worker.commands.arguments import add_renderer, add_size
from worker.errors import UserError
from worker.paths import DEMO_CHARACTER
from worker.stopping import stop_on_signals


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--character", default=str(DEMO_CHARACTER), help="character image (default: bundled sample)")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--audio", help="speech to say: an audio or video file (WAV, MP3, MP4, ...)")
    what.add_argument("--text", help="text to say with an offline system voice")
    what.add_argument(
        "--batch", metavar="LINES.txt", help="one clip per line: text to say, or 'audio: PATH' (# starts a comment)"
    )
    p.add_argument("--voice", help="system voice for --text/--batch (Linux: an espeak-ng voice, e.g. en-us, en+f3)")
    p.add_argument("--driver", help="video whose head and eyes drive the character (default: idle motion)")
    p.add_argument(
        "--out",
        help="output .mp4 (default out/render.mp4), .mov/.webm with alpha; "
        "with --batch a folder (default out/render-batch)",
    )
    p.add_argument("--format", default="mp4", choices=("mp4", "mov", "webm"), help="--batch clip format")
    add_size(p)
    p.add_argument("--fps", type=float, default=30.0, help="frame rate without --driver (default 30)")
    add_renderer(p)
    p.add_argument("--background", default="#00b140", help="background colour for .mp4 (default green screen)")
    p.add_argument("--config", help="config YAML (its voice: settings and calibration are used)")
    p.add_argument("--cache", default=None, help="cache folder (characters and lip-sync packages)")
    p.add_argument("--json", action="store_true", help="print one JSON object: frames, duration, sync, stage times")


def run(args: argparse.Namespace) -> int:
    with stop_on_signals():  # a render stopped by SIGTERM/SIGHUP cleans up as Ctrl+C does
        return _render(args)


def _render(args: argparse.Namespace) -> int:
    from worker.audio.features import RATE
    from worker.audio.sources import hms, probe_seconds
    from worker.audio.talking import MAX_AUDIO_S, TalkingRenderer, VoiceClip, lipsync_package
    from worker.audio.tts import synthesize
    from worker.config import voice_from_config
    from worker.output.base import parse_colour
    from worker.paths import default_cache_dir
    from worker.progress import progress
    from worker.stats import stats_ms

    if not 1 <= args.fps <= 120:
        raise UserError(f"--fps: {args.fps} is out of range (1..120)")
    background = parse_colour(args.background, "--background")
    settings, profile = voice_from_config(args.config)
    cache = Path(args.cache) if args.cache else default_cache_dir()
    t_all = time.perf_counter()

    def clip_for(text: str | None, audio: str | None, label: str) -> VoiceClip:
        if audio is not None:
            p = Path(audio)
            stated = probe_seconds(p)  # UserError naming the file when it is missing or not audio
            if stated is not None and stated > MAX_AUDIO_S:
                raise UserError(f"{p}: {hms(stated)} long; render takes at most {hms(MAX_AUDIO_S)} of voice")
            try:
                digest = hashlib.sha256()
                with p.open("rb") as f:  # hashlib.file_digest is Python 3.11+; 3.10 is supported
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        digest.update(chunk)
                key = {"audio": digest.hexdigest()}
            except OSError as e:
                raise UserError(f"{p}: cannot read ({e.strerror})") from None
            long = stated is not None and stated > 60
            if long and not args.json:
                print(f"analysing {p}: {hms(stated)} of voice", file=sys.stderr)
            with progress(int(stated or 0) or None, "analysing voice", "s", disable=args.json or not long) as bar:
                counter = Estimate(stated or 0.0, bar, args.json or not long, "analysing the voice", "s of voice")
                return lipsync_package(
                    cache,
                    label,
                    key,
                    None,
                    settings,
                    profile,
                    audio_file=p,
                    on_samples=lambda k: counter.update(k / RATE),
                )
        if not text or not text.strip():
            raise UserError(f"{label}: the text is empty")
        key = {"text": text, "voice": args.voice or ""}
        return lipsync_package(cache, label, key, lambda: synthesize(text, args.voice), settings, profile)

    # the lines first: bad input fails before any rendering
    if args.batch:
        if args.out and Path(args.out).suffix.lower() in (".mp4", ".mov", ".webm"):
            raise UserError(
                f"--out {args.out}: with --batch, --out is a folder for the clips (clip_001.{args.format}, ...); "
                "--format picks their type"
            )
        jobs = _batch_lines(Path(args.batch))
        folder = Path(args.out or "out/render-batch")
        outs = [folder / f"clip_{i + 1:03d}.{args.format}" for i in range(len(jobs))]
    else:
        if args.format != "mp4":
            raise UserError(f"--format {args.format}: only with --batch; one clip takes its type from --out")
        jobs = [(args.text, args.audio, "--text" if args.text is not None else str(args.audio))]
        outs = [Path(args.out or "out/render.mp4")]
        if outs[0].is_dir():  # before the render, not after it
            raise UserError(f"--out {outs[0]}: is a folder; name a file in it, e.g. {outs[0] / 'render.mp4'}")
    clips = []
    for text, audio, label in jobs:
        try:
            clips.append(clip_for(text, audio, label))
        except UserError as e:
            raise UserError(f"{label}: {e}" if args.batch else str(e)) from None
    t_voice = time.perf_counter()

    assets, renderer = _prepare(args, cache)
    t_prep = time.perf_counter()
    talker = TalkingRenderer(assets, renderer, args.size, args.driver, args.fps)
    results = []
    try:
        total = sum(int(c.duration * talker.fps) + 1 for c in clips)
        with progress(total, "rendering", "frame", disable=args.json) as bar:
            counter = Estimate(total, bar, quiet=args.json)
            for clip, out in zip(clips, outs, strict=True):
                results.append(talker.render(clip, out, background, counter))
    finally:
        talker.close()
        renderer.close()
    stages = {k: stats_ms(v) for k, v in talker.times.items() if v}
    summary = {
        "character": str(args.character),
        "driver": args.driver,
        "clips": results if args.batch else None,
        **({} if args.batch else results[0]),
        "frames": sum(r["frames"] for r in results),
        "duration_s": round(sum(r["duration_s"] for r in results), 3),
        "seconds": {
            "voice_and_analysis": round(t_voice - t_all, 3),
            "prepare_character": round(t_prep - t_voice, 3),
            "render": round(time.perf_counter() - t_prep, 3),
            "total": round(time.perf_counter() - t_all, 3),
        },
        "voice_s": [{k: round(v, 4) for k, v in c.seconds.items()} for c in clips],
        "stages_ms": stages,
    }
    if not args.batch:
        summary.pop("clips")
    if args.json:
        print(json.dumps(summary))
    else:
        for r in results:
            off = r.get("audio_offset_ms")
            sync = "silent audio" if off is None else f"audio offset {off:+.1f} ms"
            print(f"wrote {r['out']}: {r['frames']} frames, {r['duration_s']:.2f} s, {sync}", file=sys.stderr)
        print("median ms: " + ", ".join(f"{k} {v['median']:.2f}" for k, v in stages.items()), file=sys.stderr)
    return 0


def _batch_lines(path: Path) -> list[tuple[str | None, str | None, str]]:
    """(text, audio, label) per line; the label `FILE:LINE` names the line in every error about it."""
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()  # Windows Notepad starts with a BOM
    except FileNotFoundError:
        raise UserError(f"{path}: batch file not found") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder, not a batch file") from None
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start}); save it as UTF-8") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None
    jobs: list[tuple[str | None, str | None, str]] = []
    for no, line in enumerate(lines, 1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        label = f"{path}:{no}"
        if s.lower().startswith("audio:"):
            audio = s[6:].strip()
            if not audio:
                raise UserError(f"{label}: 'audio:' names no file (the form is 'audio: PATH')")
            p = Path(audio).expanduser()
            p = p if p.is_absolute() else path.parent / p
            if p.is_dir():
                raise UserError(f"{label}: {p} is a folder, not an audio file")
            jobs.append((None, str(p), label))
        else:
            jobs.append((s, None, label))
    if not jobs:
        raise UserError(f"{path}: no lines to render")
    return jobs


class Estimate:
    """Counts work done into the progress bar and, for long work, says how long it will take
    (measured on what is done so far) every `every_s`, so a log without a terminal bar shows it too."""

    def __init__(
        self,
        total: float,
        bar,
        quiet: bool = False,
        what: str = "rendering",
        unit: str = "frames",
        every_s: float = 60.0,
    ) -> None:
        self.total, self.bar, self.quiet, self.what, self.unit = total, bar, quiet, what, unit
        self.done = 0.0
        self.t0 = time.perf_counter()
        self.next_s = 5.0 if not quiet else float("inf")  # the first estimate after 5 s, then every minute
        self.every_s = every_s

    def update(self, n: float = 1) -> None:
        self.done += n
        self.bar.update(n)
        spent = time.perf_counter() - self.t0
        if spent < self.next_s or self.done <= 0 or self.total <= self.done:
            return
        from worker.audio.sources import hms

        left = spent / self.done * (self.total - self.done)
        if left > 30:
            print(
                f"{self.what}: {self.done:.0f} of {self.total:.0f} {self.unit}, about {hms(left)} left",
                file=sys.stderr,
                flush=True,
            )
        self.next_s = spent + self.every_s


def _prepare(args: argparse.Namespace, cache: Path):
    """The character's assets (from the character cache) and a renderer, once."""
    from worker.characters.cache import open_cache
    from worker.characters.library import CharacterLibrary
    from worker.characters.preprocess import PreprocessSettings
    from worker.render import create_renderer

    character = Path(args.character)
    settings = PreprocessSettings(size=args.size)
    settings.validate()
    renderer = create_renderer(args.renderer, size=args.size)
    # the renderer's per-character arrays come with the character, cached beside it (as in `demo`)
    loaded = CharacterLibrary(character.parent, open_cache(cache), settings, preparer=renderer).load(character)
    if loaded.assets is None:
        renderer.close()
        raise UserError(loaded.error)
    for w in loaded.assets.meta.get("warnings", []):
        print(f"warning: {character}: {w}", file=sys.stderr)
    return loaded.assets, renderer
