"""The face-marking page (part of the studio) in a real browser (Debian's chromium + chromedriver, driven by selenium):
the marks are placed by dragging, saved as the sidecar, and the preview shows frames."""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request

import pytest
from browser import chromium

from worker.characters.face_marks import load_face_marks, sidecar_path
from worker.paths import ASSETS_DIR
from worker.studio.mark_page import MarkServer

FOX = ASSETS_DIR / "mascots" / "fox.png"


def _driver():
    return chromium()


@pytest.fixture()
def picture(tmp_path):
    p = tmp_path / "fox.png"
    shutil.copy(FOX, p)  # no sidecar: the page starts from the tracker's guess or the template
    return p


def test_wrong_token_is_refused(picture):
    server = MarkServer(picture)
    try:
        for bad in ("?token=not-the-token", ""):  # a wrong token, no token
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(server.web.url("/mark/fox.png/marks", token=False) + bad, timeout=10)
            assert e.value.code == 403
        assert server.url.startswith("http://127.0.0.1:")
    finally:
        server.close()


def test_marking_page_in_a_real_browser(picture):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    truth = json.loads((FOX.with_name("fox.face.json")).read_text())
    server = MarkServer(picture)
    browser = _driver()
    try:
        browser.get(server.url)
        wait = WebDriverWait(browser, 30)
        wait.until(lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
        pic = browser.find_element(By.ID, "pic")
        scale = pic.size["width"] / 640.0
        # drag every needed point (and the eye tops) onto the drawing's true position
        # (the optional dots first: they lie over the main ones, which a click would miss)
        for name in (
            "left_eye_top",
            "right_eye_top",
            "left_eye_bottom",
            "right_eye_bottom",
            "chin",
            "left_eye",
            "right_eye",
            "nose",
            "mouth_left",
            "mouth_right",
        ):
            dot = browser.find_element(By.ID, f"dot-{name}")
            x, y = truth[name]
            # offsets from the picture's centre (selenium 4 moves relative to the element's centre)
            tx, ty = x * scale - pic.size["width"] / 2, y * scale - pic.size["height"] / 2
            ActionChains(browser).click_and_hold(dot).move_to_element_with_offset(
                pic, int(tx), int(ty)
            ).release().perform()
        Select(browser.find_element(By.ID, "kind")).select_by_value("animal")
        browser.find_element(By.ID, "saveBtn").click()
        wait.until(
            lambda b: (
                b.find_element(By.TAG_NAME, "body").get_attribute("data-saved") == "1"
                or "saved" in b.find_element(By.ID, "status").text
                or 'class="err' in b.page_source
            )
        )
        assert "saved" in browser.find_element(By.ID, "status").text, browser.find_element(By.ID, "status").text
        marks = load_face_marks(picture, 640, 640)
        assert marks is not None and marks.kind == "animal"
        for name in ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right"):
            got, want = marks.points[name], truth[name]
            assert abs(got[0] - want[0]) < 3.0 / scale and abs(got[1] - want[1]) < 3.0 / scale, (name, got, want)
        assert sidecar_path(picture).is_file()
        # preview: frames rendered from the marks, cycling in the page
        browser.find_element(By.ID, "previewBtn").click()
        WebDriverWait(browser, 120).until(
            lambda b: int(b.find_element(By.ID, "preview").get_attribute("data-frame") or -1) >= 3
        )
        prev = browser.find_element(By.ID, "preview")
        assert prev.get_attribute("src").startswith("data:image/png;base64,")
        assert browser.execute_script("return arguments[0].naturalWidth", prev) == 256
        n = browser.execute_script("return frames.length")
        distinct = browser.execute_script("return new Set(frames).size")
        assert n >= 10 and distinct >= n // 2, (n, distinct)  # the character moves
        # a bad edit is refused with one line on the page; the sidecar stays as saved
        before = sidecar_path(picture).read_bytes()
        browser.execute_script("marks.left_eye = [700, 10]")
        browser.find_element(By.ID, "saveBtn").click()
        wait.until(lambda b: "outside the picture" in b.find_element(By.ID, "status").text)
        assert sidecar_path(picture).read_bytes() == before
    finally:
        browser.quit()
        server.close()
