"""Where one pair's per-eye closure is lost, frame by frame: asked, drawn, or re-read.

For every frame of a driver on a character, each eye's closure (1 - aperture / its open
aperture on the frontalised face, `fidelity.eye_closure`) four times over: the driver's, the pose's
(what the renderer is asked to draw), the drawn one (the backward map inverted at the picture's own
lid points, so where the warp really puts the lid margins), and MediaPipe's reading of the rendered
frame (two readings averaged, as `fidelity` reads it). Printed per
eye: the r of each step, which frames make the residual of the re-tracked closure against the
driver's (blinks, the calibration window, open eyes between blinks; bands of the driver's head
yaw; the largest single frames) and how much of the drawn-to-re-read difference goes with the
driver's mouth, which the renderer leaves pixel-identical around the eyes.

    STREAM_ANIMATOR_TESTDATA=... python -m worker.tools.eye_frames --driver d12 --character s12 [--save F.npz]
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np

from worker.tools import fidelity
from worker.tools.eye_corners import YAW_BANDS, drawn_at
from worker.track import landmark_ids as L

CALIBRATION = 15  # frames: the driver's neutral is taken over these (`blend`)
BLINK = 0.33  # driver's closure: a frame at least this shut is part of a blink (or a squint)
OPEN = 4.0  # degrees: |driver yaw| under this is a frontal frame


def lid_points(left: bool) -> list[int]:
    """The three upper and three lower lid points `geometry.eye_aperture` measures, then the corners."""
    up, lo = (L.L_EYE_UPPER, L.L_EYE_LOWER) if left else (L.R_EYE_UPPER, L.R_EYE_LOWER)
    return [*up[2:5], *lo[2:5], *(L.L_EYE_CORNERS if left else L.R_EYE_CORNERS)]


@dataclass
class EyeFrames:
    """Per-frame signals of one pair (NaN where no face was re-tracked)."""

    yaw: np.ndarray  # the driver's head yaw, degrees
    mouth: np.ndarray  # the driver's mouth opening, IOD
    aperture: dict[str, np.ndarray]  # "driver_l", "pose_l", "drawn_l", "seen_l" and the same "_r"

    def closure(self, stage: str, side: str) -> np.ndarray:
        return fidelity.eye_closure(list(self.aperture[f"{stage}_{side}"]))


def measure(driver: str, character: str, max_frames: int | None = None) -> EyeFrames:
    """Track, retarget, render and re-track every frame, keeping each eye's aperture at each step."""
    from worker.paths import shared_testdata
    from worker.render.meshwarp import MeshWarpRenderer
    from worker.retarget import Retargeter, RetargetOptions
    from worker.track.mediapipe_tracker import FaceTracker

    root = shared_testdata()
    if root is None:
        raise FileNotFoundError("shared test data not found (footage/driving)")
    states, neutrals = fidelity.track_driver(root / "footage" / "driving" / f"{driver}.mp4", max_frames)
    char = fidelity.portrait_character(character, root)
    renderer = MeshWarpRenderer(size=char.size)
    rt = Retargeter(char, RetargetOptions(idle=False))
    drv = fidelity.Signals()
    ap: dict[str, list[float]] = {f"{s}_{e}": [] for s in ("driver", "pose", "drawn", "seen") for e in "lr"}
    pts = {e: lid_points(e == "l") for e in "lr"}
    nan = (float("nan"), float("nan"))
    with FaceTracker(smoothing=False) as retrack, FaceTracker(smoothing=False, per_frame=True) as reread:
        for face, neutral in zip(states, neutrals, strict=True):
            drv.add(face.landmarks if face.found and face.landmarks is not None else None)
            pose = rt.retarget(face, neutral)
            backward = renderer.backward_map(char, pose)
            frame = fidelity.flatten(renderer.render(char, pose))
            # read twice and averaged, as `fidelity` reads the output's eyes
            reads = [t.measure(frame, face.timestamp) for t in (retrack, reread)]
            seen = np.nanmean(
                [fidelity.eye_apertures(m.landmarks) if m.found and m.landmarks is not None else nan for m in reads],
                axis=0,
            )
            asked = np.asarray(pose.landmarks, np.float64)
            drawn = asked.copy()
            for e in "lr":
                for i in pts[e]:
                    drawn[i, :2] = drawn_at(backward, asked[i, :2], np.asarray(char.landmarks[i, :2], np.float64))
            for k, (left, right) in (("pose", fidelity.eye_apertures(asked)), ("drawn", fidelity.eye_apertures(drawn))):
                ap[f"{k}_l"].append(left)
                ap[f"{k}_r"].append(right)
            ap["seen_l"].append(float(seen[0]))
            ap["seen_r"].append(float(seen[1]))
            ap["driver_l"].append(drv.eye_l[-1])
            ap["driver_r"].append(drv.eye_r[-1])
    return EyeFrames(np.asarray(drv.yaw), np.asarray(drv.mouth), {k: np.asarray(v) for k, v in ap.items()})


