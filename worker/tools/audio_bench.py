"""Voice benchmarks: analysis cost per hop, added latency live, offline render speed, batch vs separate.

`python -m worker.tools.audio_bench --json` (the `bench --audio` command calls `run_bench`).

Latency: a file source carrying a click track (short bursts of a held "ah" with silence between)
is played in real time through the live stage while a 30 FPS loop reads the newest mouth signal,
as the render stage does. For each burst: when the first hop whose signal opens the mouth was
heard, and when the first frame showing it was drawn. The frame must come at most one frame
period after that hop.

`pipeline_latency` does the same through the real live worker (`LiveWorker`: the click track as
the `--mic` file, no camera, the obs frame channel on loopback), judging each frame by its pixels:
the first frame captured after the hop must already show the mouth open.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

from worker.audio.analysis import MouthAnalyzer
from worker.audio.features import HOP, RATE
from worker.audio.sources import FileAudioSource
from worker.audio.stage import VoiceInput

FRAME_S = 1 / 30
OPEN = 0.1  # openness that counts as "the mouth moved"
PIXEL_OPEN = 1.0  # mean change of the mouth's pixels (grey levels) that counts as "drawn open"


def click_track(burst_s: float = 0.15, period_s: float = 0.61, count: int = 6) -> tuple[np.ndarray, list[float]]:
    """Bursts of a held "ah" (espeak-ng) every `period_s` (not a whole number of frames, so the bursts
    fall at different points of the frame period), each starting sharply; and their onset times."""
    from worker.audio.tts import synthesize

    ah = synthesize("[[A:A:]]", words_per_minute=80)
    loud = np.nonzero(np.abs(ah) > 0.01)[0]
    burst = ah[loud[0] : loud[0] + int(burst_s * RATE)]
    x = np.zeros(int((period_s * count + 0.3) * RATE), np.float32)
    onsets = []
    for i in range(count):
        s = int((0.3 + i * period_s) * RATE)
        x[s : s + len(burst)] = burst
        onsets.append(s / RATE)
    return x, onsets


def analysis_cost(samples: np.ndarray, repeat: int = 3) -> dict:
    a = MouthAnalyzer()
    n = len(samples) // HOP
    best = np.inf
    for _ in range(repeat):
        a.reset()
        t0 = time.perf_counter()
        for i in range(n):
            a.push(samples[i * HOP : (i + 1) * HOP], i * HOP / RATE)
        best = min(best, (time.perf_counter() - t0) / n)
    t0 = time.perf_counter()
    a.analyze(samples)
    offline = (time.perf_counter() - t0) / n
    return {
        "live_ms_per_hop": round(best * 1000, 4),
        "offline_ms_per_hop": round(offline * 1000, 4),
        "hop_ms": HOP * 1000 / RATE,
        "share_of_real_time": round(best / (HOP / RATE), 4),
    }


def live_latency(samples: np.ndarray, onsets: list[float], fps: float = 30.0) -> dict:
    """Play `samples` in real time through the live stage, sample it at `fps`, per onset: hop -> frame."""
    source = FileAudioSource("click-track", loop=False, samples=samples)
    stage = VoiceInput(source)
    signals: list[tuple[float, float]] = []  # (hop heard, openness)
    stage.on_signal = lambda s: signals.append((s.timestamp, s.openness))
    frames: list[tuple[float, float, float]] = []  # (frame time, openness, hop time of the signal used)
    period = 1.0 / fps
    with stage:
        t_next = time.perf_counter()
        end = t_next + len(samples) / RATE + 0.2
        while time.perf_counter() < end:
            t_next += period
            time.sleep(max(0.0, t_next - time.perf_counter()))
            s = stage.latest()
            frames.append((time.perf_counter(), s.openness, s.timestamp))
    t0 = source.started_at
    per = []
    for on in onsets:
        heard = next((t for t, o in signals if t >= t0 + on - 0.005 and o > OPEN), None)
        shown = next((t for t, o, _ in frames if t >= t0 + on - 0.005 and o > OPEN), None)
        if heard is None or shown is None:
            per.append({"onset_s": on, "missed": True})
            continue
        per.append(
            {
                "onset_s": on,
                "sound_to_signal_ms": round((heard - t0 - on) * 1000, 1),
                "signal_to_frame_ms": round((shown - heard) * 1000, 1),
                "sound_to_frame_ms": round((shown - t0 - on) * 1000, 1),
            }
        )
    ok = [p for p in per if not p.get("missed")]
    return {
        "fps": fps,
        "bursts": len(onsets),
        "missed": len(per) - len(ok),
        "signal_to_frame_ms_max": max((p["signal_to_frame_ms"] for p in ok), default=None),
        "sound_to_frame_ms_max": max((p["sound_to_frame_ms"] for p in ok), default=None),
        "sound_to_signal_ms_max": max((p["sound_to_signal_ms"] for p in ok), default=None),
        "within_one_frame": bool(ok)
        and len(ok) == len(per)
        and all(p["signal_to_frame_ms"] <= period * 1000 + 1.0 for p in ok),
        "analysis": stage.stats(),
        "per_burst": per,
    }


def pipeline_latency(
    fps: float = 30.0, size: int = 512, cache_dir: str | Path | None = None, lead_s: float = 1.5, bursts: int = 6
) -> dict:
    """The click track through `LiveWorker` (`--source none --mic FILE`, obs output on loopback).

    Per burst, with `heard` the time of the first hop whose signal opens the mouth (the sound's
    clock) and `ready` when its analysis was done: `next_frame_open`, whether the first frame
    captured after `ready` shows the mouth open (mean change of the mouth's pixels against the
    silent frames above `PIXEL_OPEN` grey levels); `ready_late_ms` (`ready` - `heard`: the
    analysis, plus the audio thread's wait on a busy machine); and for the first open frame,
    `hop_to_capture_ms` (its capture after `heard`: at most one frame period) and `hop_to_sent_ms`
    (until it was handed to the outputs: that plus the render).
    """
    from worker.config import load_settings
    from worker.control import protocol as P
    from worker.live.worker import LiveWorker
    from worker.track import landmark_ids as L

    clicks, onsets = click_track(count=bursts)
    x = np.concatenate([np.zeros(int(lead_s * RATE), np.float32), clicks])
    onsets = [on + lead_s for on in onsets]
    period = 1.0 / fps
    with tempfile.TemporaryDirectory(prefix="sa-voice-latency-") as d:
        wav = write_wav(Path(d) / "clicks.wav", x)
        overrides = {
            "camera.source": "none",
            "camera.fps": fps,
            "characters.size": size,
            "voice.mic": str(wav),
            "voice.lipsync": "always",
            "motion.idle": False,  # a still head: only the mouth changes the mouth's pixels
            "outputs": [{"type": "obs"}],
        }
        if cache_dir is not None:
            overrides["cache_dir"] = str(cache_dir)
        token = P.make_token()
        w = LiveWorker(load_settings(None, overrides), token)
        assert w.voice is not None
        hops: list[tuple[float, float, float]] = []  # (heard, openness, ready): perf_counter clock
        w.voice.on_signal = lambda s: hops.append((s.timestamp, s.openness, time.perf_counter()))
        lm = np.asarray(w.animator.assets.landmarks)[list(L.LIPS_OUTER), :2]  # type: ignore[union-attr]
        (x0, y0), (x1, y1) = lm.min(0), lm.max(0)
        m = 0.4 * (x1 - x0)
        box = (slice(max(int(y0 - m), 0), int(y1 + m)), slice(max(int(x0 - m), 0), int(x1 + m)))
        frames: list[tuple[float, float, np.ndarray]] = []  # (capture, sent: wall clock; mouth pixels)
        w.start()
        clock = time.time() - time.perf_counter()  # perf_counter -> wall clock
        assert w.frame_port is not None  # the obs output runs
        rx = P.FrameReceiver(w.frame_port, token).connect()
        try:
            end = time.monotonic() + len(x) / RATE + 1.0
            while time.monotonic() < end:
                f = rx.poll(0.1)
                if f is not None:
                    img = np.frombuffer(f.data, np.uint8).reshape(f.height, f.width, 4)
                    frames.append((f.capture_ts, f.send_ts, img[box][..., :3].astype(np.float32).mean(-1)))
            started = w.voice.source.started_at + clock  # type: ignore[attr-defined]
            stages = w.pipeline.status().stages_ms
        finally:
            rx.close()
            w.stop()
    silent = [px for cap, _, px in frames if cap < started + onsets[0] - 0.2]
    ref = np.median(np.stack(silent), axis=0) if silent else frames[0][2]
    change = [(cap, sent, float(np.abs(px - ref).mean())) for cap, sent, px in frames]
    per = []
    for on in onsets:
        t_on = started + on
        hop = next(((t + clock, r + clock) for t, o, r in hops if t + clock >= t_on - 0.005 and o > OPEN), None)
        heard, ready = hop if hop is not None else (None, None)
        after = [c for c in change if ready is not None and c[0] >= ready]
        opened = next((c for c in change if c[0] >= t_on - 0.005 and c[2] > PIXEL_OPEN), None)
        if heard is None or ready is None or not after or opened is None:
            per.append({"onset_s": round(on, 3), "missed": True})
            continue
        per.append(
            {
                "onset_s": round(on, 3),
                "sound_to_signal_ms": round((heard - t_on) * 1000, 1),
                "ready_late_ms": round((ready - heard) * 1000, 1),
                "next_frame_open": after[0][2] > PIXEL_OPEN,
                "next_frame_change": round(after[0][2], 2),
                "hop_to_capture_ms": round((opened[0] - heard) * 1000, 1),
                "hop_to_sent_ms": round((opened[1] - heard) * 1000, 1),
            }
        )
    ok = [p for p in per if not p.get("missed")]
    return {
        "fps": fps,
        "size": size,
        "frames": len(frames),
        "bursts": len(onsets),
        "missed": len(per) - len(ok),
        "silent_change_max": round(max((c for cap, _, c in change if cap < started + onsets[0] - 0.2), default=0), 3),
        "hop_to_capture_ms_max": max((p["hop_to_capture_ms"] for p in ok), default=None),
        "hop_to_capture_ms_median": _median([p["hop_to_capture_ms"] for p in ok]),
        "hop_to_sent_ms_max": max((p["hop_to_sent_ms"] for p in ok), default=None),
        "hop_to_sent_ms_median": _median([p["hop_to_sent_ms"] for p in ok]),
        "next_frame_open_all": bool(ok) and all(p["next_frame_open"] for p in ok),
        "within_one_frame": bool(ok)
        and len(ok) == len(per)
        and all(p["next_frame_open"] and p["hop_to_capture_ms"] <= period * 1000 + 1.0 for p in ok),
        "stages_ms": stages,
        "per_burst": per,
    }


def _median(values: list[float]) -> float | None:
    return round(float(np.median(values)), 1) if values else None


def write_wav(path: Path, x: np.ndarray) -> Path:
    """`x` (float, -1..1, 16 kHz mono) as a 16-bit WAV file."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def _cli(*args: str, cache: Path) -> tuple[float, dict]:
    env = {**os.environ, "STREAM_ANIMATOR_CACHE": str(cache)}
    t0 = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-m", "worker", *args, "--json"], capture_output=True, text=True, env=env, timeout=900
    )
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"render failed: {r.stderr.strip().splitlines()[-1:]}")
    return wall, json.loads(r.stdout)


