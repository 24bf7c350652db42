"""Voice inputs a user really gives: hours-long files in flat memory, renders stopped by any signal
leave nothing behind, calibrate-voice keeps the user's YAML and refuses recordings that cannot be
what they claim, Windows text files, and the lip-sync cache that `cache --clear` empties.

(The one-line errors of the same items are cases of tests/test_fuzz_paths.py.)
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
import tracemalloc
import wave
from pathlib import Path

import numpy as np
import pytest

from worker.audio.features import RATE
from worker.errors import UserError

REPO = Path(__file__).resolve().parents[1]
LONG_MIN = 4  # minutes of the long voice file (15 MB of samples as float32, 46 MB at 48 kHz: 3 copies or more
# when decoded whole; its mouth track is 0.8 MB)


def write_wav(path: Path, x: np.ndarray | None = None, seconds: float = 0.0) -> Path:
    """A 16 kHz mono WAV of `x`, or of `seconds` of silence written a minute at a time."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        if x is not None:
            w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())
        minute = np.zeros(60 * RATE, "<i2").tobytes()
        for _ in range(int(seconds // 60)):
            w.writeframes(minute)
        w.writeframes(np.zeros(int(seconds % 60 * RATE), "<i2").tobytes())
    return path


def env_for(tmp: Path, cache: Path) -> dict[str, str]:
    logs = str(tmp / "logs")
    return dict(os.environ, PYTHONPATH=str(REPO), STREAM_ANIMATOR_CACHE=str(cache), STREAM_ANIMATOR_LOGS=logs)


def cli(*args: str, tmp: Path, cache: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "worker", *args],
        capture_output=True,
        text=True,
        cwd=tmp,
        env=env_for(tmp, cache),
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def voices(tmp_path_factory):
    """Half a minute and LONG_MIN minutes of (silent) voice, and five held vowels spoken by espeak-ng."""
    from worker.audio.held_vowels import held_vowel

    d = tmp_path_factory.mktemp("voices")
    out = {"short": write_wav(d / "short.wav", seconds=30), "long": write_wav(d / "long.wav", seconds=LONG_MIN * 60)}
    for v in "AIUEO":
        out[v] = write_wav(d / f"{v}.wav", held_vowel(v, "en+f3"))
    return out


# --- long inputs: flat memory, and every stop cleans up ------------------------------------------


def _render_until_writing(audio: Path, out: Path, cache: Path, sig: signal.Signals) -> tuple[int, int, str]:
    """`render --audio` until the clip is being written, then `sig`: (exit code, peak RSS in KiB, stderr)."""
    err = out.parent / f"{out.stem}.err"
    with open(err, "w") as errf:
        p = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "worker",
                "render",
                "--audio",
                str(audio),
                "--size",
                "64",
                "--fps",
                "30",
                "--out",
                str(out),
            ],
            cwd=out.parent,
            env=env_for(out.parent, cache),
            stdout=subprocess.DEVNULL,
            stderr=errf,
        )
        partial = out.with_name(f".{out.stem}.partial{out.suffix}")
        deadline = time.monotonic() + 240
        while not partial.exists() and p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert partial.exists(), err.read_text()
        time.sleep(0.3)
        p.send_signal(sig)
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, usage.ru_maxrss, err.read_text()


def test_long_voice_renders_in_flat_memory_and_any_stop_removes_the_partial_clip(voices, tmp_path):
    cache = tmp_path / "cache"
    short_dir, long_dir = tmp_path / "short", tmp_path / "long"
    short_dir.mkdir()
    long_dir.mkdir()
    rc_short, _, err_short = _render_until_writing(voices["short"], short_dir / "a.mp4", cache, signal.SIGHUP)
    rc_long, rss_long, err_long = _render_until_writing(voices["long"], long_dir / "a.mp4", cache, signal.SIGTERM)
    # another half minute with the character cached, as it was for the long voice: both analysed, both cached
    other = write_wav(tmp_path / "other.wav", seconds=31)
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    rc_other, rss_short, err_other = _render_until_writing(other, other_dir / "b.mp4", cache, signal.SIGTERM)
    # the third is written for 8-14 s after its partial file appears; its stop once went unheard
    # (its raise swallowed: see tests/test_stopping.py) and it was written whole
    for rc, err, d in (
        (rc_short, err_short, short_dir),
        (rc_long, err_long, long_dir),
        (rc_other, err_other, other_dir),
    ):
        assert rc == 130 and "Traceback" not in err, err
        assert sorted(p.name for p in d.iterdir() if p.suffix != ".err") == ["logs"]  # no clip, no .partial
    # an 8x longer voice costs only its mouth track (32 bytes per 10 ms); decoded whole, its samples
    # would take 15 MB at 16 kHz, 46 MB at the container's 48 kHz, and the copies made on the way
    assert rss_long - rss_short < 30 * 1024, (rss_short, rss_long)
    assert f"analysing {voices['long']}: 4:00 min of voice" in err_long
    # the lip-sync cache keeps an audio file's mouth track only, never its decoded voice
    lip = sorted((cache / "lipsync").iterdir())
    assert [p.name.split(".", 1)[1] for p in lip] == ["json", "mouth.npy"] * 3
    assert sum(p.stat().st_size for p in lip) < 1.5e6


