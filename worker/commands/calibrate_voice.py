"""`stream-animator calibrate-voice`: measure your own vowels so the mouth shapes follow your voice.

Say each vowel (A as in "father", I as in "see", U as in "food", E as in "bed", O as in "thought")
for about two seconds when asked, into a microphone, or give one recording per vowel with
`--files`. The result goes into the config file under voice.calibration.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading

import numpy as np

from worker.errors import UserError

HINTS = {
    "A": "a as in 'father'",
    "I": "ee as in 'see'",
    "U": "oo as in 'food'",
    "E": "e as in 'bed'",
    "O": "aw as in 'thought'",
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        default="stream-animator.yaml",
        help="config file to store the calibration in (created if missing; default stream-animator.yaml)",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--mic", default="default", help="microphone: default, an index or a name (see microphones)")
    src.add_argument(
        "--files",
        nargs=5,
        metavar=("A", "I", "U", "E", "O"),
        help="one recording per vowel, in the order A I U E O (any audio or video file, at most 60 s each)",
    )
    p.add_argument("--silence", help="with --files: a recording of the quiet room (sets the noise floor)")
    # recordings: at most 60 s each (worker.audio.calibration.MAX_RECORDING_S)
    p.add_argument("--seconds", type=float, default=2.0, help="seconds to record each vowel (default 2)")
    p.add_argument("--json", action="store_true", help="print the stored calibration summary as JSON")


def run(args: argparse.Namespace) -> int:
    from worker.audio.calibration import MAX_RECORDING_S, calibrate
    from worker.audio.sources import decode_audio
    from worker.config import check_calibration_target, store_voice_calibration
    from worker.retarget.mouth_signal import VOWELS

    check_calibration_target(args.config)  # a config that cannot take the result fails before any recording
    if args.silence and not args.files:
        raise UserError("--silence: only with --files (with a microphone the quiet room is recorded first)")
    silence = None
    names = {}
    if args.files:
        what = "a calibration recording (a held vowel takes a few seconds)"
        recordings = {v: decode_audio(f, MAX_RECORDING_S, what) for v, f in zip(VOWELS, args.files, strict=True)}
        names = {v: f"{f} (vowel {v})" for v, f in zip(VOWELS, args.files, strict=True)}
        if args.silence:
            silence = decode_audio(args.silence, MAX_RECORDING_S, what)
            names["silence"] = f"--silence {args.silence}"
        source = "files"
    else:
        if not 0.5 <= args.seconds <= 10:
            raise UserError(f"--seconds: {args.seconds} is out of range (0.5..10)")
        recordings, silence = _record_all(args.mic, args.seconds, quiet=args.json)
        source = f"microphone {args.mic}"
    warnings: list[str] = []
    profile = calibrate(recordings, silence, source=source, names=names, warnings=warnings)
    store_voice_calibration(args.config, profile)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    summary = {
        "config": args.config,
        "source": source,
        "floor_db": round(profile.floor_db, 1),
        "peak_db": round(profile.peak_db, 1),
        "templates": {v: len(profile.templates[v]) for v in VOWELS},
        "warnings": warnings,
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"stored your voice in {args.config} (voice.calibration): level {profile.floor_db:.0f} .. "
            f"{profile.peak_db:.0f} dBFS",
            file=sys.stderr,
        )
    return 0


def _record(source, seconds: float) -> np.ndarray:
    from worker.audio.features import HOP, RATE

    need = int(seconds * RATE / HOP)
    hops: list[np.ndarray] = []
    done = threading.Event()

    def on_hop(hop: np.ndarray, t: float) -> None:
        if len(hops) < need:
            hops.append(hop.copy())
        if len(hops) >= need:
            done.set()

    source.start(on_hop)
    try:
        if not done.wait(seconds + 5.0):
            raise UserError(f"microphone {source.device.name!r}: no sound arrived")
    finally:
        source.stop()
    return np.concatenate(hops)


def _record_all(mic: str, seconds: float, quiet: bool) -> tuple[dict[str, np.ndarray], np.ndarray]:
    from worker.audio.sources import MicAudioSource
    from worker.retarget.mouth_signal import VOWELS

    def say(msg: str) -> None:
        if not quiet:
            print(msg, file=sys.stderr)

    MicAudioSource(mic)  # a missing microphone fails here, before any prompt
    say(f"stay quiet for {seconds:g} s ...")
    silence = _record(MicAudioSource(mic), seconds)
    out = {}
    for v in VOWELS:
        if not quiet:
            try:
                input(f"press Enter, then hold {v} ({HINTS[v]}) for {seconds:g} s ")
            except EOFError:
                raise UserError(
                    "calibrate-voice: no terminal to prompt on; record the vowels and use --files"
                ) from None
        out[v] = _record(MicAudioSource(mic), seconds)
        say("  got it")
    return out, silence