def _r(a: np.ndarray, b: np.ndarray, sel: np.ndarray | None = None) -> float:
    ok = np.isfinite(a) & np.isfinite(b) & (sel if sel is not None else True)
    if ok.sum() < 4 or a[ok].std() < 1e-9 or b[ok].std() < 1e-9:
        return float("nan")
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def residual(d: np.ndarray, o: np.ndarray) -> np.ndarray:
    """Each frame's part of 1 - r^2: the standardised re-read closure less r times the driver's,
    squared, as a share of the whole (sums to 1 over the frames)."""
    ok = np.isfinite(d) & np.isfinite(o)
    dz = (d - d[ok].mean()) / d[ok].std()
    oz = (o - o[ok].mean()) / o[ok].std()
    e = np.where(ok, oz - _r(d, o) * dz, 0.0) ** 2
    return e / max(float(e.sum()), 1e-12)


def report(f: EyeFrames, top: int = 8) -> str:
    lines = []
    n = len(f.yaw)
    for side, name in (("l", "left"), ("r", "right")):
        d, p, w, s = (f.closure(k, side) for k in ("driver", "pose", "drawn", "seen"))
        share = residual(d, s)
        lines.append(
            f"{name} eye: r driver->pose {_r(d, p):.3f}, pose->drawn {_r(p, w):.3f}, drawn->re-read {_r(w, s):.3f}; "
            f"driver->re-read {_r(d, s):.3f} (the figure `fidelity` judges)"
        )
        frontal = np.abs(f.yaw) < OPEN
        classes = (
            ("calibration window", np.arange(n) < CALIBRATION),
            (f"blinks (driver >= {BLINK:g} shut)", d >= BLINK),
            (f"open, |yaw| < {OPEN:g} deg", (d < BLINK) & frontal & (np.arange(n) >= CALIBRATION)),
            ("open, turned", (d < BLINK) & ~frontal & (np.arange(n) >= CALIBRATION)),
        )
        for label, sel in classes:
            lines.append(
                f"  {label:28s} {int(sel.sum()):4d} frames, {share[sel].sum():5.1%} of the residual; "
                f"r drawn->re-read there {_r(w, s, sel):.3f}, mean re-read - drawn {np.nanmean((s - w)[sel]):+.3f}"
            )
        for lo, hi in YAW_BANDS:
            sel = (f.yaw >= lo) & (f.yaw < hi)
            if sel.any():
                lines.append(
                    f"  yaw {lo:+4.0f}..{hi:+4.0f} deg {int(sel.sum()):4d} frames, {share[sel].sum():5.1%} of the "
                    f"residual; mean re-read - drawn {np.nanmean((s - w)[sel]):+.3f}, drawn - pose "
                    f"{np.nanmean((w - p)[sel]):+.3f}"
                )
        sel = (d < BLINK) & frontal
        lines.append(
            f"  open frontal frames: re-read - drawn against the driver's mouth r {_r(s - w, f.mouth, sel):+.2f}, "
            f"against the drawn closure r {_r(s - w, w, sel):+.2f}; its spread {np.nanstd((s - w)[sel]):.3f} "
            f"against the drawn closure's {np.nanstd(w[sel]):.3f}"
        )
        order = np.argsort(-share)[:top]
        lines.append("  largest frames (frame: share, closure driver / pose / drawn / re-read, yaw):")
        for i in order:
            lines.append(
                f"    {i:4d}: {share[i]:5.1%}  {d[i]:+.2f} / {p[i]:+.2f} / {w[i]:+.2f} / {s[i]:+.2f}  {f.yaw[i]:+5.1f}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m worker.tools.eye_frames", description=__doc__.split("\n\n")[0])
    ap.add_argument("--driver", default="d12")
    ap.add_argument("--character", default="s12")
    ap.add_argument("--max-frames", type=int)
    ap.add_argument("--save", help="write the per-frame signals to this .npz")
    a = ap.parse_args(argv)
    f = measure(a.driver, a.character, a.max_frames)
    if a.save:
        np.savez(a.save, yaw=f.yaw, mouth=f.mouth, **f.aperture)
    print(report(f))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
