"""`bench --ndi SECONDS`: the NDI output's frame rate as a receiver sees it.

The live worker runs `run --output ndi:NAME` from a 30 FPS clip; a receiver in its own process
(cyndilib, RGBX_RGBA, highest bandwidth, as OBS's DistroAV source asks for) counts the frames it
gets, two ways in turn:

- ``framesync``: NDI's frame-sync (`Receiver.frame_sync.capture_video`), polled every 5 ms,
  counting distinct frame timestamps: every frame libndi decoded;
- ``receive``: `Receiver.receive()` in a loop, the plain capture call.

cyndilib (0.1.3) creates a frame-sync on every receiver, and the NDI SDK's frame-sync captures
from the same connection by itself: `receive()` then competes with it and gets about a third of
the frames (measured: 10.7 of 30.4 FPS, with libndi's own count at every frame and none dropped;
through the frame-sync 30.8 FPS).
A receiver written with cyndilib must read through the frame-sync; OBS's DistroAV source (C,
no frame-sync) is not affected. Both counts are reported, beside the sender's own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

RECEIVER = r"""
import json, sys, time
import numpy as np, cyndilib as ndi
from cyndilib.receiver import ReceiveFrameType
name, seconds = sys.argv[1], float(sys.argv[2])
finder = ndi.Finder(); finder.open(); src = None; t0 = time.monotonic()
while src is None and time.monotonic() - t0 < 60:
    finder.wait_for_sources(0.2)
    for n in finder.get_source_names():
        if n.endswith(f"({name})"):
            src = finder.get_source(n)
finder.close()
if src is None:
    print(json.dumps({"error": f"NDI source {name!r} not found in 60 s"})); sys.exit(0)
print("found", flush=True)

def measure(mode):
    recv = ndi.Receiver(color_format=ndi.RecvColorFormat.RGBX_RGBA, bandwidth=ndi.RecvBandwidth.highest)
    stamps, lat, size = [], [], None
    if mode == "framesync":
        vf = ndi.VideoFrameSync(); recv.frame_sync.set_video_frame(vf)
    else:
        vf = ndi.VideoRecvFrame(); recv.set_video_frame(vf); buf = None
    recv.set_source(src)
    t_end = time.monotonic() + seconds + 30  # the first frame may take a while on a busy machine
    first = None
    while time.monotonic() < t_end:
        if mode == "framesync":
            recv.frame_sync.capture_video()
            t = vf.get_timestamp_posix()
            got = bool(t) and (not stamps or t != stamps[-1])
            if not got:
                time.sleep(0.005)
        else:
            got = bool(recv.receive(ReceiveFrameType.recv_video, 200) & ReceiveFrameType.recv_video)
            if got:
                if buf is None or buf.size != vf.get_buffer_size():
                    buf = np.empty(vf.get_buffer_size(), np.uint8)
                vf.fill_p_data(buf)
                t = vf.get_timestamp_posix()
        if got:
            now = time.time()
            if first is None:
                first, cpu0 = time.monotonic(), time.process_time()
                t_end = first + seconds
            stamps.append(t); lat.append((now - t) * 1000); size = vf.get_resolution()
    wall = time.monotonic() - first if first else 0.0
    perf = recv.get_performance_data()["video"]
    recv.disconnect()
    return {"frames": len(stamps), "seconds": round(wall, 2), "fps": round(len(stamps) / wall, 2) if wall else 0.0,
            "latency_ms_p50": round(float(np.median(lat)), 1) if lat else None,
            "cpu_percent": round(100 * (time.process_time() - cpu0) / wall, 1) if wall else None,
            "libndi_frames_total": perf["frames_total"], "libndi_frames_dropped": perf["frames_dropped"],
            "size": list(size) if size else None}

print(json.dumps({m: measure(m) for m in ("framesync", "receive")}), flush=True)
"""


def loopback_config(folder: Path) -> Path:
    """An NDI config that finds senders on 127.0.0.1 (a container or a LAN without mDNS)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ndi-config.v1.json").write_text(json.dumps({"ndi": {"networks": {"ips": "127.0.0.1"}}}))
    return folder


