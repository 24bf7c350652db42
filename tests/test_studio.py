"""The studio (`stream-animator studio`): its jobs, uploads, settings and clips, and the page in a
real browser (Debian's chromium + selenium): add a picture, see its verdict, prepare it, render a
talking clip from text and play it, change a setting and find it in the YAML; refusals (not a
picture, too large, a path out of the folder, a missing or wrong token) with one message and
nothing written."""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import time
from pathlib import Path

import pytest
import yaml
from browser import chrome_at

from worker.errors import UserError
from worker.paths import DEMO_CHARACTER
from worker.studio import settings as studio_settings
from worker.studio.app import Studio, StudioPaths
from worker.studio.characters import MAX_UPLOAD_BYTES
from worker.studio.clips import ClipRequest
from worker.studio.jobs import Busy, JobRunner
from worker.web import WebServer

SIZE = 256  # the page's clips at 256 px: the same code as 512, a quarter of the pixels


@pytest.fixture(scope="module")
def shared_studio(tmp_path_factory):
    """One studio server for the module: its renderer, voices and prepared characters stay warm."""
    root = tmp_path_factory.mktemp("studio")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STREAM_ANIMATOR_LOGS", str(root / "logs"))  # no worker of another run is found
        mp.delenv("STREAM_ANIMATOR_CONTROL_PORT", raising=False)
        mp.delenv("STREAM_ANIMATOR_TOKEN", raising=False)
        (root / "characters").mkdir()
        paths = StudioPaths(
            root / "characters", root / "config.yaml", root / "clips", Path(os.environ["STREAM_ANIMATOR_CACHE"])
        )
        server = WebServer(name="studio-test")
        st = Studio(server, paths, size=SIZE)
        server.start()
        try:
            yield st
        finally:
            server.stop()
            st.close()


@pytest.fixture()
def studio(shared_studio, tmp_path):
    """The module's studio on this test's own (empty) characters folder, clips folder and config."""
    st = shared_studio
    (tmp_path / "characters").mkdir()
    st.paths.characters = st.characters.folder = tmp_path / "characters"
    st.paths.clips = st.clips.out_dir = tmp_path / "clips"
    st.paths.config = st.clips.config = tmp_path / "config.yaml"
    st._marks.clear()
    return st


@pytest.fixture(scope="module")
def chromium_for_module():
    b = chrome_at(1280, 900)
    try:
        yield b
    finally:
        b.quit()


@pytest.fixture()
def browser(chromium_for_module):
    """The module's one chromium, on a blank page: each test loads its pages afresh."""
    chromium_for_module.get("about:blank")
    chromium_for_module.delete_all_cookies()
    return chromium_for_module


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.is_dir() else {}


async def _upload(url: str, field: str, name: str, data: bytes, headers: dict | None = None) -> tuple[int, str]:
    import aiohttp

    form = aiohttp.FormData()
    form.add_field(field, data, filename=name, content_type="application/octet-stream")
    async with aiohttp.ClientSession() as s, s.post(url, data=form, headers=headers or {}) as r:
        return r.status, await r.text()


# --- jobs ----------------------------------------------------------------------------------------
def test_one_job_per_character_and_cancel():
    runner = JobRunner()
    started = threading.Event()

    def work(job):
        started.set()
        for i in range(10_000):
            job.step(i, 10_000, "working")
            time.sleep(0.005)
        return "finished"

    a = runner.submit("render", "a.png", work)
    assert started.wait(10)
    with pytest.raises(Busy, match="a.png: busy"):
        runner.submit("prepare", "a.png", work)
    b = runner.submit("prepare", "b.png", lambda job: 42)  # another character runs beside it
    runner.cancel(a.id)
    deadline = time.monotonic() + 10
    while (a.state == "running" or b.state == "running") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert a.state == "cancelled" and a.done < 10_000
    assert b.state == "done" and b.result == 42
    c = runner.submit("prepare", "a.png", lambda job: 1)  # free again once cancelled
    runner.close()
    assert c.state == "done"
    failed = JobRunner()
    f = failed.submit("x", "k", lambda job: (_ for _ in ()).throw(UserError("k: broken")))
    failed.close()
    assert f.state == "failed" and f.error == "k: broken"


def test_cancelled_render_leaves_no_file(studio):
    shutil.copy(DEMO_CHARACTER, studio.paths.characters / "toon.png")
    req = ClipRequest("toon.png", ["One two three four five six seven eight nine ten."])
    job = studio.jobs.submit("render", "toon.png", lambda j: studio.clips.render(req, j))
    deadline = time.monotonic() + 120
    while job.state == "running" and not (job.kind == "render" and job.done >= 3 and job.total > 10):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    studio.jobs.cancel(job.id)
    while job.state == "running":
        time.sleep(0.02)
    assert job.state == "cancelled", job.error
    assert not any(studio.paths.clips.iterdir()), list(studio.paths.clips.iterdir())  # not even a partial file