def _children_cpu_s() -> float:
    """CPU seconds of this process's finished children (NaN where the OS does not say: Windows)."""
    try:
        import resource
    except ImportError:
        return float("nan")
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def offline_and_batch(lines: list[str], size: int = 256) -> dict:
    """Seconds of video per second of render, and a batch run against one run per line (all fresh
    processes on the same warm character cache, voices made once per line in both)."""
    with tempfile.TemporaryDirectory(prefix="sa-voice-bench-") as tmp:
        d = Path(tmp)
        cache = d / "cache"
        batch = d / "lines.txt"
        batch.write_text("\n".join(lines) + "\n", encoding="utf-8")
        _cli("render", "--text", "warm up", "--size", str(size), "--out", str(d / "warm.mp4"), cache=cache)
        separate, video_s = 0.0, 0.0
        renders = []
        cpu0 = _children_cpu_s()
        for i, line in enumerate(lines):
            wall, info = _cli(
                "render", "--text", line, "--size", str(size), "--out", str(d / f"s{i}.mp4"), cache=d / f"cache-sep{i}"
            )
            separate += wall
            video_s += info["duration_s"]
            renders.append(info["video_s_per_s"])
        cpu1 = _children_cpu_s()
        batch_wall, binfo = _cli(
            "render", "--batch", str(batch), "--size", str(size), "--out", str(d / "b"), cache=d / "cache-batch"
        )
        cpu2 = _children_cpu_s()
        return {
            "size": size,
            "clips": len(lines),
            "video_s": round(video_s, 2),
            "render_loop_video_s_per_s": round(float(np.median(renders)), 2),
            "separate_s_per_clip": round(separate / len(lines), 3),
            "batch_s_per_clip": round(batch_wall / len(lines), 3),
            "batch_speedup": round(separate / batch_wall, 2),
            # the same ratio in CPU seconds: what the batch saves, whatever else the machine runs
            "batch_cpu_speedup": round((cpu1 - cpu0) / (cpu2 - cpu1), 2),
            "separate_video_s_per_s": round(video_s / separate, 2),
            "batch_video_s_per_s": round(binfo["duration_s"] / batch_wall, 2),
        }


LINES = [
    "Hello and welcome back to the stream.",
    "Thanks for the follow, that means a lot.",
    "Let us see what happens if I open this door.",
    "Okay chat, one more round and then we stop.",
]


def run_bench(offline: bool = True, size: int = 256, pipeline: bool = True) -> dict:
    samples, onsets = click_track()
    out = {"analysis": analysis_cost(samples), "latency": live_latency(samples, onsets)}
    if pipeline:
        out["pipeline_latency"] = pipeline_latency()
    if offline:
        out["offline"] = offline_and_batch(LINES, size)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m worker.tools.audio_bench", description=__doc__.splitlines()[0])
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--no-offline", action="store_true", help="skip the offline render and batch runs")
    p.add_argument("--size", type=int, default=256, help="render size for the offline runs (default 256)")
    args = p.parse_args(argv)
    res = run_bench(offline=not args.no_offline, size=args.size)
    if args.json:
        print(json.dumps(res))
    else:
        print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
