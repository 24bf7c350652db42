"""Where the mesh warp draws each eye's corners against the pose, and where MediaPipe reads them.

For every frame of a driver on a character: the pose's eye corners (what the retargeter asks
for), where the warp really draws the picture's corners (its backward map inverted at them, to a
fraction of a pixel), and where MediaPipe re-tracks them in the output. Printed per band of the
driver's head yaw: each eye's width drawn / asked and re-tracked / drawn, and the mean offset of
each corner. A head turn that the warp draws too wide or narrow is the renderer's; a width that
MediaPipe reads differently from what is drawn is the instrument's (see docs/performance.md, "Eyes").

    STREAM_ANIMATOR_TESTDATA=... python -m worker.tools.eye_corners --driver d12 --character s12
"""

from __future__ import annotations

import argparse

import numpy as np

from worker.tools import fidelity
from worker.track import landmark_ids as L

CORNERS = (*L.R_EYE_CORNERS, *L.L_EYE_CORNERS)  # right outer, inner, left outer, inner (subject's)
YAW_BANDS = ((-90.0, -12.0), (-12.0, -4.0), (-4.0, 4.0), (4.0, 12.0), (12.0, 90.0))


def drawn_at(backward: np.ndarray, guess: np.ndarray, source: np.ndarray, reach: int = 25) -> np.ndarray:
    """Where the backward map (output px -> picture px) draws the picture's point `source`: the
    nearest pixel within `reach` of `guess`, refined by the map's local affine (sub-pixel)."""
    h, w = backward.shape[:2]
    x0, y0 = (int(max(0, min(v - reach, lim - 2 * reach - 2))) for v, lim in zip(np.round(guess), (w, h), strict=True))
    win = backward[y0 : y0 + 2 * reach + 1, x0 : x0 + 2 * reach + 1]
    yy, xx = np.unravel_index(((win - source) ** 2).sum(-1).argmin(), win.shape[:2])
    yy, xx = min(yy, win.shape[0] - 2), min(xx, win.shape[1] - 2)
    jac = np.stack([win[yy, xx + 1] - win[yy, xx], win[yy + 1, xx] - win[yy, xx]], 1).astype(np.float64)
    try:
        step = np.linalg.solve(jac, source - win[yy, xx])
    except np.linalg.LinAlgError:
        step = np.zeros(2)
    return np.array([x0 + xx, y0 + yy], np.float64) + np.clip(step, -1.5, 1.5)


def measure(driver: str, character: str, max_frames: int | None = None) -> dict[str, np.ndarray]:
    """Per frame: 'yaw' (the driver's, degrees) and (frames, 4, 2) corners 'pose', 'drawn', 'seen'."""
    from worker.paths import shared_testdata
    from worker.render.meshwarp import MeshWarpRenderer
    from worker.retarget import Retargeter, RetargetOptions
    from worker.track.mediapipe_tracker import FaceTracker

    root = shared_testdata()
    if root is None:
        raise FileNotFoundError("shared test data not found (footage/driving)")
    states, neutrals = fidelity.track_driver(root / "footage" / "driving" / f"{driver}.mp4", max_frames)
    char = fidelity.portrait_character(character, root)
    src = char.landmarks[list(CORNERS), :2].astype(np.float64)
    renderer = MeshWarpRenderer(size=char.size)
    rt = Retargeter(char, RetargetOptions(idle=False))
    drv = fidelity.Signals()
    out: dict[str, list] = {"pose": [], "drawn": [], "seen": []}
    with FaceTracker(smoothing=False) as retrack:
        for face, neutral in zip(states, neutrals, strict=True):
            drv.add(face.landmarks if face.found and face.landmarks is not None else None)
            pose = rt.retarget(face, neutral)
            backward = renderer.backward_map(char, pose)
            asked = pose.landmarks[list(CORNERS), :2].astype(np.float64)
            out["pose"].append(asked)
            out["drawn"].append(np.stack([drawn_at(backward, a, s) for a, s in zip(asked, src, strict=True)]))
            m = retrack.measure(fidelity.flatten(renderer.render(char, pose)), face.timestamp)
            seen = np.full((4, 2), np.nan)
            if m.found and m.landmarks is not None:
                seen = m.landmarks[list(CORNERS), :2]
            out["seen"].append(np.asarray(seen, np.float64))
    return {"yaw": np.asarray(drv.yaw, np.float64), **{k: np.asarray(v) for k, v in out.items()}}


def table(m: dict[str, np.ndarray]) -> str:
    def width(a: np.ndarray, eye: int) -> np.ndarray:
        return np.linalg.norm(a[:, 2 * eye + 1] - a[:, 2 * eye], axis=1)

    lines = [
        "yaw band (deg)   frames  width drawn/asked R L   re-tracked/drawn R L   corner offset drawn-asked px "
        "(R outer, R inner, L outer, L inner: x,y)"
    ]
    for lo, hi in YAW_BANDS:
        sel = (m["yaw"] >= lo) & (m["yaw"] < hi)
        if not sel.any():
            continue
        d, p, s = m["drawn"][sel], m["pose"][sel], m["seen"][sel]
        ratios = [np.nanmedian(width(d, e) / width(p, e)) for e in (0, 1)]
        ratios += [np.nanmedian(width(s, e) / width(d, e)) for e in (0, 1)]
        off = np.median(d - p, axis=0)
        lines.append(
            f"{lo:+6.0f}..{hi:+4.0f}    {int(sel.sum()):6d}  {ratios[0]:10.3f} {ratios[1]:6.3f}   "
            f"{ratios[2]:13.3f} {ratios[3]:6.3f}   " + "  ".join(f"{x:+.1f},{y:+.1f}" for x, y in off)
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m worker.tools.eye_corners", description=__doc__.split("\n\n")[0])
    ap.add_argument("--driver", default="d12")
    ap.add_argument("--character", default="s12")
    ap.add_argument("--max-frames", type=int)
    a = ap.parse_args(argv)
    print(table(measure(a.driver, a.character, a.max_frames)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