def test_prepare_reports_the_preparers_own_stages_and_cancels_between_them(tmp_path):
    """A fresh cache: the prepare job's progress walks the preparer's real stages in order (its
    on_stage hook); cancelled at one of them, nothing is stored; prepared, a second load is cached."""
    from worker.characters.cache import open_cache
    from worker.characters.preprocess import STAGES
    from worker.studio.characters import Characters
    from worker.studio.jobs import Cancelled, Job

    chars = tmp_path / "characters"
    chars.mkdir()
    shutil.copy(DEMO_CHARACTER, chars / "toon.png")
    characters = Characters(chars, open_cache(tmp_path / "cache"), size=SIZE)

    class Recorded(Job):
        def step(self, done=None, total=None, message=None):
            seen.append((done, total, message))
            if message and message.endswith(STAGES[3]) and stop_at_cutout:
                self.cancel()
            super().step(done, total, message)

    seen, stop_at_cutout = [], True
    with pytest.raises(Cancelled):
        characters.prepare("toon.png", Recorded("1", "prepare", "toon.png"))
    assert seen[-1][2] == f"toon.png: {STAGES[3]}"
    assert not characters.is_prepared(chars / "toon.png") and not any((tmp_path / "cache").rglob("*.npy"))
    seen, stop_at_cutout = [], False
    result = characters.prepare("toon.png", Recorded("2", "prepare", "toon.png"))
    total = 2 + len(STAGES)
    assert [m.split(": ", 1)[1] for _, _, m in seen[2:-1]] == list(STAGES), seen
    assert [d for d, _, _ in seen] == list(range(total)) + [total] and {t for _, t, _ in seen} == {total}
    assert result["status"] == "built" and characters.is_prepared(chars / "toon.png")
    seen = []
    assert characters.prepare("toon.png", Recorded("3", "prepare", "toon.png"))["status"] in ("memory", "disk")
    assert [d for d, _, _ in seen] == [0, 1, total], seen  # cached: no preparer stage runs


# --- uploads, over HTTP ----------------------------------------------------------------------------
def test_refused_uploads_write_nothing(studio, tmp_path):
    url = studio.server.url("/api/characters", token=False)
    tok = {"X-Stream-Animator-Token": studio.server.token}
    png = DEMO_CHARACTER.read_bytes()
    before = _snapshot(studio.paths.characters)
    cases = [
        ("not a picture", "notes.png", b"hello, I am text pretending to be a PNG", tok, 400, "not a PNG, JPEG or WebP"),
        ("too large", "huge.png", png + b"\0" * MAX_UPLOAD_BYTES, tok, 413, "upload limit"),
        ("path escape", "../escape.png", png, tok, 400, "inside the characters folder"),
        ("path escape (Windows)", "..\\escape.png", png, tok, 400, "inside the characters folder"),
        ("missing token", "ok.png", png, {}, 403, "missing token"),
        ("wrong token", "ok.png", png, {"X-Stream-Animator-Token": "not-the-token"}, 403, "wrong token"),
    ]
    for what, name, data, headers, code, text in cases:
        status, body = asyncio.run(_upload(url, "file", name, data, headers))
        assert status == code and text in body, (what, status, body)
        assert len(body.strip().splitlines()) == 1, (what, body)
        assert _snapshot(studio.paths.characters) == before, what
    assert not (tmp_path / "escape.png").exists()
    from worker.paths import SAMPLE_CHARACTERS_DIR
    from worker.studio.characters import Characters

    with pytest.raises(UserError, match="bundled samples"):  # never into the program's own folder
        Characters(SAMPLE_CHARACTERS_DIR, studio.characters.cache).add("x.png", png)
    status, body = asyncio.run(_upload(url, "file", "my toon.png", png, tok))
    assert status == 200 and '"verdict": "usable"' in body, body
    assert (studio.paths.characters / "my toon.png").read_bytes() == png
    status, body = asyncio.run(_upload(url, "file", "my toon.png", png, tok))  # never overwrites
    assert status == 200 and (studio.paths.characters / "my toon-2.png").is_file()


