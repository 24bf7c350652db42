"""Text to speech through the system's offline voices, never a network service.

Linux: the `espeak-ng` program (apt `espeak-ng`). Windows (SAPI5) and macOS (NSSpeechSynthesizer):
pyttsx3, which speaks through them. The result is 16 kHz mono float32 like every other source.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from worker.audio import limits
from worker.audio.sources import decode_audio
from worker.errors import UserError


def _espeak() -> str | None:
    if sys.platform.startswith("linux") or not _has_pyttsx3():
        return shutil.which("espeak-ng") or shutil.which("espeak")
    return None


def _has_pyttsx3() -> bool:
    try:
        import pyttsx3  # noqa: F401
    except Exception:
        return False
    return True


def list_voices() -> list[dict]:
    """The offline voices this machine has: [{"name", "language"}]."""
    exe = _espeak()
    if exe:
        out = subprocess.run([exe, "--voices"], capture_output=True, text=True, timeout=30).stdout
        voices = []
        for line in out.splitlines()[1:]:
            parts = line.split()
            if len(parts) >= 4:
                voices.append({"name": parts[1], "language": parts[1], "description": parts[3]})
        return voices
    if _has_pyttsx3():
        import pyttsx3

        engine = pyttsx3.init()
        return [
            {"name": v.id, "language": ",".join(map(str, v.languages or [])), "description": v.name}
            for v in engine.getProperty("voices")
        ]
    return []


def _espeak_names(exe: str, which: str) -> set[str]:
    """Names espeak-ng accepts for `--voices` (languages) or `--voices=variant`, lower case."""
    arg = "--voices" if which == "voices" else "--voices=variant"
    out = subprocess.run([exe, arg], capture_output=True, text=True, timeout=30).stdout
    names = set()
    for line in out.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 5:
            names.update({parts[1].lower(), parts[3].lower(), parts[4].rsplit("/", 1)[-1].lower()})
    return names


def _check_espeak_voice(exe: str, voice: str) -> None:
    """espeak-ng reads an unknown name such as "no-such" as language "no": check names ourselves."""
    base, _, variant = voice.lower().partition("+")
    if base not in _espeak_names(exe, "voices") or (variant and variant not in _espeak_names(exe, "variant")):
        raise UserError(f"--voice {voice!r}: no such voice (see `espeak-ng --voices`; variants as en+f3)")


def synthesize(text: str, voice: str | None = None, words_per_minute: int | None = None) -> np.ndarray:
    """Speak `text` with the offline voice `voice` (default: the system's) -> 16 kHz mono float32."""
    if not text or not text.strip():
        raise UserError("--text: the text is empty")
    with tempfile.TemporaryDirectory(prefix="sa-tts-") as d:
        wav = Path(d) / "speech.wav"
        exe = _espeak()
        if exe:
            cmd = [exe, "-w", str(wav)]
            if voice:
                _check_espeak_voice(exe, voice)
                cmd += ["-v", voice]
            if words_per_minute:
                cmd += ["-s", str(int(words_per_minute))]
            r = subprocess.run([*cmd, "--", text], capture_output=True, text=True, timeout=300)
            if r.returncode != 0:
                msg = (r.stderr or r.stdout).strip().splitlines()
                if voice and any("voice" in m.lower() for m in msg):
                    raise UserError(f"--voice {voice!r}: no such voice (see `espeak-ng --voices`)")
                raise UserError(f"text to speech failed: {msg[-1] if msg else r.returncode}")
        elif _has_pyttsx3():
            _pyttsx3_to_file(text, voice, words_per_minute, wav)
        else:
            raise UserError(
                "text to speech: no offline voice found (Linux: install espeak-ng; Windows/macOS: pip install pyttsx3)"
            )
        if not wav.is_file() or wav.stat().st_size <= 44:
            raise UserError("text to speech produced no audio")
        samples = decode_audio(wav, limits.RENDER_VOICE_S, "a line of text to speech")
    if float(np.abs(samples).max(initial=0.0)) < 1e-4:
        raise UserError("text to speech produced only silence")
    return samples


def _pyttsx3_to_file(text: str, voice: str | None, wpm: int | None, wav: Path) -> None:
    import pyttsx3

    engine = pyttsx3.init()
    if voice:
        voices = engine.getProperty("voices")
        hit = next((v for v in voices if voice in (v.id, v.name)), None) or next(
            (v for v in voices if voice.lower() in f"{v.id} {v.name}".lower()), None
        )
        if hit is None:
            raise UserError(f"--voice {voice!r}: no such voice (have: {', '.join(v.name for v in voices)})")
        engine.setProperty("voice", hit.id)
    if wpm:
        engine.setProperty("rate", int(wpm))
    engine.save_to_file(text, os.fspath(wav))
    engine.runAndWait()
