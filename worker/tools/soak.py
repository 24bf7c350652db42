"""A long stream with camera and voice, memory reported as a slope: `stream-animator bench --soak MINUTES`.

The real worker runs as a child (`run --source CLIP --mic VOICE --output nut:PORT`, both looped)
while this process decodes the NUT stream as OBS's Media Source would and samples the child's
resident memory (`/proc/PID/status`, VmRSS) every few seconds. The first `warmup_s` are left out
(models, caches and allocator pools fill up then); over the rest, a least-squares line gives MiB a
minute, and an hour's growth at that rate. An hour is the benchmark's length; shorter runs answer
the same question with a wider error.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import numpy as np

from worker.errors import UserError


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid: int) -> float | None:
    """Resident memory of a process in MiB (Linux), None when it is gone or unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def slope_mib_per_min(samples: list[tuple[float, float]], warmup_s: float) -> dict:
    """Least-squares growth of (seconds, MiB) samples after the warm-up."""
    pts = np.array([(t, m) for t, m in samples if t >= warmup_s], np.float64)
    if len(pts) < 3:
        return {"slope_mib_per_min": None, "samples": int(len(pts))}
    k, b = np.polyfit(pts[:, 0] / 60.0, pts[:, 1], 1)
    resid = pts[:, 1] - (k * pts[:, 0] / 60.0 + b)
    return {
        "slope_mib_per_min": round(float(k), 4),
        "mib_per_hour": round(float(k) * 60.0, 2),
        "rss_start_mib": round(float(pts[0, 1]), 1),
        "rss_end_mib": round(float(pts[-1, 1]), 1),
        "rss_max_mib": round(float(pts[:, 1].max()), 1),
        "residual_mib": round(float(resid.std()), 3),
        "samples": int(len(pts)),
    }


def _listen(port: int, result: dict) -> None:
    result["frames"] = 0
    try:
        with av.open(f"tcp://127.0.0.1:{port}?listen=1", format="nut", timeout=60) as c:
            for _ in c.decode(video=0):
                result["frames"] += 1
    except av.error.EOFError:
        pass
    except Exception as e:  # reported in the result; the soak still reports memory
        result["error"] = repr(e)


def soak(
    minutes: float,
    clip: Path,
    voice: Path,
    character: Path | None = None,
    every_s: float = 5.0,
    warmup_s: float = 60.0,
    log_to: Path | None = None,
    quiet: bool = False,
) -> dict:
    """Run the worker for `minutes` with camera and voice looped; memory slope and delivery."""
    for p, what in ((clip, "clip"), (voice, "voice file")):
        if not Path(p).is_file():
            raise UserError(f"{p}: {what} not found")
    if minutes * 60 <= warmup_s + 3 * every_s:
        raise UserError(f"--soak: {minutes:g} min is too short (more than {(warmup_s + 3 * every_s) / 60:.1f} needed)")
    port = _free_port()
    got: dict = {}
    listener = threading.Thread(target=_listen, args=(port, got), daemon=True)
    listener.start()
    time.sleep(0.3)
    cmd = [sys.executable, "-m", "worker", "run", "--source", str(clip), "--mic", str(voice)]
    cmd += ["--output", f"nut:{port}", "--duration", str(minutes * 60), "--json"]
    if character is not None:
        cmd += ["--character", str(character)]
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    samples: list[tuple[float, float]] = []
    t0 = time.monotonic()
    log = open(log_to, "a", encoding="utf-8") if log_to else None  # noqa: SIM115 - closed below
    try:
        while child.poll() is None:
            m = rss_mib(child.pid)
            t = time.monotonic() - t0
            if m is not None:
                samples.append((t, m))
                line = f"{t:7.0f} s  {m:7.1f} MiB  {got.get('frames', 0)} frames"
                if log:
                    log.write(line + "\n")
                    log.flush()
                if not quiet:
                    print(f"soak: {line}", file=sys.stderr)
            time.sleep(every_s)
        out = child.stdout.read() if child.stdout else ""
    finally:
        if child.poll() is None:
            child.terminate()
            child.wait(10)
        if log:
            log.close()
    listener.join(15)
    summary = None
    for line in reversed(out.strip().splitlines()):
        if line.startswith("{"):
            import json

            summary = json.loads(line)
            break
    wall = time.monotonic() - t0
    return {
        "minutes": round(wall / 60.0, 2),
        "exit_code": child.returncode,
        "frames_decoded": got.get("frames", 0),
        "fps_decoded": round(got.get("frames", 0) / wall, 2),
        "listener_error": got.get("error"),
        "worker_fps": (summary or {}).get("fps"),
        # up to the end of the run: the worker's shutdown frees memory and is not the stream
        "memory": slope_mib_per_min([(t, m) for t, m in samples if t <= minutes * 60 - every_s], warmup_s),
        "rss_series_mib": [[round(t, 1), round(m, 1)] for t, m in samples],
    }


def run_soak(minutes: float, clip: Path, voice: str | None, characters: list[str] | None, as_json: bool) -> int:
    """`bench --soak MINUTES`: the soak with a default voice and the first test portrait."""
    import json
    import tempfile

    from worker.paths import shared_testdata

    character = Path(characters[0]) if characters else None
    td = shared_testdata()
    if character is None and td is not None:
        character = td / "footage" / "portraits" / "s42.jpg"
    with tempfile.TemporaryDirectory(prefix="sa-soak-") as tmp:
        if voice is None:
            import wave

            from worker.audio.features import RATE
            from worker.audio.tts import synthesize

            voice = str(Path(tmp) / "voice.wav")
            with wave.open(voice, "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(RATE)
                w.writeframes((np.clip(synthesize(SPEECH), -1, 1) * 32767).astype("<i2").tobytes())
        res = soak(minutes, clip, Path(voice), character, log_to=Path(tmp) / "soak.log", quiet=as_json)
    if not as_json:
        res.pop("rss_series_mib")
    print(json.dumps(res) if as_json else json.dumps(res, indent=1))
    m = res["memory"]
    if m["slope_mib_per_min"] is not None:
        print(
            f"memory: {m['slope_mib_per_min']:+.3f} MiB a minute ({m['mib_per_hour']:+.1f} MiB an hour) over "
            f"{res['minutes']:.1f} min, {res['frames_decoded']} frames decoded",
            file=sys.stderr,
        )
    return 0 if res["exit_code"] == 0 and not res["listener_error"] else 1


SPEECH = (
    "Hello everyone and welcome back to the stream. Today we are going to try something new, "
    "so stay tuned and tell me what you think in the chat."
)


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json

    from worker.paths import shared_testdata

    td = shared_testdata()
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--clip", default=str(td / "footage/driving/d9.mp4") if td else None)
    ap.add_argument("--voice", required=True)
    ap.add_argument("--character")
    ap.add_argument("--log")
    a = ap.parse_args(argv)
    res = soak(
        a.minutes,
        Path(a.clip),
        Path(a.voice),
        Path(a.character) if a.character else None,
        log_to=Path(a.log) if a.log else None,
    )
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