# --- settings ------------------------------------------------------------------------------------
def test_settings_saved_atomically_or_not_at_all(tmp_path):
    cfg = tmp_path / "config.yaml"
    fields = {f["key"]: f for f in studio_settings.describe(cfg)["settings"]}
    from worker.config import SCHEMA

    assert set(fields) == set(SCHEMA)  # every setting of the one registry
    assert fields["motion.head_strength"]["min"] == 0 and fields["voice.lipsync"]["choices"] == [
        "off",
        "assist",
        "always",
    ]
    studio_settings.save(cfg, {"motion.head_strength": "0.5", "voice.lipsync": "always", "motion.mirror": True})
    data = yaml.safe_load(cfg.read_text())
    assert data["motion"] == {"head_strength": 0.5, "mirror": True} and data["voice"]["lipsync"] == "always"
    before = cfg.read_bytes()
    for changes, key, text in [
        ({"motion.head_strength": "9"}, "motion.head_strength", "0..2"),
        ({"camera.fps": "fast"}, "camera.fps", "expected a number"),
        ({"voice.lipsync": "sometimes"}, "voice.lipsync", "one of off, assist, always"),
        ({"outputs": "[{type: nosuch}]"}, "outputs", "nosuch"),
        ({"no.such": "1"}, "no.such", "no such setting"),
    ]:
        with pytest.raises(studio_settings.FieldErrors) as e:
            studio_settings.save(cfg, {**changes, "smoothing": "0.5"})
        assert list(e.value.errors) == [key] and text in e.value.errors[key], e.value.errors
        assert cfg.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["config.yaml"]  # no temporary file left


