"""Texture jitter: how much the face's own texture shakes, the way a viewer sees it.

Corners inside the face (cv2.goodFeaturesToTrack) are followed from frame to frame with
pyramidal Lucas-Kanade optical flow, forward-backward checked (a point whose backward track
misses its start by more than `FB_MAX_PX` is dropped), and re-seeded every `RESEED` frames.
Each point's frame-to-frame acceleration |x(t+1) - 2x(t) + x(t-1)| is divided by the
inter-ocular distance; the median over all points and frames is the clip's texture jitter.
Output over driver is the ratio: below 1 the character moves more calmly than the raw driver.

MediaPipe is used once per re-seed, on that frame only, to find the face region and the
inter-ocular distance; the motion itself is measured on pixels, so the instrument does not
wander with MediaPipe's re-tracking of a painted face.

    python -m worker.tools.texture_jitter DRIVER.mp4 OUTPUT.mp4
    python -m worker.tools.texture_jitter --table OUTDIR   # the 16 shared pairs, rendered by `demo`
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

RESEED = 15  # frames between re-seeds
FB_MAX_PX = 0.5  # forward-backward error above which a track is dropped
MAX_CORNERS = 200
LK: dict[str, Any] = {
    "winSize": (21, 21),
    "maxLevel": 3,
    "criteria": (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01),
}
EYE_CORNERS = ((33, 133), (362, 263))  # (outer, inner) of each eye: their midpoints are the eye centres
DRIVERS = ("d0", "d3", "d9", "d12")
CHARACTERS = ("s9", "s10", "s12", "s42")
TARGET = 0.8


@dataclass
class Jitter:
    median: float  # median acceleration, inter-ocular distances per frame^2
    samples: int  # accelerations measured
    frames: int
    seeds: int  # re-seeds that found a face


def face_region(rgb: np.ndarray) -> tuple[np.ndarray, float] | None:
    """(mask of the inner face, inter-ocular distance px) from one MediaPipe pass, or None."""
    from worker.characters.face_finder import shared_finder

    found = shared_finder().find(np.ascontiguousarray(rgb))
    if not found.found or found.landmarks is None:
        return None
    lm = found.landmarks[:, :2].astype(np.float32)
    eyes = [(lm[a] + lm[b]) / 2 for a, b in EYE_CORNERS]
    iod = float(np.linalg.norm(eyes[0] - eyes[1]))
    if iod < 4:
        return None
    mask = np.zeros(rgb.shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(lm).astype(np.int32), 255)
    # stay off the silhouette: corners there belong to the background as much as to the face
    k = max(3, int(iod * 0.15)) | 1
    mask = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    return mask, iod


class TextureJitter:
    """The instrument fed one RGB uint8 frame at a time (`add`), so a caller that renders frames
    can measure them as they come; `result()` is the clip's `Jitter`."""

    def __init__(self, reseed: int = RESEED) -> None:
        self.reseed = reseed
        self.accels: list[np.ndarray] = []
        self.prev_gray: np.ndarray | None = None
        self.pts: np.ndarray | None = None  # (n, 2) current positions of the live tracks
        self.hist: list[np.ndarray] = []  # the live tracks' last positions (NaN once lost)
        self.iod = 1.0
        self.n = self.seeds = 0

    def add(self, rgb: np.ndarray) -> None:
        i, self.n = self.n, self.n + 1
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        if i % self.reseed == 0:
            face = face_region(rgb)
            self.pts, self.hist = None, []
            if face is not None:
                mask, self.iod = face
                self.seeds += 1
                found = cv2.goodFeaturesToTrack(
                    gray,
                    MAX_CORNERS,
                    qualityLevel=0.005,
                    minDistance=max(3.0, self.iod / 16),
                    mask=mask,
                    blockSize=7,
                )
                if found is not None:
                    self.pts = found.reshape(-1, 2).astype(np.float32)
                    self.hist = [self.pts.copy()]
        elif self.pts is not None and self.prev_gray is not None:
            pts = self.pts
            alive = np.isfinite(pts[:, 0])
            new = np.full_like(pts, np.nan)
            if alive.any():
                p0 = pts[alive].reshape(-1, 1, 2)
                fwd, st1, _ = cv2.calcOpticalFlowPyrLK(self.prev_gray, gray, p0, None, **LK)
                back, st2, _ = cv2.calcOpticalFlowPyrLK(gray, self.prev_gray, fwd, None, **LK)
                fb = np.linalg.norm(back.reshape(-1, 2) - pts[alive], axis=1)
                ok = (st1.ravel() == 1) & (st2.ravel() == 1) & (fb < FB_MAX_PX)
                moved = fwd.reshape(-1, 2)
                moved[~ok] = np.nan  # lost for good: not tracked again until the next seed
                new[alive] = moved
            hist = self.hist
            hist.append(new)
            if len(hist) >= 3:
                a = hist[-1] - 2 * hist[-2] + hist[-3]
                a = np.linalg.norm(a, axis=1) / self.iod
                self.accels.append(a[np.isfinite(a)])
            self.pts = new
            self.hist = hist[-3:]
        self.prev_gray = gray

    def result(self) -> Jitter:
        allacc = np.concatenate(self.accels) if self.accels else np.empty(0)
        med = float(np.median(allacc)) if allacc.size else float("nan")
        return Jitter(median=med, samples=int(allacc.size), frames=self.n, seeds=self.seeds)


