"""Nothing lost and every failure named before work starts: `demo`'s outputs never overwrite an
input or mix with stale frames, unwritable paths fail first, one validation for `check`, `demo`
and `preprocess`, and the small things a user trips on (-v, colours, JPEG sheets, help)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from worker.characters.cache import CharacterCache
from worker.characters.library import CharacterLibrary
from worker.characters.preprocess import PreprocessSettings
from worker.cli import COMMANDS, build_parser
from worker.control import protocol as P
from worker.output.base import parse_colour
from worker.paths import DEMO_CHARACTER, SAMPLE_CHARACTER, SAMPLE_DRIVER

REPO = Path(__file__).resolve().parents[1]
FAST = ["--size", "128", "--max-frames", "3"]
TWO_AT = (240, 200)  # where the second face's picture sits in two.png (160 px square)


def cli(*args: str, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO), STREAM_ANIMATOR_LOGS=str(cwd / "logs"))
    return subprocess.run(
        [sys.executable, "-m", "worker", *args], capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env
    )


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def error_line(r: subprocess.CompletedProcess) -> str:
    (line,) = [x for x in r.stderr.splitlines() if x.startswith("error:")]
    return line


# --- data loss ----------------------------------------------------------------------------------


def test_demo_never_overwrites_its_driver_or_character(tmp_path):
    drv = tmp_path / "in.mp4"
    drv.write_bytes(SAMPLE_DRIVER.read_bytes())
    before = sha(drv)
    r = cli("demo", "--driver", str(drv), "--out", str(drv), *FAST, cwd=tmp_path)
    assert r.returncode == 2 and sha(drv) == before
    assert error_line(r) == f"error: --out {drv}: is an input of this render ({drv}); choose another name"
    r = cli(
        "demo",
        "--character",
        str(DEMO_CHARACTER),
        "--out",
        str(DEMO_CHARACTER.with_suffix(".mp4").parent),
        *FAST,
        cwd=tmp_path,
    )
    assert r.returncode == 2 and "is the folder of an input" in error_line(r)


def test_demo_empty_out_writes_nothing_here(tmp_path):
    r = cli("demo", "--out", "", *FAST, cwd=tmp_path)
    assert r.returncode == 2 and error_line(r).startswith("error: --out is empty")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["logs"] or not list(tmp_path.glob("*.png"))


def test_png_folder_must_be_new_or_emptied_on_request(tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    (frames / "000099.png").write_bytes(b"stale")
    r = cli("demo", "--out", str(frames), *FAST, cwd=tmp_path)
    assert r.returncode == 2
    assert error_line(r) == (
        f"error: {frames}: folder is not empty (1 frame): choose a new folder or allow emptying it (--clear-out)"
    )
    r = cli("demo", "--out", str(frames), "--clear-out", *FAST, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in frames.iterdir()) == ["000000.png", "000001.png", "000002.png"]
    (frames / "notes.txt").write_text("mine")  # not a frame: never deleted, so refused
    r = cli("demo", "--out", str(frames), "--clear-out", *FAST, cwd=tmp_path)
    assert r.returncode == 2 and "folder is not empty (4 files): choose a new folder" in error_line(r)
    assert (frames / "notes.txt").read_text() == "mine"


def test_interrupted_render_keeps_the_old_file(tmp_path):
    old = tmp_path / "old.mp4"
    old.write_bytes(SAMPLE_DRIVER.read_bytes())
    before = sha(old)
    env = dict(os.environ, PYTHONPATH=str(REPO), STREAM_ANIMATOR_LOGS=str(tmp_path / "logs"))
    p = subprocess.Popen(
        [sys.executable, "-m", "worker", "demo", "--out", str(old)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl+C as in a terminal: a suite started in the background (`pytest &`) has SIGINT
        # ignored, and a child inherits that
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    partial = tmp_path / ".old.partial.mp4"  # written beside the target while rendering
    deadline = time.monotonic() + 90
    while not partial.exists() and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert partial.exists(), "the render never started writing"
    time.sleep(0.3)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert sha(old) == before
    assert sorted(x.name for x in tmp_path.iterdir()) == ["logs", "old.mp4"]  # no .partial left


# --- failures named before the work -------------------------------------------------------------


def test_unwritable_out_fails_before_rendering(tmp_path):
    t0 = time.monotonic()
    r = cli("demo", "--out", "/proc/nope/x.mp4", cwd=tmp_path)
    assert time.monotonic() - t0 < 60 and "rendering" not in r.stderr  # a few s: a start, no render
    assert error_line(r) == "error: /proc/nope/x.mp4: cannot write there (No such file or directory)"


def test_cache_that_cannot_be_written_is_named_not_no_such_file(tmp_path):
    (tmp_path / "blocker").write_text("a file where the cache folder should go")
    lib = CharacterLibrary(SAMPLE_CHARACTER.parent, CharacterCache(tmp_path / "blocker" / "cache"))
    r = lib.load(SAMPLE_CHARACTER)
    assert r.status == "failed"
    assert r.error.startswith(f"{SAMPLE_CHARACTER}: cannot be stored in the cache {tmp_path / 'blocker' / 'cache'}")
    assert "no such file" not in r.error


# --- one validation for check, demo and preprocess ----------------------------------------------


@pytest.fixture(scope="module")
def odd_pictures(tmp_path_factory, testdata) -> Path:
    d = tmp_path_factory.mktemp("odd")
    Image.new("RGBA", (300, 300), (255, 0, 0, 0)).save(d / "clear.png")
    pic = Image.open(SAMPLE_CHARACTER).convert("RGB")
    pic.save(d / "anim.gif", save_all=True, append_images=[pic.transpose(Image.FLIP_LEFT_RIGHT)], duration=100)
    two = Image.open(testdata / "footage" / "portraits" / "s9.jpg").convert("RGB").resize((400, 400))
    two.paste(Image.open(testdata / "footage" / "portraits" / "s12.jpg").convert("RGB").resize((160, 160)), TWO_AT)
    two.save(d / "two.png")  # a second, smaller face over the first one's shoulder
    pic.resize((200, 200)).save(d / "tiny.png")
    return d


@pytest.mark.parametrize(
    "name, message",
    [
        ("clear.png", "fully transparent: nothing visible to animate"),
        ("anim.gif", "not a PNG, JPEG or WebP picture"),
    ],
)
def test_check_demo_preprocess_reject_alike(odd_pictures, tmp_path, name, message):
    pic = odd_pictures / name
    r = cli("check", str(pic), cwd=tmp_path)
    assert r.returncode == 1 and r.stdout.strip() == f"NO   {pic}: {message}"
    r = cli("demo", "--character", str(pic), "--out", "o.mp4", *FAST, cwd=tmp_path)
    assert r.returncode == 2 and error_line(r).startswith(f"error: {pic}: {message}")
    folder = tmp_path / "chars"
    folder.mkdir()
    (folder / name).write_bytes(pic.read_bytes())
    (folder / "ok.png").write_bytes(DEMO_CHARACTER.read_bytes())
    r = cli("preprocess", str(folder), "--size", "128", "--cache", str(tmp_path / "c"), cwd=tmp_path)
    assert r.returncode == (1 if name.endswith(".png") else 0)  # a GIF is skipped (and said), not failed
    said = f"failed  {folder / name}: {message}" if name.endswith(".png") else f"skipped {folder / name}: {message}"
    assert said in r.stderr, r.stderr


def test_warnings_show_in_check_demo_and_preprocess(odd_pictures, tmp_path):
    expect = {"two.png": "2 faces: the largest one is animated", "tiny.png": "small picture (200x200"}
    r = cli("check", *(str(odd_pictures / n) for n in expect), cwd=tmp_path)
    assert r.returncode == 0, r.stdout
    for name, text in expect.items():
        assert re.search(rf"ok   .*{name}.*\n(\s+warning: .*\n)*\s+warning: {re.escape(text)}", r.stdout), r.stdout
    for name, text in expect.items():
        r = cli("demo", "--character", str(odd_pictures / name), "--out", "o.mp4", *FAST, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        assert f"warning: {odd_pictures / name}: {text}" in r.stderr
    folder = tmp_path / "chars"
    folder.mkdir()
    for name in expect:
        (folder / name).write_bytes((odd_pictures / name).read_bytes())
    r = cli("preprocess", str(folder), "--size", "128", "--cache", str(tmp_path / "c2"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    for name, text in expect.items():
        assert f"warning {folder / name}: {text}" in r.stderr


def test_two_faces_only_the_animated_one_stays_in_the_cut_out(odd_pictures):
    from worker.characters.preprocess import preprocess_image

    a = preprocess_image(odd_pictures / "two.png", PreprocessSettings(size=256))
    assert a.meta["faces_found"] == 2
    x0, y0, x1, y1 = a.crop_box
    s = a.size / (x1 - x0)

    def alpha_in(bx0: float, by0: float, bx1: float, by1: float) -> float:
        r = a.image[int((by0 - y0) * s) : int((by1 - y0) * s), int((bx0 - x0) * s) : int((bx1 - x0) * s), 3]
        return float(r.mean())

    tx, ty = TWO_AT
    assert alpha_in(tx + 40, ty + 30, tx + 120, ty + 110) < 10  # the other face: cut away
    lm = a.landmarks[:, :2]
    cx, cy = lm.mean(axis=0)
    assert a.image[int(cy), int(cx), 3] == 255  # the animated face: opaque


# --- small things -------------------------------------------------------------------------------


def test_verbose_anywhere():
    p = build_parser()
    assert p.parse_args(["demo", "-v"]).verbose and p.parse_args(["-v", "demo"]).verbose
    assert not p.parse_args(["demo"]).verbose


def test_background_takes_the_form_its_error_suggests():
    assert parse_colour("[0, 177, 64]", "--background") == (0, 177, 64)
    assert parse_colour("0,177,64", "--background") == (0, 177, 64)
    assert parse_colour("#00b140", "--background") == (0, 177, 64)
    with pytest.raises(Exception, match=r'--background must be "#rrggbb" or \[r, g, b\]'):
        parse_colour("[0, 300, 1]", "--background")


def test_demo_result_on_stdout_jpeg_sheet_and_list_background(tmp_path):
    r = cli(
        "demo",
        "--out",
        "o.mp4",
        "--sheet",
        "sheet.jpg",
        "--background",
        "[200, 30, 90]",
        "-v",
        "--size",
        "128",
        "--max-frames",
        "6",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("wrote o.mp4: 6 frames at 25 fps")
    assert (tmp_path / "sheet.jpg").read_bytes()[:3] == b"\xff\xd8\xff"  # JPEG, as the name says
    with av.open(str(tmp_path / "o.mp4")) as c:
        first = next(c.decode(video=0)).to_ndarray(format="rgb24")
    assert np.abs(first[2, 2].astype(int) - (200, 30, 90)).max() < 12  # the corner is background


def test_no_raw_errno_in_output_errors():
    from worker.output.base import Output
    from worker.output.fanout import OutputFanout

    class Refused(Output):
        name = "refused"

        def send(self, rgba, seq, capture_ts):
            raise ConnectionRefusedError(111, "Connection refused")

    fan = OutputFanout([Refused()]).start()
    fan.send(np.zeros((4, 4, 4), np.uint8), 1, time.time())
    fan.flush()
    (st,) = fan.stats()
    fan.close()
    assert st["last_error"] == "ConnectionRefusedError: Connection refused"


def test_ctl_help_lists_every_request_and_its_arguments(tmp_path):
    r = cli("ctl", "--help", cwd=tmp_path)
    for op in P.OPS:
        assert re.search(rf"^  {op}\s+\S", r.stdout, re.M), op
    assert "index=N" in r.stdout and "options=" in r.stdout and "on=true" in r.stdout


def test_readme_command_table_lists_every_command():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    table = text[text.index("## Commands") : text.index("Typical first session")]
    for name in COMMANDS:
        assert re.search(rf"^\| `{name}[ `]", table, re.M), name


def test_cache_command_shows_and_clears(tmp_path):
    cache = tmp_path / "c"
    r = cli("preprocess", str(SAMPLE_CHARACTER.parent), "--size", "128", "--cache", str(cache), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    info = json.loads(cli("cache", "--cache", str(cache), "--json", cwd=tmp_path).stdout)
    assert info["folder"] == str(cache) and info["entries"] >= 2 and info["bytes"] > 100_000
    cleared = json.loads(cli("cache", "--cache", str(cache), "--clear", "--json", cwd=tmp_path).stdout)
    assert cleared["entries"] == 0 and cleared["freed_bytes"] == info["bytes"]