# --- the page in a real browser --------------------------------------------------------------------
def test_studio_page_in_a_real_browser(studio, browser, tmp_path):
    import urllib.error
    import urllib.parse
    import urllib.request

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    shots = Path(os.environ.get("STUDIO_SCREENSHOTS") or tmp_path)  # docs/: the README's pictures
    upload = tmp_path / "upload"
    upload.mkdir()
    shutil.copy(DEMO_CHARACTER, upload / "toon.png")
    (upload / "notes.png").write_text("not a picture")
    browser.get(studio.url())
    wait = WebDriverWait(browser, 60)
    body = browser.find_element(By.TAG_NAME, "body")
    wait.until(lambda b: body.get_attribute("data-ready") == "1")
    assert body.get_attribute("data-characters") == "0"
    add = browser.find_element(By.ID, "addFile")
    browser.execute_script("arguments[0].hidden = false", add)
    # a non-picture is refused with one line and nothing written
    add.send_keys(str(upload / "notes.png"))
    wait.until(lambda b: "not a PNG, JPEG or WebP" in b.find_element(By.ID, "uploadMsg").text)
    assert list(studio.paths.characters.iterdir()) == []
    # a picture: added, its verdict shown
    add.send_keys(str(upload / "toon.png"))
    wait.until(lambda b: body.get_attribute("data-characters") == "1")
    card = browser.find_element(By.CSS_SELECTOR, '.char[data-file="toon.png"]')
    assert card.get_attribute("data-verdict") == "usable"
    assert "usable" in card.find_element(By.CLASS_NAME, "badge").text
    assert "added toon.png: usable" in browser.find_element(By.ID, "uploadMsg").text
    browser.execute_script("arguments[0].hidden = true", add)
    # prepare it with a progress bar
    card.find_element(By.CLASS_NAME, "prepare").click()
    wait.until(lambda b: card.get_attribute("data-prepared") in ("done", "failed"))
    assert card.get_attribute("data-prepared") == "done"
    assert card.find_element(By.CSS_SELECTOR, ".progress").get_attribute("data-state") == "done"
    assert "prepared (" in card.find_element(By.CSS_SELECTOR, ".progress span").text
    # dropping a picture on the page adds it too (a real drop event carrying a file)
    browser.execute_async_script(
        """const done = arguments[arguments.length - 1];
        fetch('/api/characters/toon.png/thumb').then(r => r.blob()).then(b => {
          const dt = new DataTransfer();
          dt.items.add(new File([b], 'dropped.png', {type: 'image/png'}));
          document.getElementById('drop').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true}));
          done();
        });"""
    )
    wait.until(lambda b: body.get_attribute("data-characters") == "2")
    assert (studio.paths.characters / "dropped.png").is_file()
    browser.save_screenshot(str(shots / "studio_characters.png"))
    # a talking clip from typed text, twice: the second reuses the character and renders only
    browser.get(studio.url("clips"))
    wait.until(lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
    wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#clipVoice option")) > 1)
    h264 = browser.execute_script(
        "return document.createElement('video').canPlayType('video/mp4; codecs=\"avc1.42E01E, mp4a.40.2\"')"
    )
    Select(browser.find_element(By.ID, "clipFormat")).select_by_value("mp4" if h264 else "webm")
    Select(browser.find_element(By.ID, "clipChar")).select_by_value("toon.png")
    text = browser.find_element(By.ID, "clipText")
    for n, line in enumerate(("Hello there, welcome in!", "Thanks for the follow!"), 1):
        text.clear()
        text.send_keys(line)
        browser.find_element(By.ID, "generate").click()
        WebDriverWait(browser, 240).until(
            lambda b, n=n: (
                b.find_element(By.TAG_NAME, "body").get_attribute("data-clips") == str(n)
                or "err" in b.find_element(By.ID, "clipMsg").get_attribute("class")
            )
        )
        assert "wrote" in browser.find_element(By.ID, "clipMsg").text, browser.find_element(By.ID, "clipMsg").text
    # a list of lines renders as a batch: one clip per line, the character prepared once; as WebM
    # with transparency, which the page plays too (MOV is download only, and the page says so)
    fmt = Select(browser.find_element(By.ID, "clipFormat"))
    fmt.select_by_value("mov")
    assert "download only" in browser.find_element(By.ID, "clipFormatNote").text
    fmt.select_by_value("webm")
    assert "plays here" in browser.find_element(By.ID, "clipFormatNote").text
    text.clear()
    text.send_keys("Hi!\nBye!")
    browser.find_element(By.ID, "clipBatch").click()
    browser.find_element(By.ID, "generate").click()
    WebDriverWait(browser, 240).until(
        lambda b: (
            b.find_element(By.TAG_NAME, "body").get_attribute("data-clips") == "3"
            or "err" in b.find_element(By.ID, "clipMsg").get_attribute("class")
        )
    )
    assert len(browser.find_elements(By.CSS_SELECTOR, "#clipLinks a")) == 2
    assert len(list(studio.paths.clips.glob("toon-*"))) == 4
    browser.find_element(By.ID, "clipBatch").click()
    video = browser.find_element(By.ID, "clipVideo")
    wait.until(lambda b: b.execute_script("return arguments[0].readyState", video) >= 2)
    duration = browser.execute_script("return arguments[0].duration", video)
    assert 0.4 < duration < 2.0, duration  # "Bye!", the batch's last clip
    browser.execute_script("arguments[0].muted = true; arguments[0].play()", video)
    wait.until(lambda b: b.execute_script("return arguments[0].ended || arguments[0].currentTime > 0.35", video))
    decoded = browser.execute_script("return arguments[0].getVideoPlaybackQuality().totalVideoFrames", video)
    assert decoded >= 5, decoded  # frames really decoded, not just a file with a header
    assert browser.execute_script("return arguments[0].currentSrc", video).endswith(".webm")
    browser.execute_async_script(
        """const [v, done] = arguments; v.pause();
        v.addEventListener('seeked', () => done(), {once: true}); v.currentTime = 0.3;""",
        video,
    )
    alpha = browser.execute_script(  # the decoded frame keeps its transparency: clear around the figure
        """const v = arguments[0], c = document.createElement('canvas');
        c.width = v.videoWidth; c.height = v.videoHeight;
        const g = c.getContext('2d'); g.drawImage(v, 0, 0);
        const d = g.getImageData(0, 0, c.width, c.height).data; let clear = 0, solid = 0;
        for (let i = 3; i < d.length; i += 4) { if (d[i] < 10) clear++; else if (d[i] > 245) solid++; }
        return [clear / (d.length / 4), solid / (d.length / 4)];""",
        video,
    )
    assert alpha[0] > 0.1 and alpha[1] > 0.2, alpha
    # the download link serves the file as an attachment, to the page (its token) and no one else
    href = browser.find_elements(By.CSS_SELECTOR, "#clipLinks a")[-1].get_attribute("href")
    got = browser.execute_async_script(
        """const done = arguments[arguments.length - 1];
        fetch(arguments[0]).then(async r => done([r.status, r.headers.get('content-disposition'),
          (await r.arrayBuffer()).byteLength]));""",
        href,
    )
    clip = studio.paths.clips / urllib.parse.unquote(href.split("/api/clips/")[1].split("?")[0])
    assert got == [200, f'attachment; filename="{clip.name}"', clip.stat().st_size], got
    for headers in ({}, {"X-Stream-Animator-Token": "not-the-token"}):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(urllib.request.Request(href, headers=headers), timeout=30)
        assert e.value.code == 403 and len(e.value.read()) < 200, headers
    rows = browser.find_elements(By.CSS_SELECTOR, "#clipTimes tbody tr")
    assert len(rows) == 3 and "studio memory" in rows[1].text, [r.text for r in rows]
    renders = [j for j in studio.jobs.list() if j.kind == "render"]
    first, second = renders[2].result["seconds"], renders[1].result["seconds"]
    assert second["character"] <= first["character"] + 0.01, (first, second)
    links = browser.find_elements(By.CSS_SELECTOR, "#clipLinks a")
    assert links and "?download=1" in links[0].get_attribute("href")
    time.sleep(0.5)
    browser.save_screenshot(str(shots / "studio_clips.png"))
    # settings: a change lands in the YAML; a bad value is refused beside its field
    browser.get(studio.url("settings"))
    wait.until(lambda b: b.find_elements(By.ID, "set-motion.head_strength"))
    field = browser.find_element(By.ID, "set-motion.head_strength")
    field.clear()
    field.send_keys("0.5")
    browser.find_element(By.ID, "saveSettings").click()
    wait.until(lambda b: "saved" in b.find_element(By.ID, "setMsg").text)
    assert yaml.safe_load(studio.paths.config.read_text())["motion"]["head_strength"] == 0.5
    before = studio.paths.config.read_bytes()
    field.clear()
    field.send_keys("7")
    browser.find_element(By.ID, "saveSettings").click()
    box = browser.find_element(By.CSS_SELECTOR, '.field[data-key="motion.head_strength"]')
    wait.until(lambda b: "bad" in box.get_attribute("class"))
    assert "motion.head_strength" in box.find_element(By.CLASS_NAME, "ferr").text
    assert studio.paths.config.read_bytes() == before
    browser.execute_script("window.scrollTo(0, 0)")
    browser.save_screenshot(str(shots / "studio_settings.png"))
    # live: no worker here, and the page says so
    browser.get(studio.url("live"))
    wait.until(lambda b: b.find_element(By.ID, "liveStatus").get_attribute("data-running") == "false")
    assert "No worker running" in browser.find_element(By.ID, "liveStatus").text


def test_obs_studio_button_starts_the_studio_with_the_workers_address(tmp_path, monkeypatch):
    """The OBS script's "Studio…" button (obspython replaced by an empty module: only the click
    handler runs): it starts `worker studio` detached, the worker's port and token in its environment."""
    import subprocess
    import sys
    import types

    from worker.paths import repo_root

    monkeypatch.setitem(sys.modules, "obspython", types.ModuleType("obspython"))
    monkeypatch.syspath_prepend(str(repo_root() / "obs_script"))
    import stream_animator as script

    started = []
    real_popen = subprocess.Popen

    def popen(cmd, **kw):
        kw["stdout"] = kw["stderr"] = subprocess.PIPE
        p = real_popen([*cmd, "--no-browser", "--json"], **kw)
        started.append((cmd, kw["env"], p))
        return p

    class Engine:
        token = "t" * 24

        def snapshot(self):
            return {"control_port": 45678}

    monkeypatch.setattr(script.subprocess, "Popen", popen)
    monkeypatch.setattr(
        script.S, "settings", types.SimpleNamespace(worker_python=sys.executable, characters_dir=str(tmp_path))
    )
    monkeypatch.setattr(script.S, "engine", Engine())
    env = dict(os.environ, PYTHONPATH=str(repo_root()), STREAM_ANIMATOR_CONFIG=str(tmp_path))
    monkeypatch.setattr(script.os, "environ", env)
    assert script._on_studio(None, None) is False
    (cmd, child_env, p) = started[0]
    try:
        assert cmd[1:5] == ["-m", "worker", "studio", "--characters"] and "t" * 24 not in cmd
        assert child_env["STREAM_ANIMATOR_CONTROL_PORT"] == "45678" and child_env["STREAM_ANIMATOR_TOKEN"] == "t" * 24
        line = p.stdout.readline().decode()
        assert '"url": "http://127.0.0.1:' in line, (line, p.stderr.read() if p.poll() is not None else "")
    finally:
        p.terminate()
        p.wait(10)


def test_obs_studio_button_pressed_in_real_obs(tmp_path):
    """The "Studio…" button in a real OBS 29 (Xvfb) running a worker: a helper script presses it the
    way the properties window does (obs_property_button_clicked on our script's own properties);
    the press returns at once, OBS keeps answering, and a studio process answers on 127.0.0.1 with
    its token, on the script's characters folder, showing OBS's worker live. The "default browser"
    is a recorder: the URL the studio opened."""
    import json
    import signal
    import sys
    import urllib.error
    import urllib.parse
    import urllib.request

    from obs_harness import skip_or_fail

    from worker.tools.obs_run import ObsRun, missing_requirements

    why = missing_requirements()
    if why:
        skip_or_fail(why)
    chars = tmp_path / "characters"
    chars.mkdir()
    shutil.copy(DEMO_CHARACTER, chars / "toon.png")
    opened, pressed, press_now = tmp_path / "opened.txt", tmp_path / "pressed.json", tmp_path / "press-now"
    recorder = tmp_path / "browser.sh"  # webbrowser runs $BROWSER with the URL; $PPID is the studio
    recorder.write_text(f'#!/bin/sh\necho "$PPID $1" > "{opened}.part" && mv "{opened}.part" "{opened}"\n')
    recorder.chmod(0o755)
    env = {
        "BROWSER": str(recorder),
        "PRESS_BUTTON": "btn_studio",
        "PRESS_RESULT": str(pressed),
        "PRESS_WHEN": str(press_now),
        "STREAM_ANIMATOR_LOGS": str(tmp_path / "logs"),
        "STREAM_ANIMATOR_CONFIG": str(tmp_path / "user"),
    }
    from worker.paths import SAMPLE_DRIVER

    settings = {"worker_python": sys.executable, "characters_dir": str(chars), "autostart": True}
    settings.update(camera="file", video_file=str(SAMPLE_DRIVER), size=SIZE, renderer="meshwarp", mic="")
    helper = Path(__file__).parent / "data" / "obs_press_button.py"
    run = ObsRun(tmp_path / "obs", settings, env=env, extra_scripts=(helper,))
    studio_pid = None

    def wait_file(path: Path, what: str, timeout: float = 90) -> str:
        deadline = time.monotonic() + timeout
        while not path.exists():
            assert run.proc.poll() is None, f"OBS exited: {run.log_text()[-2000:]}"
            assert time.monotonic() < deadline, f"no {what} within {timeout} s; OBS log:\n{run.log_text()[-2000:]}"
            time.sleep(0.1)
        return path.read_text()

    try:
        run.start(ws_timeout=90)
        run.wait_status(lambda st: st.get("state") == "running" and st.get("control_port"), 120, "worker")
        press_now.touch()
        press = json.loads(wait_file(pressed, "button press"))
        assert "error" not in press and press["returned"] is False, press
        assert press["seconds"] < 5, press  # a detached process: OBS never waits for the studio
        assert run.ws.get_version().obs_version.startswith("29"), "OBS stopped answering after the press"
        pid, url = wait_file(opened, "studio page opened").split()
        studio_pid = int(pid)
        assert url.startswith("http://127.0.0.1:") and "token=" in url, url
        with urllib.request.urlopen(url, timeout=30) as r:
            assert r.status == 200 and b"<html" in r.read().lower()
        page = urllib.parse.urlsplit(url)
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"http://{page.netloc}{page.path}", timeout=30)  # no token
        assert e.value.code == 403
        token = urllib.parse.parse_qs(page.query)["token"][0]
        api = f"http://{page.netloc}/api/characters"
        req = urllib.request.Request(api, headers={"X-Stream-Animator-Token": token})
        listed = json.loads(urllib.request.urlopen(req, timeout=60).read())
        assert [c["file"] for c in listed["characters"]] == ["toon.png"], listed  # the script's folder
        req = urllib.request.Request(f"http://{page.netloc}/api/live", headers={"X-Stream-Animator-Token": token})
        live = json.loads(urllib.request.urlopen(req, timeout=60).read())
        assert live["running"] and live["status"]["character"] == "toon.png", live  # OBS's worker
    finally:
        if studio_pid:
            os.killpg(studio_pid, signal.SIGTERM)  # its own session (detached from OBS)
        run.stop()
        run.kill_leftovers()


