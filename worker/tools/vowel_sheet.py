"""A contact sheet of a character saying a vowel series (rest, A, I, U, E, O) from espeak-ng speech.

`python -m worker.tools.vowel_sheet [--character IMG] [--out docs/vowels.png]`: each vowel is
spoken, analysed exactly as `render` does, and the character drawn at the vowel's widest moment,
captioned with what the analysis heard there (openness and the vowel weights).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from worker.audio.analysis import MouthAnalyzer, signal_at
from worker.audio.features import RATE
from worker.audio.held_vowels import SAYS, held_vowel
from worker.output.base import checkerboard
from worker.paths import DEMO_CHARACTER
from worker.render.base import FrameInput
from worker.retarget.mouth_signal import VOWELS


def make_sheet(
    character: str | Path = DEMO_CHARACTER, out: str | Path = "docs/vowels.png", size: int = 384, voice: str = "en-us"
) -> Path:
    from worker.characters.preprocess import PreprocessSettings, preprocess_image
    from worker.render import create_renderer
    from worker.retarget import Retargeter, RetargetOptions
    from worker.track.face_state import FaceState

    parts, mids, t = [np.zeros(RATE // 2, np.float32)], [("rest", 0.2, 0.3)], 0.5
    for v in VOWELS:
        x = held_vowel(v, voice, repeats=3 if v == "E" else 2)
        mids.append((v, t, t + len(x) / RATE))
        parts += [x, np.zeros(RATE // 2, np.float32)]
        t += len(x) / RATE + 0.5
    track = MouthAnalyzer().analyze(np.concatenate(parts))
    assets = preprocess_image(character, PreprocessSettings(size=size))
    renderer = create_renderer("meshwarp", size=size)
    cells = []
    for label, a, b in mids:
        # the vowel's widest moment in its middle half (a held vowel swells and fades)
        rows = track[(track[:, 0] >= a + (b - a) / 4) & (track[:, 0] <= b - (b - a) / 4)]
        tm = float(rows[int(np.argmax(rows[:, 1])), 0])
        # idle off: every cell in the same head pose, so only the mouth differs
        r = Retargeter(assets, RetargetOptions(lipsync="always", idle=False))
        sig = signal_at(track, tm)
        rgba = renderer.draw(assets, FrameInput.of_pose(r.retarget(FaceState(found=False, timestamp=tm), None, sig)))
        cells.append(_cell(rgba, assets.landmarks, label, sig))
    renderer.close()
    sheet = np.hstack([np.hstack([c, np.full((c.shape[0], 4, 3), 255, np.uint8)]) for c in cells])[:, :-4]
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.png")
    cv2.imwrite(str(tmp), sheet)
    tmp.replace(path)
    return path


def _cell(rgba: np.ndarray, lm: np.ndarray, label: str, sig) -> np.ndarray:
    """The lower face (nose to chin) on a checkerboard, captioned."""
    pts = np.asarray(lm)[:, :2]
    cx, cy = pts[:, 0].mean(), pts[:, 1].mean()
    half = int((pts[:, 0].max() - pts[:, 0].min()) * 0.62)
    y0, x0 = int(cy - half * 0.8), int(cx - half)
    crop = rgba[max(y0, 0) : y0 + 2 * half, max(x0, 0) : x0 + 2 * half]
    crop = cv2.resize(crop, (200, 200), interpolation=cv2.INTER_AREA).astype(np.float32)
    a = crop[..., 3:4] / 255.0
    rgb = crop[..., :3] * a + checkerboard(200, 200, 12)[..., :3].astype(np.float32) * (1 - a)
    img = cv2.cvtColor(rgb.astype(np.uint8), cv2.COLOR_RGB2BGR)
    cap = np.full((44, 200, 3), 255, np.uint8)
    title = "silence" if label == "rest" else f'{label} ("{SAYS[label]}")'
    cv2.putText(cap, title, (6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (30, 30, 30), 1, cv2.LINE_AA)
    best = VOWELS[int(np.argmax(sig.weights))] if sig.weights.sum() > 0 else "-"
    note = f"open {sig.openness:.2f}, heard {best} {sig.weights.max():.2f}"
    cv2.putText(cap, note, (6, 36), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (90, 90, 90), 1, cv2.LINE_AA)
    return np.vstack([cap, img])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m worker.tools.vowel_sheet", description=__doc__.splitlines()[0])
    p.add_argument("--character", default=str(DEMO_CHARACTER))
    p.add_argument("--out", default="docs/vowels.png")
    p.add_argument("--voice", default="en-us", help="espeak-ng voice (default en-us)")
    args = p.parse_args(argv)
    print(f"wrote {make_sheet(args.character, args.out, voice=args.voice)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
