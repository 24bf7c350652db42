"""A contact sheet of driver | output pairs at the frames that show the most: open mouth, closed
eyes, head turn, head tilt (chosen from the driver's tracked face, not by hand)."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from worker.errors import UserError
from worker.output.base import checkerboard
from worker.track.face_state import FaceState

# label -> score of a driver face (higher = shows it better)
MOMENTS = {
    "open mouth": lambda f: f.mouth_open,
    "closed eyes": lambda f: -(f.eye_open_left + f.eye_open_right),
    "head turn": lambda f: abs(f.yaw),
    "head tilt": lambda f: abs(f.roll),
}


# The driver's vowel-shaped frames (`vowel_shapes.driver_vowel_frames`: open and unrounded, rounded,
# spread), shown as moments of the before / after sheets: the camera's vowels, as a viewer sees them
VOWEL_MOMENTS = {"vowel A": "A", "vowel O/U": "O/U", "vowel I/E": "I/E"}

SHEET_SUFFIXES = (".png", ".jpg", ".jpeg")


def check_sheet_path(path: Path) -> None:
    """Before any work: a known image suffix, in a folder that can be written."""
    from worker.output.file import ensure_writable_dir

    if path.suffix.lower() not in SHEET_SUFFIXES:
        raise UserError(f"{path}: a contact sheet is {', '.join(SHEET_SUFFIXES)}")
    if path.is_dir():
        raise UserError(f"{path}: is a folder, not an image file")
    ensure_writable_dir(path.parent, path)


class ContactSheet:
    def __init__(self, cell: int = 224) -> None:
        self.cell = cell
        self.best: dict[str, tuple[float, np.ndarray, np.ndarray, int]] = {}

    def offer(self, index: int, face: FaceState, driver_bgr: np.ndarray, output_rgba: np.ndarray) -> None:
        if not face.found:
            return
        for label, score in MOMENTS.items():
            s = float(score(face))
            if label not in self.best or s > self.best[label][0]:
                self.best[label] = (s, self._fit(driver_bgr), self._fit_rgba(output_rgba), index)

    def _fit(self, bgr: np.ndarray) -> np.ndarray:
        h, w = bgr.shape[:2]
        side = min(h, w)
        y0, x0 = (h - side) // 2, (w - side) // 2
        return cv2.resize(bgr[y0 : y0 + side, x0 : x0 + side], (self.cell, self.cell), interpolation=cv2.INTER_AREA)

    def _fit_rgba(self, rgba: np.ndarray) -> np.ndarray:
        small = cv2.resize(rgba, (self.cell, self.cell), interpolation=cv2.INTER_AREA).astype(np.float32)
        a = small[..., 3:4] / 255.0
        bg = checkerboard(self.cell, self.cell, 14)[..., :3].astype(np.float32)
        rgb = small[..., :3] * a + bg * (1 - a)
        return cv2.cvtColor(rgb.astype(np.uint8), cv2.COLOR_RGB2BGR)

    def save(self, path: str | Path) -> Path:
        """Rows of [driver | output] with a caption each; written atomically as PNG."""
        rows = []
        for label in MOMENTS:
            if label not in self.best:
                continue
            _, drv, out, idx = self.best[label]
            row = np.hstack([drv, np.full((self.cell, 6, 3), 255, np.uint8), out])
            cap = np.full((26, row.shape[1], 3), 255, np.uint8)
            cv2.putText(
                cap,
                f"{label} (frame {idx}): driver | character",
                (6, 18),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.5,
                (40, 40, 40),
                1,
                cv2.LINE_AA,
            )
            rows.append(np.vstack([cap, row]))
        if not rows:
            raise ValueError("no frame with a face to show")
        half = (len(rows) + 1) // 2
        cols = [np.vstack(rows[:half]), np.vstack(rows[half:] or [np.zeros_like(rows[0])])]
        if cols[1].shape[0] < cols[0].shape[0]:
            pad = np.full((cols[0].shape[0] - cols[1].shape[0], cols[1].shape[1], 3), 255, np.uint8)
            cols[1] = np.vstack([cols[1], pad])
        sheet = np.hstack([cols[0], np.full((cols[0].shape[0], 12, 3), 255, np.uint8), cols[1]])
        path = Path(path)
        check_sheet_path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        ok, data = cv2.imencode(path.suffix.lower(), sheet)  # the format the name says (JPEG for .jpg)
        if not ok:
            raise UserError(f"{path}: could not encode the contact sheet")
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data.tobytes())
        os.replace(tmp, path)
        return path


# Scenes a character is shown over in the before / after sheets: a green screen (a light fringe
# shows on it) and a dark stream scene (a dark or light fringe and leftover background show there)
SCENES = {"green": (0, 177, 64), "dark": (28, 30, 38)}


def _scene(name: str, side: int) -> np.ndarray:
    """(side, side, 3) RGB float: flat green, or a dark scene with a soft vertical gradient."""
    base = np.array(SCENES[name], np.float32)
    img = np.broadcast_to(base, (side, side, 3)).copy()
    if name == "dark":
        img *= np.linspace(1.3, 0.7, side, dtype=np.float32)[:, None, None]
    return img


def _zoom(img: np.ndarray, zoom: float, centre: tuple[float, float]) -> np.ndarray:
    """A square of `img` around `centre` (x, y in pixels), `zoom` times smaller than the image."""
    if zoom <= 1.0:
        return img
    h, w = img.shape[:2]
    side = int(round(min(h, w) / zoom))
    x0 = int(np.clip(round(centre[0] - side / 2), 0, w - side))
    y0 = int(np.clip(round(centre[1] - side / 2), 0, h - side))
    return img[y0 : y0 + side, x0 : x0 + side]


def _eyes(landmarks: np.ndarray | None, shape: tuple[int, ...]) -> tuple[float, float]:
    """Between the eyes (pixels), or the middle of the picture where no face was found."""
    from worker.track import landmark_ids as L

    if landmarks is None:
        return shape[1] / 2, shape[0] / 2
    p = np.asarray(landmarks)[[L.LEFT_EYE_INNER, L.LEFT_EYE_OUTER, L.RIGHT_EYE_INNER, L.RIGHT_EYE_OUTER], :2]
    return float(p[:, 0].mean()), float(p[:, 1].mean())


def _track_still(rgba: np.ndarray) -> np.ndarray | None:
    """The face landmarks of one RGBA frame (over grey), None where no face is found."""
    from worker.tools.fidelity import flatten
    from worker.track.mediapipe_tracker import FaceTracker

    with FaceTracker(smoothing=False) as tracker:
        m = tracker.measure(flatten(rgba), 0.0)
    return m.landmarks if m.found else None


def before_after(
    driver: Path,
    before: Path | list[Path],
    after: Path | list[Path],
    out: Path,
    scene: str = "green",
    cell: int = 256,
    moments: list[str] | None = None,
    zoom: float = 1.0,
) -> Path:
    """Rows [driver | before | after] at the driver's telling moments (MOMENTS) over `scene`.

    `before` / `after`: folders of RGBA PNG frames (`demo --out DIR/`), one per driver frame,
    e.g. rendered by two versions of the renderer; the moments come from tracking the driver.
    Several folders each (one character each): a row per character and moment. `moments`: only
    these (MOMENTS and VOWEL_MOMENTS; by default MOMENTS, the extremes); `zoom`: every cell around
    the eyes (where the tracker finds them) that many times larger.
    """
    from worker.tools.fidelity import read_video, track_driver
    from worker.tools.vowel_shapes import driver_vowel_frames

    befores = [before] if isinstance(before, str | Path) else list(before)
    afters = [after] if isinstance(after, str | Path) else list(after)
    if len(befores) != len(afters):
        raise UserError(f"{len(befores)} --before folders against {len(afters)} --after folders")
    known = [*MOMENTS, *VOWEL_MOMENTS]
    unknown = sorted(set(moments or ()) - set(known))
    if unknown:
        raise UserError(f"moment {unknown[0]!r}: one of {', '.join(known)}")
    runs = []
    for b, a in zip(befores, afters, strict=True):
        frames = {k: sorted(Path(d).glob("*.png")) for k, d in (("before", b), ("after", a))}
        if not frames["before"] or not frames["after"]:
            raise UserError(f"{b} / {a}: no PNG frames (render them with `demo --out DIR/`)")
        runs.append((Path(a).name, frames))
    states, neutrals = track_driver(driver)
    n = min([len(states)] + [len(f[k]) for _, f in runs for k in f])
    best: dict[str, tuple[float, int]] = {}
    for i, face in enumerate(states[:n]):
        if face.found:
            for label, score in MOMENTS.items():
                s = float(score(face))
                if (moments is None or label in moments) and (label not in best or s > best[label][0]):
                    best[label] = (s, i)
    wanted = [m for m in VOWEL_MOMENTS if moments is not None and m in moments]
    if wanted:
        picks = driver_vowel_frames(states[:n], neutrals[:n])
        for label in wanted:
            if not picks.get(VOWEL_MOMENTS[label]):
                raise UserError(f"{driver}: no frame where the driver's mouth is shaped for {label}")
            best[label] = (0.0, picks[VOWEL_MOMENTS[label]][0])
    driver_frames = {i: bgr for i, (bgr, _) in enumerate(read_video(driver, n))}
    bg = _scene(scene, cell)
    sheet = ContactSheet(cell)
    rows = []
    for (label, (_, i)), (name, frames) in ((m, r) for r in runs for m in best.items()):
        drv = driver_frames[i]
        cells = [sheet._fit(_zoom(drv, zoom, _eyes(states[i].landmarks, drv.shape)))]
        centre = None
        for k in ("before", "after"):
            rgba = cv2.cvtColor(cv2.imread(str(frames[k][i]), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGRA2RGBA)
            if centre is None and zoom > 1.0:  # the same square of both: where the eyes are drawn before
                centre = _eyes(_track_still(rgba), rgba.shape)
            small = cv2.resize(_zoom(rgba, zoom, centre or (0, 0)), (cell, cell), interpolation=cv2.INTER_AREA)
            small = small.astype(np.float32)
            a = small[..., 3:4] / 255.0
            cells.append(cv2.cvtColor((small[..., :3] * a + bg * (1 - a)).astype(np.uint8), cv2.COLOR_RGB2BGR))
        gap = np.full((cell, 6, 3), 255, np.uint8)
        row = np.hstack([cells[0], gap, cells[1], gap, cells[2]])
        cap = np.full((26, row.shape[1], 3), 255, np.uint8)
        cv2.putText(
            cap,
            f"{label} (frame {i}): driver | before | after" + (f" ({name})" if len(runs) > 1 else ""),
            (6, 18),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.5,
            (40, 40, 40),
            1,
            cv2.LINE_AA,
        )
        rows.append(np.vstack([cap, row]))
    out = Path(out)
    check_sheet_path(out)
    ok, data = cv2.imencode(out.suffix.lower(), np.vstack(rows))
    if not ok:
        raise UserError(f"{out}: could not encode the sheet")
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_bytes(data.tobytes())
    os.replace(tmp, out)
    return out


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(
        prog="python -m worker.tools.contact_sheet",
        description="Before / after sheet: [driver | before | after] at the "
        "driver's telling moments, over a green screen or a dark scene.",
    )
    ap.add_argument("--driver", required=True, type=Path)
    ap.add_argument(
        "--before", required=True, type=Path, nargs="+", help="folder(s) of RGBA PNG frames (demo --out DIR/)"
    )
    ap.add_argument(
        "--after", required=True, type=Path, nargs="+", help="folder(s) of RGBA PNG frames, one per --before"
    )
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--scene", choices=sorted(SCENES), default="green")
    ap.add_argument(
        "--moment",
        action="append",
        choices=[*MOMENTS, *VOWEL_MOMENTS],
        help="only this moment (repeatable; default: the extremes, no vowels)",
    )
    ap.add_argument("--zoom", type=float, default=1.0, help="show the middle of each cell (the eyes) this many times")
    a = ap.parse_args(argv)
    try:
        print(before_after(a.driver, a.before, a.after, a.out, a.scene, moments=a.moment, zoom=a.zoom))
    except UserError as e:
        print(f"error: {e}")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