def test_live_section_with_a_running_worker(browser, tmp_path, monkeypatch):
    """A real worker (`run`, the bundled clip as the camera, a `ws` output): the Live section shows
    its status, the preview paints its frames, and choosing a character switches the worker's."""
    import json
    import subprocess
    import sys

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    from worker.control import protocol as P
    from worker.paths import SAMPLE_DRIVER
    from worker.studio.live import WorkerLink

    chars = tmp_path / "characters"
    chars.mkdir()
    for name in ("a.png", "b.png"):
        shutil.copy(DEMO_CHARACTER, chars / name)
    token = P.make_token()
    env = dict(
        os.environ,
        **{P.ENV_TOKEN: token},
        STREAM_ANIMATOR_LOGS=str(tmp_path / "logs"),
        STREAM_ANIMATOR_CONFIG=str(tmp_path / "user"),
    )
    cmd = [sys.executable, "-m", "worker", "run", "--source", str(SAMPLE_DRIVER), "--characters", str(chars)]
    (tmp_path / "run.yaml").write_text(f"characters: {{size: {SIZE}}}\n")
    cmd += ["--config", str(tmp_path / "run.yaml"), "--output", "ws:0", "--duration", "90", "--ready-json"]
    worker = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    server = WebServer(name="studio-test")
    paths = StudioPaths(chars, tmp_path / "config.yaml", tmp_path / "clips", Path(os.environ["STREAM_ANIMATOR_CACHE"]))
    try:
        line = worker.stdout.readline()
        assert line, worker.stderr.read()
        ready = json.loads(line)
        # the ws output's address (web.json); monkeypatch puts back the suite's own folder afterwards
        monkeypatch.setenv("STREAM_ANIMATOR_CONFIG", str(tmp_path / "user"))
        studio = Studio(server, paths, size=SIZE, link=WorkerLink(ready["control_port"], token))
        server.start()
        browser.get(studio.url("live"))
        wait = WebDriverWait(browser, 60)
        status = browser.find_element(By.ID, "liveStatus")
        wait.until(lambda b: status.get_attribute("data-running") == "true")
        wait.until(lambda b: "meshwarp" in status.text and "FPS" in status.text)
        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#livePreview iframe"), studio.link.status())
        frame = browser.find_element(By.CSS_SELECTOR, "#livePreview iframe")
        browser.switch_to.frame(frame)
        wait.until(lambda b: b.execute_script("return window.streamAnimator && window.streamAnimator.painted") > 5)
        browser.switch_to.default_content()
        browser.save_screenshot(str(Path(os.environ.get("STUDIO_SCREENSHOTS") or tmp_path) / "studio_live.png"))
        Select(browser.find_element(By.ID, "liveChar")).select_by_value("b.png")
        link = WorkerLink(ready["control_port"], token)
        wait.until(lambda b: link.request("status")["character"] == "b.png")
        # a live setting saved in the studio reaches the running worker at once
        import urllib.request

        req = urllib.request.Request(
            server.url("/api/settings", token=False),
            data=json.dumps({"changes": {"voice.lipsync": "always"}}).encode(),
            headers={"Content-Type": "application/json", "X-Stream-Animator-Token": server.token},
        )
        saved = json.loads(urllib.request.urlopen(req, timeout=30).read())
        assert saved["applied_live"] == ["voice.lipsync"], saved  # the worker's own answer
    finally:
        server.stop()
        worker.terminate()
        worker.communicate(timeout=30)


