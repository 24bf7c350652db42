"""Every command with bad paths and bad files: it must stop with one line naming the path, a
non-zero exit, no traceback, no input changed and nothing left behind.

Each case runs in its own empty working folder (parallel-safe) with the inputs in a shared
read-only-by-convention folder that is hashed before and after the whole run.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from worker.paths import SAMPLE_CHARACTER, SAMPLE_DRIVER

REPO = Path(__file__).resolve().parents[1]
# library chatter on stderr that is not ours (MediaPipe, absl, OpenCV's camera probing)
CHATTER = re.compile(r"^(\s*$|[IWE]\d{4} |WARNING: All log messages|INFO: Created TensorFlow|\[ WARN:)")
FAST = ["--size", "128", "--max-frames", "3"]


def _inputs(d: Path) -> None:
    d.mkdir()
    (d / "text.mp4").write_text("not a video\n")
    (d / "text.png").write_text("not a picture\n")
    (d / "text.yaml").write_text("- just\n- a list\n")
    (d / "empty.png").write_bytes(b"")
    data = SAMPLE_CHARACTER.read_bytes()
    (d / "trunc.png").write_bytes(data[: len(data) // 3])
    Image.new("RGBA", (256, 256), (200, 100, 50, 0)).save(d / "clear.png")
    frames = [Image.open(SAMPLE_CHARACTER).convert("RGB").resize((128, 128)) for _ in range(2)]
    frames[0].save(d / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    with wave.open(str(d / "sound.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((np.sin(np.arange(16000) * 0.2) * 8000).astype(np.int16).tobytes())
    _voice_inputs(d)
    (d / "folder").mkdir()
    (d / "a_file").write_text("a file where a folder belongs\n")
    (d / "nochars").mkdir()
    (d / "nochars" / "notes.txt").write_text("no pictures here\n")


def _wav(path: Path, x: np.ndarray, rate: int = 16000) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())


def _voice_inputs(d: Path) -> None:
    """Held vowels and speech (espeak-ng), over-long recordings, batch files with bad lines, a read-only config."""
    from worker.audio.held_vowels import held_vowel
    from worker.audio.tts import synthesize

    for v in "AIUEO":
        _wav(d / f"vowel_{v}.wav", held_vowel(v, "en+f3"))
    _wav(d / "speech.wav", synthesize("Hello everyone, welcome back to the stream."))
    _wav(d / "long61.wav", np.zeros(61 * 16000))  # a calibration recording is at most 60 s
    _wav(d / "five_hours.wav", np.zeros(40000), rate=2)  # 80 kB that play for 5.6 hours (render: at most 4)
    (d / "lines.txt").write_text("Hello.\n")
    (d / "lines_empty_audio.txt").write_text("# a clip\naudio:\n")
    (d / "lines_missing_audio.txt").write_text("Hello.\naudio: nope.wav\n")
    (d / "readonly.yaml").write_text("# mine\nvoice:\n  gain_db: 3\n")
    os.chmod(d / "readonly.yaml", 0o444)


def _cases(i: Path) -> list[tuple[list[str], str]]:
    """(command line, the path its one line must name)."""
    missing, gone = str(i / "missing.png"), "/proc/nope/x.mp4"
    drv, chr_ = str(SAMPLE_DRIVER), str(SAMPLE_CHARACTER)
    vowels = [str(i / f"vowel_{v}.wav") for v in "AIUEO"]
    cases: list[tuple[list[str], str]] = []
    for bad in ("missing.png", "text.png", "empty.png", "trunc.png", "clear.png", "anim.gif", "folder"):
        cases.append((["demo", "--character", str(i / bad), "--out", "o.mp4", *FAST], bad))
        cases.append((["check", str(i / bad)], bad))
    for bad in ("missing.mp4", "text.mp4", "sound.wav", "folder"):
        cases.append((["demo", "--driver", str(i / bad), "--out", "o.mp4", *FAST], bad))
        cases.append((["run", "--source", str(i / bad), "--output", "file:o.mp4", "--duration", "1"], bad))
    for out in (gone, str(i / "a_file" / "x.mp4"), "x.avi", str(i / "a_file")):
        cases.append((["demo", "--out", out, *FAST], out))
    cases += [
        (["demo", "--out", "", *FAST], "--out"),
        (["demo", "--driver", drv, "--out", drv, *FAST], drv),
        (["demo", "--character", chr_, "--out", str(Path(chr_).parent), *FAST], str(Path(chr_).parent)),
        (["demo", "--sheet", "/proc/nope/s.png", "--out", "o.mp4", *FAST], "/proc/nope/s.png"),
        (["demo", "--sheet", "s.gif", "--out", "o.mp4", *FAST], "s.gif"),
        (["demo", "--cache", str(i / "a_file"), "--out", "o.mp4", *FAST], "a_file"),
        (["demo", "--cache", "/proc/nope/c", "--out", "o.mp4", *FAST], "/proc/nope/c"),
        (["run", "--config", str(i / "missing.yaml")], "missing.yaml"),
        (["run", "--config", str(i / "text.yaml")], "text.yaml"),
        (["run", "--config", str(i / "folder")], "folder"),
        (["run", "--characters", str(i / "missing"), "--output", "file:o.mp4"], "missing"),
        (["run", "--characters", str(i / "a_file"), "--output", "file:o.mp4"], "a_file"),
        (["run", "--characters", str(i / "nochars"), "--output", "file:o.mp4"], "nochars"),
        (["run", "--character", missing, "--output", "file:o.mp4"], missing),
        (["run", "--character", str(i / "folder"), "--output", "file:o.mp4"], "folder"),
        (["run", "--source", drv, "--output", f"file:{gone}"], gone),
        (["run", "--source", drv, "--output", f"file:{i / 'a_file' / 'x.mp4'}"], "a_file"),
        (["preprocess", str(i / "missing")], "missing"),
        (["preprocess", str(i / "a_file")], "a_file"),
        (["preprocess", str(i / "nochars")], "nochars"),
        (["preprocess", "--cache", str(i / "a_file")], "a_file"),
        (["cache", "--cache", str(i / "a_file")], "a_file"),
        (["bench", "--clip", str(i / "missing.mp4")], "missing.mp4"),
        (["bench", "--clip", str(i / "text.mp4")], "text.mp4"),
        (["bench", "--clip", drv, "--characters", missing], missing),
        (["render", "--text", "hi", "--character", missing, "--size", "128"], missing),
        (["render", "--text", "hi", "--character", str(i / "text.png"), "--size", "128"], "text.png"),
        (["render", "--audio", str(i / "missing.wav"), "--size", "128"], "missing.wav"),
        (["render", "--audio", str(i / "text.mp4"), "--size", "128"], "text.mp4"),
        (["render", "--text", "hi", "--driver", str(i / "text.mp4"), "--size", "128"], "text.mp4"),
        (["render", "--text", "hi", "--out", gone, "--size", "128"], gone),
        (["render", "--batch", str(i / "missing.txt"), "--size", "128"], "missing.txt"),
        (["render", "--text", "hi", "--cache", str(i / "a_file"), "--size", "128"], "a_file"),
        (["calibrate-voice", "--config", str(i / "c.yaml"), "--files", *[missing] * 5], missing),
        (["calibrate-voice", "--config", str(i / "folder"), "--files", *[str(i / "sound.wav")] * 5], "folder"),
        (["render", "--batch", str(i / "lines_empty_audio.txt"), "--size", "128"], "lines_empty_audio.txt:2"),
        (["render", "--batch", str(i / "lines_missing_audio.txt"), "--size", "128"], "lines_missing_audio.txt:2"),
        (["render", "--batch", str(i / "lines.txt"), "--out", "o.mp4", "--size", "128"], "o.mp4"),
        (["render", "--text", "hi", "--format", "webm", "--size", "128"], "--format"),
        (["render", "--audio", str(i / "five_hours.wav"), "--size", "128"], "five_hours.wav"),
        (["run", "--lipsync", "always", "--output", "file:o.mp4", "--duration", "1"], "--lipsync"),
        (["calibrate-voice", "--config", "c.yaml", "--files", str(i / "long61.wav"), *vowels[1:]], "long61.wav"),
        (["calibrate-voice", "--config", "c.yaml", "--files", vowels[0], *vowels[:4]], "vowel_A.wav (vowel I)"),
        (
            ["calibrate-voice", "--config", "c.yaml", "--files", *vowels[:2], str(i / "sound.wav"), *vowels[3:]],
            "sound.wav",
        ),
        (
            ["calibrate-voice", "--config", "c.yaml", "--files", *vowels, "--silence", str(i / "speech.wav")],
            "speech.wav",
        ),
        (["calibrate-voice", "--config", str(i / "readonly.yaml"), "--files", *vowels], "readonly.yaml"),
        (["obs-setup", "--obs-config", str(i / "missing")], "missing"),
        (["obs-setup", "--obs-config", str(i / "a_file")], "a_file"),
        (["mark", chr_, "--no-browser", "--port", "99999"], "--port 99999"),
        (["render", "--text", "hi", "--out", str(i / "folder"), "--size", "128"], "folder"),
    ]
    return cases


def _snapshot(d: Path) -> dict[str, str]:
    return {
        str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        for p in sorted(d.rglob("*"))
    }


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    cwd.mkdir()
    return subprocess.run(
        [sys.executable, "-m", "worker", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def test_every_command_with_bad_paths_and_files(tmp_path):
    inputs = tmp_path / "inputs"
    _inputs(inputs)
    before = _snapshot(inputs)
    bundled = {p: hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in (SAMPLE_DRIVER, SAMPLE_CHARACTER)}
    cache = tmp_path / "cache"
    env = dict(
        os.environ,
        PYTHONPATH=str(REPO),
        STREAM_ANIMATOR_CACHE=str(cache),
        STREAM_ANIMATOR_LOGS=str(tmp_path / "logs"),
        STREAM_ANIMATOR_OBS_CONFIG=str(tmp_path / "no-obs"),
    )
    env.pop("DISPLAY", None)
    cases = _cases(inputs)
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda n: _run(cases[n][0], tmp_path / f"case{n}", env), range(len(cases))))
    problems = []
    for n, ((argv, named), r) in enumerate(zip(cases, results, strict=True)):
        text = r.stdout + r.stderr
        lines = [line for line in text.splitlines() if not CHATTER.match(line)]
        ours = [line for line in lines if line.startswith(("error:", "NO "))]
        why = []
        if r.returncode == 0:
            why.append("exit 0")
        if "Traceback" in text:
            why.append("traceback")
        if len(ours) != 1 or named not in ours[0]:
            why.append(f"not one line naming {named!r}")
        if re.search(r"\[Errno -?\d+\]", text):
            why.append("raw [Errno N]")
        left = sorted(p.name for p in (tmp_path / f"case{n}").rglob("*"))
        if left:
            why.append(f"left behind: {left}")
        if why:
            problems.append(f"{' '.join(argv)}: {'; '.join(why)}\n    {lines[-3:]}")
    assert _snapshot(inputs) == before, "an input file changed"
    assert {p: hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in bundled} == bundled
    assert not problems, f"{len(problems)} of {len(cases)} cases:\n" + "\n".join(problems)
