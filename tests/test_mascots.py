"""Non-human characters with face marks: validation, the template fit, the cache, the figure
cut-out, and the bundled fox mascot through check, preprocess, demo and run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from worker.characters.cache import CharacterCache
from worker.characters.face_marks import ANCHORS, fit_face_template, load_face_marks, parse_face_marks
from worker.characters.library import CharacterLibrary
from worker.characters.preprocess import PreprocessSettings, preprocess_image
from worker.commands.check import check_image
from worker.errors import UserError
from worker.paths import ASSETS_DIR, SAMPLE_DRIVER

FOX = ASSETS_DIR / "mascots" / "fox.png"
ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture()
def fox(tmp_path) -> Path:
    d = tmp_path / "chars"
    d.mkdir()
    shutil.copy(FOX, d / "fox.png")
    shutil.copy(FOX.with_name("fox.face.json"), d / "fox.face.json")
    return d / "fox.png"


def _marks(fox: Path) -> dict:
    return json.loads(fox.with_name("fox.face.json").read_text())


def _write(fox: Path, data) -> None:
    fox.with_name("fox.face.json").write_text(data if isinstance(data, str) else json.dumps(data))


def _cli(*args: str, cache: str = "", timeout: float = 240) -> subprocess.CompletedProcess:
    env = {**ENV, "STREAM_ANIMATOR_CACHE": cache} if cache else ENV
    return subprocess.run(
        [sys.executable, "-m", "worker", *args], capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT
    )


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.pop("nose"), "missing point nose"),
        (lambda m: m.update(mouth_right=[700, 300]), "mouth_right [700, 300] is outside the picture (640x640)"),
        (lambda m: m.update(left_eye=m["right_eye"], right_eye=m["left_eye"]), "the eyes are swapped"),
        (lambda m: m.update(kind="robot"), "kind 'robot': use one of human, animal, drawn"),
        (lambda m: m.update(nose="middle"), "nose must be [x, y] in pixels"),
        (None, "malformed JSON (line 1, column 2"),
    ],
)
def test_bad_sidecar_is_one_clear_line(fox, edit, message):
    if edit is None:
        _write(fox, "{left_eye: 1}")
    else:
        m = _marks(fox)
        edit(m)
        _write(fox, m)
    with pytest.raises(UserError) as e:
        load_face_marks(fox, 640, 640)
    assert message in str(e.value) and "fox.face.json" in str(e.value) and "\n" not in str(e.value)
    rep = check_image(str(fox))
    assert not rep["usable"] and message in rep["error"]


def test_bad_sidecar_from_the_command_line(fox):
    m = _marks(fox)
    m["left_eye"], m["right_eye"] = m["right_eye"], m["left_eye"]
    _write(fox, m)
    for cmd in (["check", str(fox)], ["preprocess", str(fox.parent), "--cache", str(fox.parent / "c")]):
        r = _cli(*cmd)
        assert r.returncode != 0
        assert "Traceback" not in r.stderr + r.stdout
        lines = [ln for ln in (r.stdout + r.stderr).splitlines() if "fox.face.json" in ln]
        assert len(lines) == 1 and "the eyes are swapped" in lines[0], r.stdout + r.stderr


def test_template_fit_hits_every_mark(fox):
    marks = load_face_marks(fox, 640, 640)
    lm = fit_face_template(marks)
    assert lm.shape == (478, 3) and np.isfinite(lm).all()
    for name, idx in ANCHORS.items():
        assert np.abs(lm[idx, :2] - marks.points[name]).max() < 0.5, name
    for name, idx in (
        ("left_eye_top", 159),
        ("left_eye_bottom", 145),
        ("right_eye_top", 386),
        ("right_eye_bottom", 374),
    ):
        assert np.abs(lm[idx, :2] - marks.points[name]).max() < 0.5, name
    # the face stays a face: lids do not cross, the mouth sits under the nose
    assert lm[159, 1] < lm[468, 1] < lm[145, 1] and lm[1, 1] < lm[13, 1] < lm[152, 1]


def test_no_face_check_says_how_to_mark(tmp_path):
    p = tmp_path / "blob.png"
    img = np.full((300, 300, 3), 200, np.uint8)
    cv2.circle(img, (150, 150), 90, (40, 120, 220), -1)
    cv2.imwrite(str(p), img)
    rep = check_image(str(p))
    assert not rep["usable"]
    assert "no face found" in rep["error"] and f"stream-animator mark {p}" in rep["error"]
    assert "blob.face.json" in rep["error"]


def test_figure_cutout_keeps_ears_and_body(fox):
    a = preprocess_image(fox, PreprocessSettings(size=256))
    assert a.meta["kind"] == "animal" and not a.had_alpha
    marks = load_face_marks(fox, 640, 640)
    m = 256 / (a.crop_box[2] - a.crop_box[0])

    def alpha_at(x, y):
        return int(a.image[int((y - a.crop_box[1]) * m), int((x - a.crop_box[0]) * m), 3])

    lx, ly = marks.points["left_ear"]
    assert alpha_at(lx + 8, ly + 25) == 255  # just inside the ear tip
    assert alpha_at(320, 620) == 255  # the body
    assert alpha_at(90, 400) == 0 and alpha_at(550, 400) == 0  # the backdrop beside the head
    assert a.image[:4, :, 3].max() == 0  # nothing of the backdrop along the top
    coverage = (a.image[..., 3] > 128).mean()
    assert 0.40 < coverage < 0.50, coverage  # measured 0.421


def test_png_alpha_is_kept(fox):
    rgba = cv2.cvtColor(cv2.imread(str(fox)), cv2.COLOR_BGR2BGRA)
    yy, xx = np.mgrid[0:640, 0:640]
    rgba[..., 3] = np.where((xx - 320) ** 2 / 230**2 + (yy - 330) ** 2 / 300**2 < 1, 255, 0).astype(np.uint8)
    cv2.imwrite(str(fox), rgba)
    a = preprocess_image(fox, PreprocessSettings(size=256))
    assert a.had_alpha
    m = 256 / (a.crop_box[2] - a.crop_box[0])
    want = cv2.warpAffine(
        rgba[..., 3],
        np.array([[m, 0, -a.crop_box[0] * m], [0, m, -a.crop_box[1] * m]]),
        (256, 256),
        flags=cv2.INTER_AREA,
    )
    assert np.abs(a.image[..., 3].astype(int) - want).mean() < 2.0


def test_moved_marks_rebuild_the_cache(fox, tmp_path):
    lib = CharacterLibrary(fox.parent, CharacterCache(tmp_path / "cache"), PreprocessSettings(size=256))
    first = lib.load(fox)
    assert first.status == "built", first.error
    assert lib.load(fox).status == "memory"
    m = _marks(fox)
    m["nose"] = [m["nose"][0], m["nose"][1] + 12]
    _write(fox, m)
    moved = lib.load(fox)
    assert moved.status == "built" and moved.assets.key != first.assets.key
    assert abs(float(moved.assets.landmarks[1, 1] - first.assets.landmarks[1, 1])) > 3
    lib2 = CharacterLibrary(fox.parent, CharacterCache(tmp_path / "cache"), PreprocessSettings(size=256))
    assert lib2.load(fox).status == "disk"  # the moved marks' entry is on disk now


def test_kinds_differ_only_where_they_should(fox):
    """An animal's open mouth has no teeth; the same character rendered as `human` has them."""
    from dataclasses import replace

    from worker.render.meshwarp import MeshWarpRenderer
    from worker.retarget.retargeter import Retargeter
    from worker.track import landmark_ids as L

    outs = {}
    fox_assets = preprocess_image(fox, PreprocessSettings(size=256))
    for kind in ("animal", "human"):  # the same cut-out and landmarks, rendered as either kind
        a = replace(fox_assets, meta={**fox_assets.meta, "kind": kind})
        r = MeshWarpRenderer(256)
        a = replace(a, arrays=r.prepare(a.cutout), prepared_by="x")
        pose = Retargeter(a).neutral_pose()
        lm = pose.landmarks.copy()
        lm[:, 1] += np.asarray(L.jaw_weights(), np.float32) * 10  # drop the jaw 10 px
        outs[kind] = r.render(a, replace(pose, landmarks=lm, mouth_open=0.1))
    inside = np.zeros((256, 256), np.uint8)  # the open mouth: inside the posed inner lips
    cv2.fillPoly(inside, [np.round(lm[list(L.inner_lip_contour()), :2]).astype(np.int32)], 1)
    assert inside.sum() > 60

    def light(img):  # teeth are light, the mouth's cavity and tongue are not
        return int(((img[..., :3].mean(-1) > 150) & (inside > 0)).sum())

    # measured: 66 light pixels with teeth, 4 (the anti-aliased lip edge) without
    assert light(outs["human"]) > 55 and light(outs["animal"]) <= 8, (light(outs["human"]), light(outs["animal"]))