def test_live_file_voice_is_decoded_as_it_plays(voices):
    """`run --mic FILE`: the file source holds a few hops, not the file (an hour would be 230 MB)."""
    from worker.audio.sources import FileAudioSource

    hops = []
    tracemalloc.start()
    try:
        src = FileAudioSource(voices["long"], loop=False)
        src.start(lambda hop, t: hops.append(len(hop)))
        time.sleep(0.5)
        src.stop()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(hops) >= 10 and set(hops) == {160}
    assert peak < 4e6, peak  # the whole file decoded would be 15 MB


def test_streamed_analysis_equals_the_whole_clip_analysis():
    from worker.audio.analysis import MouthAnalyzer
    from worker.audio.tts import synthesize

    x = np.concatenate([synthesize("Streaming keeps memory flat."), np.zeros(777, np.float32)])
    whole = MouthAnalyzer().analyze(x)
    cuts = np.sort(np.random.default_rng(3).integers(0, len(x), 25))
    pieces = MouthAnalyzer().analyze_stream(np.split(x, cuts))
    assert whole.shape == pieces.shape and np.array_equal(whole, pieces)


def test_decoding_stops_at_the_stated_limit(voices):
    from worker.audio.sources import decode_audio, iter_audio

    with pytest.raises(UserError, match=r"short\.wav: 30 s long; a test may be at most 2 s"):
        decode_audio(voices["short"], 2.0, "a test")  # the header tells
    with pytest.raises(UserError, match=r"short\.wav: longer than 2 s, the limit for a test"):
        for _ in iter_audio(voices["short"], max_seconds=2.0, what="a test"):  # the decoded samples tell
            pass


def test_every_way_in_states_its_limit(voices, tmp_path):
    """The studio's calibration and a `say` with a file hold at the limits of worker.audio.limits,
    in one line (the decoded samples are stopped at the limit too: test_decoding_stops_at_the_stated_limit)."""
    import base64

    from worker.audio import limits
    from worker.studio.app import _calibrate
    from worker.web.ws_output import _decode_b64_audio

    long = write_wav(tmp_path / "long.wav", seconds=limits.RECORDING_S + 5)

    class Job:
        def step(self, *a, **k) -> None:
            pass

    files = {v: voices[v] for v in "AIUE"} | {"O": long}
    with pytest.raises(UserError, match=r"long\.wav: 1:05 min long; a calibration recording .* at most 1:00 min"):
        _calibrate(files, tmp_path / "config.yaml", Job())
    assert not (tmp_path / "config.yaml").exists()
    with pytest.raises(UserError, match=r"^'audio': longer than 60 s, the limit for a line$"):
        _decode_b64_audio(base64.b64encode(long.read_bytes()).decode())
    assert _decode_b64_audio(base64.b64encode(voices["A"].read_bytes()).decode()).size > RATE // 2


# --- calibrate-voice: the user's YAML, and recordings that are not what they claim ---------------

USER_YAML = """\
# my stream settings
voice:
  gain_db: 3   # the mic is quiet

  # gate for the fan
  gate_db: -45
outputs:
  - {type: obs}   # only OBS
"""


def test_calibrate_voice_changes_only_voice_calibration(voices, tmp_path):
    cfg = tmp_path / "my.yaml"
    cfg.write_bytes(USER_YAML.replace("\n", "\r\n").encode())  # as Windows writes it
    os.chmod(cfg, 0o640)
    files = [str(voices[v]) for v in "AIUEO"]
    r = cli("calibrate-voice", "--config", str(cfg), "--files", *files, "--json", tmp=tmp_path, cache=tmp_path / "c")
    assert r.returncode == 0, r.stderr
    first = cfg.read_bytes().decode()
    assert stat.S_IMODE(cfg.stat().st_mode) == 0o640
    added = [ln for ln in first.split("\r\n") if ln not in USER_YAML.split("\n")]
    assert added[0].startswith("  calibration: {format: 1") and all(ln.startswith("    ") for ln in added[1:])
    kept = "\r\n".join(ln for ln in first.split("\r\n") if ln not in added)
    assert kept == USER_YAML.replace("\n", "\r\n")  # every other byte, comments and CRLF included
    from worker.config import load_config

    assert load_config(cfg)["voice"]["calibration"]["source"] == "files"
    # again with other recordings: the calibration is replaced where it is, nothing else moves
    files[0] = str(voices["O"])
    files[4] = str(voices["A"])
    r = cli("calibrate-voice", "--config", str(cfg), "--files", *files, tmp=tmp_path, cache=tmp_path / "c")
    assert r.returncode == 0, r.stderr
    second = cfg.read_bytes().decode()
    assert second != first and second.split("  calibration:")[0] == first.split("  calibration:")[0]
    assert second.split("}}")[1] == first.split("}}")[1]
    os.chmod(cfg, 0o444)
    r = cli("calibrate-voice", "--config", str(cfg), "--files", *files, tmp=tmp_path, cache=tmp_path / "c")
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1] == (
        f"error: {cfg}: the config is read-only; make it writable or give another file with --config"
    )
    assert cfg.read_bytes().decode() == second and stat.S_IMODE(cfg.stat().st_mode) == 0o444