def bench_ndi(clip: Path, seconds: float = 10.0, size: int = 512, synthetic: bool = False) -> dict[str, Any]:
    """A sender on NDI for two measuring windows of `seconds`, and what a receiver got.

    The sender is the live worker (`run --output ndi`) on `clip`, or with `synthetic` the NDI
    output alone, fed 30 moving frames a second by this process: the output's own limit, apart
    from the pipeline's speed.
    """
    from worker.output.ndi import load_cyndilib

    load_cyndilib()  # a missing runtime is one line, before anything starts
    root = Path(tempfile.mkdtemp(prefix="bench-ndi-"))
    name = f"bench-{uuid.uuid4().hex[:8]}"
    env = dict(
        os.environ,
        NDI_CONFIG_DIR=str(loopback_config(root / "ndi")),
        STREAM_ANIMATOR_CACHE=str(root / "cache"),
        STREAM_ANIMATOR_LOGS=str(root / "logs"),
    )
    worker = feeder = None
    try:
        if synthetic:
            feeder = _Feeder(name, size, env["NDI_CONFIG_DIR"])
        else:
            cfg = root / "config.yaml"
            cfg.write_text(f"characters:\n  size: {size}\n")
            worker = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "worker",
                    "run",
                    "--config",
                    str(cfg),
                    "--source",
                    str(clip),
                    "--output",
                    f"ndi:{name}",
                    "--duration",
                    str(2 * seconds + 120),
                    "--json",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
                cwd=root,
            )
        rx = subprocess.Popen(
            [sys.executable, "-c", RECEIVER, name, str(seconds)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        try:
            out, _ = rx.communicate(timeout=2 * seconds + 180)
        finally:
            if rx.poll() is None:
                rx.kill()
                rx.wait(10)
        if feeder is not None:
            sender, werr = feeder.stop(), ""
        else:
            assert worker is not None  # started above when there is no feeder
            worker.terminate()
            wout, werr = worker.communicate(timeout=60)
            sender = _worker_sender(wout, werr)
    finally:
        if worker is not None and worker.poll() is None:
            worker.kill()
            worker.wait(10)
        if feeder is not None:
            feeder.stop()
        shutil.rmtree(root, ignore_errors=True)
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"the NDI receiver printed nothing; sender: {werr.strip()[-500:]}")
    got = json.loads(lines[-1])
    if "error" in got:
        raise RuntimeError(got["error"])
    for m in got.values():  # libndi counts every frame that arrived (none dropped): what was sent meanwhile
        arrived = m["libndi_frames_total"]
        m["share_of_arrived"] = round(m["frames"] / arrived, 3) if arrived else None
        m["arrived_fps"] = round(arrived / m["seconds"], 2) if m["seconds"] else None
    return {
        "sender_kind": "synthetic 30 FPS feed" if synthetic else "live worker",
        "clip": clip.name,
        "size": size,
        "seconds": seconds,
        "sender": sender,
        "receiver": got,
        "load_avg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }


def _worker_sender(wout: str, werr: str) -> dict[str, Any]:
    try:
        summary = json.loads(wout.strip().splitlines()[-1])
        ndi = summary["outputs"]["ndi"]
    except (ValueError, IndexError, KeyError):
        return {"error": werr.strip().splitlines()[-1:] or "no summary"}
    up = summary.get("duration_s") or 0
    return {
        "delivered": ndi.get("delivered"),
        "dropped": ndi.get("dropped"),
        "uptime_s": up,
        "mean_fps": round(ndi.get("delivered", 0) / up, 2) if up else None,
        "rendered_mean_fps": round(summary.get("frames_rendered", 0) / up, 2) if up else None,
    }


class _Feeder:
    """The NDI output fed `fps` moving RGBA frames a second from a thread of this process."""

    def __init__(self, name: str, size: int, config_dir: str, fps: float = 30.0) -> None:
        import threading

        import numpy as np

        from worker.output.ndi import NdiOutput

        os.environ["NDI_CONFIG_DIR"] = config_dir  # read by libndi when the sender is made
        self.out = NdiOutput(name, int(fps))
        self.out.start()
        yy, xx = np.mgrid[0:size, 0:size]
        self.base = np.zeros((size, size, 4), np.uint8)
        self.base[..., 1], self.base[..., 2] = yy * 255 // size, 90
        self.base[..., 3] = np.clip(xx * 300 // size, 0, 255)
        self.xx, self.fps = xx, fps
        self.sent, self.t0 = 0, time.monotonic()
        self.t1: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ndi-feed", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            img = self.base.copy()
            img[..., 0] = (self.xx * 255 // len(self.xx) + self.sent * 7) % 256
            self.out.send(img, self.sent, time.time())
            self.sent += 1
            self._stop.wait(max(0.0, self.t0 + self.sent / self.fps - time.monotonic()))

    def stop(self) -> dict[str, Any]:
        if self.t1 is None:
            self._stop.set()
            self._thread.join(5)
            self.out.close()
            self.t1 = time.monotonic()
        wall = (self.t1 or time.monotonic()) - self.t0
        return {
            "delivered": self.sent,
            "uptime_s": round(wall, 2),
            "mean_fps": round(self.sent / wall, 2),
            "target_fps": self.fps,
        }


def format_report(r: dict[str, Any]) -> str:
    s, rx = r["sender"], r["receiver"]
    lines = [
        f"NDI at {r['size']}x{r['size']}, sender: {r['sender_kind']}, {r['seconds']:g} s per receiver mode "
        f"(load average {r['load_avg_1m']})",
        f"  sender: {s.get('delivered')} frames delivered in {s.get('uptime_s')} s = {s.get('mean_fps')} FPS"
        + (f" (pipeline {s['rendered_mean_fps']} FPS, {s.get('dropped')} dropped)" if "rendered_mean_fps" in s else ""),
    ]
    for mode, m in rx.items():
        lines.append(
            f"  receiver {mode:<9}: {m['fps']:5.1f} FPS ({m['frames']} frames in {m['seconds']} s) of "
            f"{m['arrived_fps']} FPS arriving ({100 * (m['share_of_arrived'] or 0):.0f} %), "
            f"latency p50 {m['latency_ms_p50']} ms, CPU {m['cpu_percent']} %"
        )
    return "\n".join(lines)
