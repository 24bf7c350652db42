"""Benchmark the live outputs on loopback: ``python -m worker.tools.output_bench [--size 512] [--fps 30]``.

The receiving side runs in its own process, as OBS would: for "obs" the stdlib
`FrameReceiver` imported from protocol.py alone; for "nut" a PyAV listener configured like
OBS's Media Source. Prints one JSON object: per output, frames sent/received and latency
from capture to arrival (p50/p95/max, ms) plus the worker-side stats.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from worker.control import protocol as P
from worker.output.fanout import OutputFanout
from worker.output.nut import NutOutput
from worker.output.obs import ObsOutput

OBS_RECEIVER = """
import json, sys, time
sys.path.insert(0, sys.argv[1]); import protocol as P
rx = P.FrameReceiver(int(sys.argv[2]), sys.argv[3]).connect()
print("ready", flush=True)
lat, t_end = [], time.time() + float(sys.argv[4])
while time.time() < t_end:
    f = rx.poll(0.1)
    if f is not None:
        lat.append((f.recv_ts - f.capture_ts) * 1000)
print(json.dumps({"received": rx.received, "skipped": rx.skipped, "gaps": rx.gaps, "lat": lat}))
"""

NUT_RECEIVER = """
import json, sys, time, av
print("ready", flush=True)
lat, t_end = [], time.time() + float(sys.argv[2])
with av.open(f"tcp://127.0.0.1:{sys.argv[1]}?listen=1&listen_timeout=5000", format="nut",
             options={"fflags": "nobuffer", "probesize": "32", "analyzeduration": "0"}) as c:
    for frame in c.decode(video=0):
        a = frame.to_ndarray(format="rgba")
        cap = float(a[0, :8, 0].astype("uint8").view("<f8")[0])  # capture time stamped in pixels
        lat.append((time.time() - cap) * 1000)
        if time.time() > t_end:
            break
print(json.dumps({"received": len(lat), "lat": lat}))
"""


def _summary(lat: list[float]) -> dict:
    if not lat:
        return {"p50": None, "p95": None, "max": None}
    a = np.asarray(lat)
    return {
        "p50": round(float(np.percentile(a, 50)), 2),
        "p95": round(float(np.percentile(a, 95)), 2),
        "max": round(float(a.max()), 2),
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _drive(fanout: OutputFanout, size: int, fps: float, seconds: float) -> int:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (size, size, 4), dtype=np.uint8)
    t0, i = time.monotonic(), 0
    while time.monotonic() - t0 < seconds:
        img = base.copy()
        ts = time.time()
        img[0, :8, 0] = np.frombuffer(np.float64(ts).tobytes(), np.uint8)  # lets nut measure latency
        fanout.send(img, i, ts)
        i += 1
        time.sleep(max(0.0, t0 + i / fps - time.monotonic()))
    return i


def bench(kind: str, size: int, fps: float, seconds: float) -> dict:
    token = P.make_token()
    if kind == "obs":
        out: ObsOutput | NutOutput = ObsOutput(token=token)
        out.start()
        argv = [
            sys.executable,
            "-c",
            OBS_RECEIVER,
            str(Path(P.__file__).parent),
            str(out.port),
            token,
            str(seconds + 1.0),
        ]
    else:
        port = _free_port()
        out = NutOutput(port)
        argv = [sys.executable, "-c", NUT_RECEIVER, str(port), str(seconds)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(0.3)
        fanout = OutputFanout([out]).start()
        sent = _drive(fanout, size, fps, seconds)
        result = json.loads(proc.communicate(timeout=seconds + 15)[0].strip().splitlines()[-1])
        fanout.close()
    finally:
        proc.kill()
    lat = result.pop("lat")
    return {"sent": sent, **result, "latency_ms": _summary(lat), "worker": out.stats()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m worker.tools.output_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--outputs", default="obs,nut")
    a = ap.parse_args(argv)
    res = {k: bench(k, a.size, a.fps, a.seconds) for k in a.outputs.split(",")}
    print(json.dumps({"size": a.size, "fps": a.fps, **res}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