def texture_jitter(frames: Iterable[np.ndarray], reseed: int = RESEED) -> Jitter:
    """Texture jitter of a clip given as RGB uint8 frames (see the module doc)."""
    meter = TextureJitter(reseed)
    for rgb in frames:
        meter.add(rgb)
    return meter.result()


def read_rgb(path: str | Path, max_frames: int | None = None) -> Iterator[np.ndarray]:
    import av

    with av.open(str(path)) as c:
        for i, fr in enumerate(c.decode(c.streams.video[0])):
            if max_frames is not None and i >= max_frames:
                return
            yield fr.to_ndarray(format="rgb24")


@dataclass
class PairJitter:
    driver: str
    character: str
    driver_jitter: float
    output_jitter: float
    ratio: float


def measure_pair(driver_video: str | Path, output_video: str | Path, max_frames: int | None = None) -> PairJitter:
    d = texture_jitter(read_rgb(driver_video, max_frames))
    o = texture_jitter(read_rgb(output_video, max_frames))
    return PairJitter(
        driver=Path(driver_video).stem,
        character=Path(output_video).stem,
        driver_jitter=d.median,
        output_jitter=o.median,
        ratio=o.median / d.median if d.median > 0 else float("nan"),
    )


def render_demo(driver: Path, character: Path, out: Path, size: int = 512, max_frames: int = 0) -> None:
    """The output video as a user would make it (`stream-animator demo`), written atomically."""
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.tmp{out.suffix}")
    cmd = [
        sys.executable,
        "-m",
        "worker",
        "demo",
        "--driver",
        str(driver),
        "--character",
        str(character),
        "--out",
        str(tmp),
        "--size",
        str(size),
    ]
    if max_frames:
        cmd += ["--max-frames", str(max_frames)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"demo failed for {driver.name} x {character.name}: {r.stderr.strip()[-500:]}")
    os.replace(tmp, out)


def pair_table(outdir: Path, root: Path, drivers=DRIVERS, characters=CHARACTERS) -> list[PairJitter]:
    """Render (unless already in `outdir`) and measure every driver x character pair."""
    from worker.progress import progress

    outdir.mkdir(parents=True, exist_ok=True)
    rows = []
    bar = progress(len(drivers) * len(characters), desc="texture jitter", unit="pair")
    for d in drivers:
        drv = root / "footage" / "driving" / f"{d}.mp4"
        for c in characters:
            out = outdir / f"{d}_{c}.mp4"
            if not out.exists():
                render_demo(drv, root / "footage" / "portraits" / f"{c}.jpg", out)
            r = measure_pair(drv, out)
            r.driver, r.character = d, c
            rows.append(r)
            bar.update()
    bar.close()
    return rows


def format_table(rows: list[PairJitter]) -> str:
    lines = [f"{'pair':<9} {'driver':>8} {'output':>8} {'ratio':>6}"]
    for r in rows:
        flag = "" if r.ratio <= TARGET else "  > target"
        lines.append(
            f"{r.driver + 'x' + r.character:<9} {r.driver_jitter:8.4f} {r.output_jitter:8.4f} {r.ratio:6.2f}{flag}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from worker.paths import shared_testdata

    ap = argparse.ArgumentParser(prog="python -m worker.tools.texture_jitter", description=__doc__.split("\n")[0])
    ap.add_argument("videos", nargs="*", help="DRIVER OUTPUT: measure one pair")
    ap.add_argument("--table", metavar="OUTDIR", help="render (if missing) and measure the 16 shared pairs")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = ap.parse_args(argv)
    if args.table:
        root = shared_testdata()
        if root is None:
            print("error: ../shared/testdata not found (set STREAM_ANIMATOR_TESTDATA)", file=sys.stderr)
            return 2
        rows = pair_table(Path(args.table), root)
    elif len(args.videos) == 2:
        rows = [measure_pair(*args.videos)]
    else:
        ap.error("give DRIVER OUTPUT, or --table OUTDIR")
    print(json.dumps([asdict(r) for r in rows]) if args.json else format_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