def test_fox_through_check_preprocess_demo_and_run(fox, tmp_path):
    cache = str(tmp_path / "cache")
    r = _cli("check", str(fox))
    assert r.returncode == 0 and "face marked (animal)" in r.stdout, r.stdout + r.stderr
    r = _cli("preprocess", str(fox.parent), "--cache", cache, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["counts"]["built"] == 1
    out = tmp_path / "demo"
    r = _cli("demo", "--character", str(fox), "--cache", cache, "--max-frames", "20", "--out", f"{out}/", "--json")
    assert r.returncode == 0, r.stderr
    frames = sorted(out.glob("*.png"))
    assert len(frames) == 20
    first, last = (cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in (frames[0], frames[-1]))
    assert first[..., 3].min() == 0 and first[..., 3].max() == 255  # cut out, with its ears and body
    assert np.abs(first.astype(int) - last.astype(int)).mean() > 0.2  # it moves
    video = tmp_path / "run.mp4"
    r = _cli(
        "run",
        "--characters",
        str(fox.parent),
        "--character",
        "fox.png",
        "--source",
        str(SAMPLE_DRIVER),
        "--output",
        f"file:{video}",
        "--duration",
        "3",
        cache=cache,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    cap = cv2.VideoCapture(str(video))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    # how many frames 3 s give depends on the machine's load (15 idle FPS while MediaPipe loads, then the
    # camera's 30): that the live path writes a video of the fox is the point; rates are bench --live's
    assert n >= 5, n


def test_fox_mouth_and_eyes_follow_the_driver(tmp_path):
    """Pixel change in the fox's mouth and eyes follows the bundled driver's tracked mouth and
    blinks, over the whole clip. Mouth: the share of mouth-interior colours (dark or pink) in a
    box hanging from the drawn upper lip (it moves with the head, not with the jaw); eyes: the
    share of the eyes' white that the lids hide."""
    from worker.capture.video import VideoFileSource
    from worker.render.meshwarp import MeshWarpRenderer
    from worker.tools.offline import StageTimes, animate, source_frames, track_frames
    from worker.track import landmark_ids as L
    from worker.track.mediapipe_tracker import FaceTracker

    renderer = MeshWarpRenderer(256)
    lib = CharacterLibrary(
        FOX.parent, CharacterCache(tmp_path / "cache"), PreprocessSettings(size=256), preparer=renderer
    )
    fox = lib.load(FOX).assets
    lm = fox.landmarks
    iod = float(np.linalg.norm(lm[L.LEFT_IRIS_CENTER, :2] - lm[L.RIGHT_IRIS_CENTER, :2]))
    eye_boxes = []
    for idx in (L.RIGHT_EYE, L.LEFT_EYE):
        p = lm[list(idx), :2]
        (x0, y0), (x1, y1) = p.min(0) - 0.05 * iod, p.max(0) + 0.05 * iod
        eye_boxes.append((int(y0), int(y1), int(x0), int(x1)))
    drv_mouth, drv_eyes, out_mouth, out_eyes = [], [], [], []
    source, times = VideoFileSource(SAMPLE_DRIVER), StageTimes()
    try:
        with FaceTracker() as tracker:
            for f in animate(track_frames(source_frames(source), tracker, times), fox, renderer, times):
                rgb = f.rgba[..., :3].astype(np.float32)
                luma = rgb @ np.array([0.3, 0.59, 0.11], np.float32)
                pl = f.pose.landmarks
                cx, top = pl[[L.MOUTH_RIGHT_CORNER, L.MOUTH_LEFT_CORNER], 0].mean(), pl[0, 1]
                hw = 0.5 * abs(pl[L.MOUTH_LEFT_CORNER, 0] - pl[L.MOUTH_RIGHT_CORNER, 0]) + 0.05 * iod
                y0, y1, x0, x1 = int(top), int(top + 0.6 * iod), int(cx - hw), int(cx + hw)
                reg, lu = rgb[y0:y1, x0:x1], luma[y0:y1, x0:x1]
                pink = (reg[..., 0] - reg[..., 1] > 80) & (reg[..., 2] > 60)
                out_mouth.append(((lu < 90) | pink).mean())
                out_eyes.append(-np.mean([(luma[a:b, c:d] > 220).mean() for a, b, c, d in eye_boxes]))
                drv_mouth.append(f.face.mouth_open)
                drv_eyes.append(-(f.face.eye_open_left + f.face.eye_open_right))
    finally:
        source.close()
    assert len(drv_mouth) > 200
    r_mouth = float(np.corrcoef(drv_mouth, out_mouth)[0, 1])
    r_eyes = float(np.corrcoef(drv_eyes, out_eyes)[0, 1])
    # measured: mouth 0.53, eyes 0.73 (the driver talks little and blinks a few times). The mouth
    # was 0.63 before the expression steadying at rest (RetargetOptions.steady_*), which damps the
    # small, slow lip moves of this driver; leaving the lips unsteadied brought 0.59 back but cost
    # 0.07-0.09 of texture jitter on every human pair measured (d9xs10 0.82 -> 0.91)
    assert r_mouth > 0.51 and r_eyes > 0.7, (r_mouth, r_eyes)


def test_a_human_with_marks_keeps_human_eyes(fox):
    """Marks of kind human bend the template onto the marks; the eyes keep their almond shape."""
    m = {**_marks(fox), "kind": "human"}
    human = fit_face_template(parse_face_marks(m, 640, 640))
    animal = fit_face_template(parse_face_marks({**m, "kind": "animal"}, 640, 640))
    for lm in (human, animal):
        assert np.abs(lm[159, :2] - m["left_eye_top"]).max() < 0.5
    width = lambda lm: abs(lm[133, 0] - lm[33, 0])  # noqa: E731 - the eye's corner to corner
    assert width(animal) > 1.3 * width(human), (width(animal), width(human))