@pytest.mark.parametrize(
    "text",
    [
        "",
        "# only a comment",
        "camera:\n  source: none  # no cam\n# end\n",
        "voice:\ncamera: {source: none}\n",
        "voice: null  # later\n",
        "voice: {gain_db: 2}\n",
        "voice:\n    gain_db: 1\n    calibration:\n        format: 1\n        vowels: {A: [[1]]}\n    vad: 3\n",
        "\ufeffvoice:\n  calibration: {format: 1}\n  vad: 1\n",
    ],
)
def test_calibration_edit_keeps_every_other_line(text):
    import yaml

    from worker.audio.calibration import default_profile
    from worker.config import calibration_edit

    cal = default_profile().to_config()
    new = calibration_edit(text, cal, "c.yaml")
    data = yaml.safe_load(new)
    assert json.loads(json.dumps(data["voice"]["calibration"])) == json.loads(json.dumps(cal))
    old = yaml.safe_load(text) or {}
    old_voice = old.get("voice") or {}
    old_voice.pop("calibration", None)
    assert {k: v for k, v in data["voice"].items() if k != "calibration"} == old_voice
    assert {k: v for k, v in data.items() if k != "voice"} == {k: v for k, v in old.items() if k != "voice"}
    old_lines = [ln for ln in text.splitlines() if "format: 1" not in ln and "vowels:" not in ln]
    new_lines = new.splitlines()
    changed = ("voice:", "\ufeffvoice:", "calibration:")  # the voice key's own line may take the new value
    assert all(ln in new_lines for ln in old_lines if ln.strip() and not ln.strip().startswith(changed)), new


def test_five_recordings_of_one_vowel_are_refused():
    from worker.audio.calibration import calibrate
    from worker.audio.held_vowels import held_vowel

    # "ah" from five voices: different recordings, one vowel
    five = ["en", "en+f3", "en+m3", "en+f2", "en-us"]
    recs = {v: held_vowel("A", voice) for v, voice in zip("AIUEO", five, strict=True)}
    with pytest.raises(UserError, match="the vowels sound alike .*one vowel"):
        calibrate(recs)


# --- Windows text files, and the lip-sync cache ---------------------------------------------------


def test_batch_file_and_face_marks_with_a_bom(tmp_path):
    from worker.characters.face_marks import load_face_marks
    from worker.commands.render import _batch_lines

    lines = tmp_path / "lines.txt"
    lines.write_bytes("\ufeff# greetings\r\nHello.\r\n".encode())
    assert _batch_lines(lines) == [("Hello.", None, f"{lines}:2")]
    lines.write_bytes("\ufeffaudio: hi.wav\r\n".encode())
    assert _batch_lines(lines) == [(None, str(tmp_path / "hi.wav"), f"{lines}:1")]
    fox = REPO / "worker" / "assets" / "mascots" / "fox.png"
    pic = tmp_path / "fox.png"
    pic.write_bytes(fox.read_bytes())
    pic.with_name("fox.face.json").write_bytes(b"\xef\xbb\xbf" + fox.with_name("fox.face.json").read_bytes())
    from PIL import Image

    w, h = Image.open(pic).size
    assert load_face_marks(pic, w, h) is not None


def test_cache_counts_and_clears_the_lipsync_folder(tmp_path):
    from worker.audio.analysis import VoiceSettings
    from worker.audio.calibration import default_profile
    from worker.audio.talking import lipsync_package
    from worker.audio.tts import synthesize

    cache = tmp_path / "cache"
    clip = lipsync_package(cache, "t", {"text": "hi"}, lambda: synthesize("Hi."), VoiceSettings(), default_profile())
    assert clip.duration > 0.2
    info = json.loads(cli("cache", "--cache", str(cache), "--json", tmp=tmp_path, cache=cache).stdout)
    assert info["entries"] == 0 and info["lipsync"]["entries"] == 1 and info["lipsync"]["bytes"] > 10_000
    cleared = json.loads(cli("cache", "--cache", str(cache), "--clear", "--json", tmp=tmp_path, cache=cache).stdout)
    assert cleared["freed_bytes"] == info["lipsync"]["bytes"] and cleared["lipsync"]["entries"] == 0
    assert not list((cache / "lipsync").iterdir())


def test_lipsync_folder_is_held_under_its_limit(tmp_path):
    from worker.audio import lipsync_cache

    d = lipsync_cache.folder(tmp_path)
    d.mkdir()
    for i in range(5):
        (d / f"k{i}.mouth.npy").write_bytes(b"x" * 1000)
        os.utime(d / f"k{i}.mouth.npy", (1000 + i, 1000 + i))
    assert lipsync_cache.prune(tmp_path, max_bytes=2500, keep="k0") == 3000
    assert sorted(p.name for p in d.iterdir()) == ["k0.mouth.npy", "k4.mouth.npy"]