def test_voice_section_saves_the_input_and_calibrates_from_recordings(studio, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    from worker.audio.held_vowels import held_vowel
    from worker.retarget.mouth_signal import VOWELS
    from worker.tools.audio_bench import write_wav

    recordings = {v: write_wav(tmp_path / f"{v}.wav", held_vowel(v, "en+m7")) for v in VOWELS}
    voice_file = recordings["A"]
    browser.get(studio.url("voice"))
    wait = WebDriverWait(browser, 60)
    wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#voiceMic option")) >= 3)
    Select(browser.find_element(By.ID, "voiceMic")).select_by_value("@file")
    browser.find_element(By.ID, "voiceFile").send_keys(str(voice_file))
    Select(browser.find_element(By.ID, "voiceLipsync")).select_by_value("always")
    browser.find_element(By.CSS_SELECTOR, "#voiceForm button[type=submit]").click()
    wait.until(lambda b: "saved" in b.find_element(By.ID, "voiceMsg").text)
    voice = yaml.safe_load(studio.paths.config.read_text())["voice"]
    assert voice == {"mic": str(voice_file), "lipsync": "always"}
    for v, path in recordings.items():
        browser.find_element(By.CSS_SELECTOR, f'#calForm input[name="{v}"]').send_keys(str(path))
    browser.find_element(By.CSS_SELECTOR, "#calForm button[type=submit]").click()
    WebDriverWait(browser, 120).until(lambda b: b.find_element(By.ID, "calMsg").text)
    assert "stored your voice" in browser.find_element(By.ID, "calMsg").text, browser.find_element(By.ID, "calMsg").text
    data = yaml.safe_load(studio.paths.config.read_text())
    assert data["voice"]["lipsync"] == "always" and data["voice"]["calibration"]["source"] == "files"
    browser.save_screenshot(str(Path(os.environ.get("STUDIO_SCREENSHOTS") or tmp_path) / "studio_voice.png"))


def test_clip_from_a_recording_with_the_bundled_driver_keeps_transparency(studio, tmp_path, monkeypatch):
    """The other ways to make a clip, through the page's API: a recording instead of text, the
    bundled driving clip for head and eyes, WebM with transparency; a bad recording is one line."""
    import json
    import urllib.request

    import av
    import numpy as np
    from media import decode_rgba

    from worker.audio.tts import synthesize
    from worker.tools.audio_bench import write_wav

    shutil.copy(DEMO_CHARACTER, studio.paths.characters / "toon.png")
    voice = synthesize("Hi there!")
    voice[-1] = np.random.default_rng().uniform(-0.5, 0.5)  # new content: analysed now, not found in the cache
    wav = write_wav(tmp_path / "line.wav", voice)
    lipsync = studio.paths.cache / "lipsync"
    before = {p.name for p in lipsync.glob("*")} if lipsync.is_dir() else set()

    async def post(files: dict, fields: dict) -> tuple[int, dict]:
        import aiohttp

        form = aiohttp.FormData()
        for k, v in fields.items():
            form.add_field(k, v)
        for k, (name, data) in files.items():
            form.add_field(k, data, filename=name, content_type="application/octet-stream")
        headers = {"X-Stream-Animator-Token": studio.server.token}
        async with (
            aiohttp.ClientSession() as s,
            s.post(studio.server.url("/api/clips", token=False), data=form, headers=headers) as r,
        ):
            return r.status, await r.json()

    def finish(job_id: str) -> dict:
        url = studio.server.url(f"/api/jobs/{job_id}", token=False)
        req = urllib.request.Request(url, headers={"X-Stream-Animator-Token": studio.server.token})
        deadline = time.monotonic() + 240
        while True:
            job = json.loads(urllib.request.urlopen(req, timeout=30).read())["job"]
            if job["state"] != "running" or time.monotonic() > deadline:
                return job
            time.sleep(0.2)

    fields = {"character": "toon.png", "driver": "bundled", "format": "webm"}
    status, reply = asyncio.run(post({"recording": ("line.wav", wav.read_bytes())}, fields))
    assert status == 200, reply
    job = finish(reply["job"]["id"])
    assert job["state"] == "done", job
    out = studio.paths.clips / job["result"]["clips"][0]["file"]
    assert out.suffix == ".webm" and job["result"]["clips"][0]["audio_offset_ms"] is not None
    with av.open(str(out)) as c:
        assert c.streams.audio and c.streams.video
    frames = decode_rgba(out)
    assert len(frames) == job["result"]["clips"][0]["frames"]
    alpha = frames[len(frames) // 2][..., 3]
    assert (alpha < 10).mean() > 0.1 and (alpha > 245).mean() > 0.2  # transparent around an opaque figure
    # the recording was analysed as it was decoded: its mouth track is cached, its decoded voice is not
    new = sorted(p.name.split(".", 1)[1] for p in lipsync.glob("*") if p.name not in before)
    assert new == ["json", "mouth.npy"], new
    status, reply = asyncio.run(post({"recording": ("noise.wav", b"RIFF not really a wave file")}, fields))
    assert status == 200
    job = finish(reply["job"]["id"])
    assert job["state"] == "failed" and "cannot read" in job["error"] and "\n" not in job["error"], job
    # past the stated limit for a voice (worker.audio.limits; 4 h, made 1 s here): one line, before any work
    monkeypatch.setattr("worker.audio.talking.MAX_AUDIO_S", 1.0)
    five = write_wav(tmp_path / "five.wav", np.zeros(5 * 16000, np.float32))
    status, reply = asyncio.run(post({"recording": ("five.wav", five.read_bytes())}, fields))
    job = finish(reply["job"]["id"])
    assert job["state"] == "failed" and "\n" not in job["error"], job
    assert "5 s long; a voice to render may be at most 1 s" in job["error"], job


def test_choosing_the_characters_folder_in_settings_moves_the_page_there(studio, tmp_path):
    import json
    import urllib.request

    mine = tmp_path / "mine"
    mine.mkdir()
    shutil.copy(DEMO_CHARACTER, mine / "me.png")

    def call(path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            studio.server.url(path, token=False),
            data=data,
            headers={"Content-Type": "application/json", "X-Stream-Animator-Token": studio.server.token},
        )
        return json.loads(urllib.request.urlopen(req, timeout=60).read())

    assert call("/api/characters")["characters"] == []
    call("/api/settings", {"changes": {"characters.folder": str(mine)}})
    assert [c["file"] for c in call("/api/characters")["characters"]] == ["me.png"]
    assert yaml.safe_load(studio.paths.config.read_text())["characters"]["folder"] == str(mine)
