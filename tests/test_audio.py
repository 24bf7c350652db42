"""Voice input: analysis, sources, calibration, lip-sync mixing and the mic commands, on real speech
made here by espeak-ng (apt `espeak-ng`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from worker.audio import VOWELS, MouthSignal
from worker.audio.analysis import MouthAnalyzer, VoiceSettings, load_track, save_track, signal_at
from worker.audio.features import HOP, RATE
from worker.audio.held_vowels import held_vowel
from worker.audio.tts import synthesize
from worker.errors import UserError
from worker.tools.audio_bench import write_wav

REPO = Path(__file__).resolve().parents[1]


def cli(*args: str, tmp: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "STREAM_ANIMATOR_CACHE": str(tmp / "cache")}
    return subprocess.run(
        [sys.executable, "-m", "worker", *args], capture_output=True, text=True, env=env, cwd=tmp, timeout=300
    )


@pytest.fixture(scope="module")
def vowels() -> dict[str, np.ndarray]:
    """Held vowels of a voice the default profile was not made from."""
    return {v: held_vowel(v, "en-us", repeats=4 if v == "E" else 3) for v in VOWELS}


@pytest.fixture(scope="module")
def sentence() -> np.ndarray:
    return synthesize("Hello there, how are you doing today?", voice="en-us")


def test_mouth_signal_weights_never_sum_above_one():
    s = MouthSignal(1.5, np.array([0.9, 0.9, 0.0, 0.0, 0.0]), True, 1.0)
    assert s.openness == 1.0 and s.weights.sum() == pytest.approx(1.0) and s.weight("A") == pytest.approx(0.5)
    assert MouthSignal(0.5, np.array([0.2, 0, 0, 0, 0])).weights.sum() == pytest.approx(0.2)


def test_live_hops_and_offline_give_the_same_mouth(sentence):
    a = MouthAnalyzer()
    live = np.array(
        [
            [s.openness, *s.weights]
            for s in (a.push(sentence[i * HOP : (i + 1) * HOP], i / 100) for i in range(len(sentence) // HOP))
        ]
    )
    offline = MouthAnalyzer().analyze(sentence, lookahead_ms=0)
    assert np.allclose(live, offline[:, 1:7], atol=1e-4)
    ahead = MouthAnalyzer().analyze(sentence, lookahead_ms=20)  # offline looks ahead: opens 2 hops earlier
    first_live = int(np.argmax(offline[:, 1] > 0.1))
    assert int(np.argmax(ahead[:, 1] > 0.1)) == first_live - 2


def test_offline_analysis_in_chunks_is_the_same(sentence, monkeypatch):
    import worker.audio.analysis as analysis

    whole = MouthAnalyzer().analyze(sentence)
    monkeypatch.setattr(analysis, "CHUNK_HOPS", 37)
    assert np.array_equal(MouthAnalyzer().analyze(sentence), whole)


def test_speech_opens_the_mouth_silence_and_noise_do_not(sentence):
    a = MouthAnalyzer()
    track = a.analyze(sentence)
    assert track[:, 1].max() > 0.7 and track[:, 7].mean() > 0.5
    rng = np.random.default_rng(1)
    for quiet in (
        np.zeros(RATE, np.float32),
        rng.standard_normal(RATE).astype(np.float32) * 0.01,
        rng.standard_normal(RATE).astype(np.float32) * 0.1,
    ):  # silence, -40 and -20 dBFS hiss
        t = a.analyze(quiet)
        assert t[:, 1].max() < 0.02 and not t[:, 7].any()


def test_held_vowels_are_recognised(vowels):
    from worker.retarget.lipsync import shape_of

    a = MouthAnalyzer()
    share, gap = {}, {}
    for v, x in vowels.items():
        t = a.analyze(x)
        on = t[t[:, 1] > 0.3]
        share[v] = on[:, 2:7].mean(0)
        gap[v] = np.median([shape_of(signal_at(t, r[0]))[0] for r in on])
    # measured on their own vowel: A 0.67, I 0.89, U 0.78, E 0.73, O 0.70 (O from the Spanish voice: see
    # held_vowel; American "aw" is read as A 0.57, which it is); the mouth's gap A 0.29 > O 0.26 > E 0.18 > I, U
    # (the two close vowels: U a small round opening, 0.13 here, I a flat one, 0.12; U opened less than
    # that reads on the bundled toon as a flat slit, `tests/test_vowel_shapes.py`)
    floor = {"A": 0.62, "I": 0.84, "U": 0.73, "E": 0.68, "O": 0.65}
    for v in VOWELS:
        assert VOWELS[int(np.argmax(share[v]))] == v, (v, share[v])
        assert share[v][VOWELS.index(v)] > floor[v], (v, share[v])
    assert gap["A"] > gap["O"] > gap["E"] > max(gap["I"], gap["U"]), gap


def test_gain_gate_attack_and_release(sentence):
    quiet = sentence * 0.05  # -26 dB
    base = MouthAnalyzer().analyze(quiet)[:, 1].max()
    loud = MouthAnalyzer(VoiceSettings(gain_db=20)).analyze(quiet)[:, 1].max()
    assert loud > base + 0.3
    assert MouthAnalyzer(VoiceSettings(gate_db=-3)).analyze(sentence)[:, 1].max() == 0.0
    burst = np.concatenate([sentence[: RATE // 2], np.zeros(RATE, np.float32)])
    fast = MouthAnalyzer(VoiceSettings(release_ms=20, hangover_ms=0)).analyze(burst)[:, 1]
    slow = MouthAnalyzer(VoiceSettings(release_ms=300, hangover_ms=0)).analyze(burst)[:, 1]
    end = RATE // 2 // HOP
    assert fast[end + 20] < 0.05 < slow[end + 20]
    rise_fast = MouthAnalyzer(VoiceSettings(attack_ms=5)).analyze(sentence)[:, 1]
    rise_slow = MouthAnalyzer(VoiceSettings(attack_ms=200)).analyze(sentence)[:, 1]
    on = int(np.argmax(rise_fast > 0.01))
    assert rise_fast[on + 3] > 2 * rise_slow[on + 3]
    with pytest.raises(UserError, match="attack_ms"):
        VoiceSettings(attack_ms=-1).validate()


def test_track_round_trips_through_a_memory_mapped_npy(tmp_path, sentence):
    t = MouthAnalyzer().analyze(sentence)
    p = save_track(t, tmp_path / "m.npy")
    back = load_track(p)
    assert isinstance(back, np.memmap) and np.array_equal(back, t)
    s = signal_at(back, 0.5)
    assert s.openness == pytest.approx(float(t[49, 1]))


def test_file_source_is_paced_in_real_time_and_loops(tmp_path):
    from worker.audio.sources import FileAudioSource

    x = np.arange(RATE // 10, dtype=np.float32) / RATE  # 0.1 s ramp: 10 hops
    src = FileAudioSource("ramp", loop=True, samples=x)
    got: list[tuple[np.ndarray, float]] = []
    t0 = time.monotonic()
    src.start(lambda hop, t: got.append((hop.copy(), t)))
    time.sleep(0.35)
    while len(got) < 15 and time.monotonic() - t0 < 10:  # a busy machine may start the thread late
        time.sleep(0.01)
    src.stop()
    elapsed = time.monotonic() - t0
    assert 15 <= len(got) <= elapsed / 0.010 + 2, (len(got), elapsed)  # never ahead of real time
    assert np.array_equal(got[10][0], got[0][0]) and not np.array_equal(got[1][0], got[0][0])  # looped
    steps = np.diff([t for _, t in got])
    assert np.allclose(steps, HOP / RATE, atol=1e-6)


def test_live_latency_on_a_click_track_is_within_one_frame():
    from worker.tools.audio_bench import click_track, live_latency

    samples, onsets = click_track(count=4)
    r = live_latency(samples, onsets)
    assert r["missed"] == 0
    # the target (the mouth in the first frame drawn after the hop that opened it, one frame = 33.3 ms)
    # is judged by the voice benchmark (`stream-animator bench --audio`); here bounds a busy machine
    # keeps (the median over 100 ms at load average 30, the analysis thread up to 0.47 s late): the
    # median burst within half a second, none later than two (a stalled path is later than that)
    late = sorted(p["signal_to_frame_ms"] for p in r["per_burst"])
    assert late[len(late) // 2] <= 500, r
    assert late[-1] <= 2000, r
    assert r["sound_to_signal_ms_max"] <= 25, r  # from the hops' own clock: does not depend on speed


def test_decode_errors_name_the_file(tmp_path):
    from worker.audio.sources import decode_audio

    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not a sound file at all")
    with pytest.raises(UserError, match="bad.wav: cannot read"):
        decode_audio(bad, 60.0)
    with pytest.raises(UserError, match="has no audio stream"):
        from worker.paths import SAMPLE_DRIVER

        decode_audio(SAMPLE_DRIVER, 60.0)
    with pytest.raises(UserError, match="not found"):
        decode_audio(tmp_path / "nothing.wav", 60.0)


def test_unknown_voice_and_empty_text():
    with pytest.raises(UserError, match="no such voice"):
        synthesize("hello", voice="xx-no-such")
    with pytest.raises(UserError, match="text is empty"):
        synthesize("  ")


# -- lip sync in the retarget stage ---------------------------------------------------------------
@pytest.fixture(scope="module")
def char():
    from worker.characters.preprocess import preprocess_image
    from worker.paths import DEMO_CHARACTER

    return preprocess_image(DEMO_CHARACTER)


def _sig(vowel: str | None, openness: float, t: float) -> MouthSignal:
    w = np.zeros(5, np.float32)
    if vowel:
        w[VOWELS.index(vowel)] = 1.0
    return MouthSignal(openness, w, openness > 0, t)


def _width(pose) -> float:
    from worker.track import landmark_ids

    a, b = pose.landmarks[list(landmark_ids.MOUTH_CORNERS), :2]
    return float(np.linalg.norm(a - b))


def test_voice_drives_the_mouth_while_the_face_is_lost(char):
    from worker.retarget import Retargeter, RetargetOptions
    from worker.track.face_state import FaceState

    r = Retargeter(char, RetargetOptions(lipsync="assist"))
    lost = FaceState(found=False, timestamp=1.0, lost_blend=1.0)
    shut = r.retarget(lost, None, _sig(None, 0.0, 1.0))
    poses = {v: r.retarget(lost, None, _sig(v, 1.0, 1.0)) for v in "AIU"}
    assert shut.mouth_open < 0.01
    # A opens widest; I and U less (U drawn as an oval opens taller than its gap: lipsync.VoiceMouth.oval)
    assert poses["A"].mouth_open > 0.3 > max(poses["I"].mouth_open, poses["U"].mouth_open)
    assert min(poses["I"].mouth_open, poses["U"].mouth_open) > 0.02
    assert _width(poses["I"]) > _width(shut) > _width(poses["U"])
    off = Retargeter(char, RetargetOptions(lipsync="off")).retarget(lost, None, _sig("A", 1.0, 1.0))
    assert off.mouth_open < 0.01
    with pytest.raises(UserError, match="lipsync"):
        RetargetOptions(lipsync="sometimes").validate()


def test_assist_hands_over_to_the_voice_and_eases_back(char):
    from worker.retarget import Retargeter, RetargetOptions
    from worker.tools.sweep import driver_from_character
    from worker.track.face_state import FaceState

    face = driver_from_character(char)
    face.confidence = 0.9
    r = Retargeter(char, RetargetOptions(lipsync="assist"))
    talk = _sig("A", 1.0, 0.0)
    tracked = r.retarget(face, face, talk)
    assert tracked.mouth_open < 0.01 and r.voice.weight == 0.0  # face tracked: the camera's (shut) mouth
    shares = []
    for i in range(1, 60):  # face lost for 0.5 s, then back for 1.5 s (30 Hz)
        t = i / 30
        f = FaceState(found=False, timestamp=t, lost_blend=1.0) if i <= 15 else _at(face, t)
        r.retarget(f, face, _sig("A", 1.0, t))
        shares.append(r.voice.weight)
    assert shares[5] > 0.9  # handed to the voice within ~0.2 s
    assert 0.4 < shares[18] < 0.95  # easing back, not a jump
    assert shares[-1] < 0.02
    always = Retargeter(char, RetargetOptions(lipsync="always"))
    assert always.retarget(face, face, talk).mouth_open > 0.3  # the voice's mouth on a tracked face


def _at(face, t):
    from dataclasses import replace

    return replace(face, timestamp=t)


# -- commands -------------------------------------------------------------------------------------
def test_microphones_lists_or_says_there_are_none(tmp_path):
    from worker.audio.sources import list_microphones

    mics = list_microphones()
    r = cli("microphones", "--json", tmp=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [m.as_dict() for m in mics]
    r = cli("microphones", tmp=tmp_path)
    assert r.returncode == 0 and r.stdout.strip()
    if not mics:
        assert "no microphones found" in r.stdout


def test_missing_microphone_is_one_clear_line(tmp_path):
    r = cli("calibrate-voice", "--mic", "no-such-mic-xyz", "--config", str(tmp_path / "c.yaml"), tmp=tmp_path)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "microphone 'no-such-mic-xyz'" in r.stderr, r.stderr
    assert not (tmp_path / "c.yaml").exists()


def test_calibrate_voice_from_files_is_stored_and_used(tmp_path):
    from worker.config import load_config, voice_from_config
    from worker.retarget.mouth_signal import VOWELS as V

    own = {v: held_vowel(v, "en+m7", repeats=4 if v == "E" else 3) for v in V}
    files = []
    for v in V:
        p = tmp_path / f"{v}.wav"
        write_wav(p, own[v])
        files.append(str(p))
    cfg = tmp_path / "c.yaml"
    cfg.write_text("motion: {mirror: true}\n", encoding="utf-8")
    r = cli("calibrate-voice", "--config", str(cfg), "--files", *files, "--json", tmp=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["templates"] == {v: 4 for v in V}
    loaded = load_config(cfg)
    assert loaded["motion"]["mirror"] is True and loaded["voice"]["calibration"]["source"] == "files"
    settings, profile = voice_from_config(cfg)
    assert profile.source == "files"
    a = MouthAnalyzer(settings, profile)
    for v in V:  # this voice's own vowels, read with its own calibration
        t = a.analyze(own[v])
        on = t[t[:, 1] > 0.3]
        assert VOWELS[int(np.argmax(on[:, 2:7].mean(0)))] == v
    bad = yaml.safe_load(cfg.read_text())
    del bad["voice"]["calibration"]["vowels"]["O"]
    cfg.write_text(yaml.safe_dump(bad), encoding="utf-8")
    with pytest.raises(UserError, match=r"voice.calibration.vowels.O"):
        voice_from_config(cfg)


def test_live_stage_reads_a_file_in_real_time_and_mute_shuts_the_mouth():
    from worker.audio.sources import FileAudioSource
    from worker.audio.stage import VoiceInput
    from worker.tools.audio_bench import click_track

    samples, onsets = click_track(count=1)
    for muted in (False, True):
        stage = VoiceInput(FileAudioSource("clicks", loop=False, samples=samples))
        stage.muted = muted
        seen = []
        stage.on_signal = lambda s, seen=seen: seen.append(s.openness)
        with stage:
            time.sleep(onsets[0] + 0.25)
        assert stage.stats()["hops"] >= 40 and stage.stats()["analysis_ms_median"] > 0
        assert (max(seen) == 0.0) if muted else (max(seen) > 0.5)
