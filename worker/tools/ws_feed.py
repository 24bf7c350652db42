"""A worker process that only serves frames on the ws output, for the kill-and-restart checks.

`python -m worker.tools.ws_feed [character|halves]` listens on the address kept in the user's
settings (STREAM_ANIMATOR_CONFIG), prints the Browser Source page's address, then sends 30 FPS
512x512 frames until it is killed or its stdin closes: `bench --ws` and tests/test_source_page.py SIGKILL it and
start it again to time how long the page takes to paint again.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import numpy as np

FPS = 30.0
SIZE = 512


def halves(i: int, size: int = SIZE) -> np.ndarray:
    """Transparent left half, an opaque right half whose red channel counts frames."""
    rgba = np.zeros((size, size, 4), np.uint8)
    rgba[:, size // 2 :, :] = (i % 256, 128, 255 - i % 256, 255)
    return rgba


def character_frames() -> list[np.ndarray]:
    """The painted cut-out character, 512x512 RGBA, moved a little each frame (a realistic picture to encode)."""
    import cv2

    from worker.characters.image_io import load_image
    from worker.paths import DEMO_CHARACTER

    rgba = cv2.resize(load_image(DEMO_CHARACTER).rgba, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    out = []
    for i in range(16):
        m = np.array([[1, 0, 6 * np.sin(i / 16 * 2 * np.pi)], [0, 1, 3 * np.cos(i / 16 * 2 * np.pi)]], np.float32)
        out.append(cv2.warpAffine(rgba, m, (SIZE, SIZE), borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0)))
    return out


class Producer:
    """Sends `frames` in turn at FPS on its own thread, like the live fanout."""

    def __init__(self, out, frames: list[np.ndarray]) -> None:
        self.out, self.frames, self.stop = out, frames, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        i, t_next = 0, time.monotonic()
        while not self.stop.is_set():
            self.out.send(self.frames[i % len(self.frames)], i, time.time())
            i += 1
            t_next += 1.0 / FPS
            self.stop.wait(max(0.0, t_next - time.monotonic()))

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)


class FeedProcess:
    """This module run as a process of its own (to be killed for real), or `cmd` (e.g. the real
    `run --output ws`); `url` is its page's address from its output ("" when it did not start).
    Inherits the environment, so STREAM_ANIMATOR_CONFIG picks the address."""

    def __init__(self, kind: str = "character", cmd: list[str] | None = None, timeout: float = 120.0) -> None:
        self.proc = subprocess.Popen(
            cmd or [sys.executable, "-m", "worker.tools.ws_feed", kind],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if cmd else None,  # `run` says the address among its log lines
            text=True,
        )
        self.url = ""
        found = threading.Event()
        # read on a thread (a silent child must not hang the caller), and keep reading whatever
        # else it prints so it never blocks on a full pipe
        threading.Thread(target=self._read, args=(found,), daemon=True).start()
        if not found.wait(timeout) or not self.url:
            self.kill()

    def _read(self, found: threading.Event) -> None:
        out = self.proc.stdout
        for line in out if out is not None else ():
            if not found.is_set() and "/source?token=" in line:  # ws_feed prints the address; `run`:
                self.url = line.strip().split()[-1]  # "Browser Source: <address>"
                found.set()
        found.set()  # ended without one

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, the sockets die with the process."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        if self.proc.stdin is not None:
            self.proc.stdin.close()


def main(kind: str = "character") -> None:
    from worker.web.ws_output import WsOutput

    frames = [halves(i) for i in range(8)] if kind == "halves" else character_frames()
    out = WsOutput()  # the kept address: the same page address after every restart
    out.start()
    Producer(out, frames)
    print(out.source_url(), flush=True)
    sys.stdin.read()  # until killed, or its parent closes the pipe (or dies): never left running


if __name__ == "__main__":
    main(*sys.argv[1:2])
