"""The README's pictures of the studio: a studio on sample characters, driven in headless chromium
(selenium, the dev extra), each section captured as a streamer sees it.

    python -m worker.tools.studio_shots --out docs/
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from worker.paths import ASSETS_DIR, DEMO_CHARACTER, SAMPLE_CHARACTER, SAMPLE_DRIVER


def _folder(root: Path) -> Path:
    chars = root / "My characters"
    chars.mkdir()
    shutil.copy(DEMO_CHARACTER, chars / "astronaut_toon.png")
    shutil.copy(SAMPLE_CHARACTER, chars / "astronaut.png")
    shutil.copy(ASSETS_DIR / "mascots" / "fox.png", chars / "fox.png")
    shutil.copy(ASSETS_DIR / "mascots" / "fox.face.json", chars / "fox.face.json")
    y = np.linspace(0, 1, 360)[:, None, None]
    sky = (np.array([255, 170, 90]) * (1 - y) + np.array([60, 40, 120]) * y) * np.ones((1, 640, 1))
    Image.fromarray(sky.astype(np.uint8)).save(chars / "sunset.jpg")  # no face: "cannot be used"
    return chars


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="docs", help="folder for studio_*.png")
    args = p.parse_args(argv)
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
    from browser import chrome_at  # type: ignore[import-not-found]  # tests/browser.py, on the path above

    from worker.control import protocol as P
    from worker.paths import default_cache_dir
    from worker.studio.app import Studio, StudioPaths
    from worker.studio.live import WorkerLink
    from worker.web import WebServer

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="studio-shots-"))
    os.environ["STREAM_ANIMATOR_CONFIG"] = str(root / "user")
    chars = _folder(root)
    token = P.make_token()
    env = dict(os.environ, **{P.ENV_TOKEN: token}, STREAM_ANIMATOR_LOGS=str(root / "logs"))
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "worker",
            "run",
            "--source",
            str(SAMPLE_DRIVER),
            "--characters",
            str(chars),
            "--output",
            "ws:0",
            "--duration",
            "300",
            "--ready-json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert worker.stdout is not None  # stdout=PIPE
    ready = json.loads(worker.stdout.readline())
    server = WebServer(name="studio")
    paths = StudioPaths(chars, root / "user" / "config.yaml", root / "Videos", default_cache_dir())
    studio = Studio(server, paths, link=WorkerLink(ready["control_port"], token))
    server.start()
    b = chrome_at(1280, 1000)
    wait = WebDriverWait(b, 120)
    try:
        b.get(studio.url("characters"))
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
        card = b.find_element(By.CSS_SELECTOR, '.char[data-file="astronaut_toon.png"]')
        card.find_element(By.CLASS_NAME, "prepare").click()
        wait.until(lambda d: card.get_attribute("data-prepared") == "done")
        b.save_screenshot(str(out / "studio_characters.png"))

        b.get(studio.url("clips"))
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#clipVoice option")) > 1)
        Select(b.find_element(By.ID, "clipChar")).select_by_value("astronaut_toon.png")
        Select(b.find_element(By.ID, "clipVoice")).select_by_value("en-us")
        text = b.find_element(By.ID, "clipText")
        for n, line in enumerate(("Welcome in, everyone!", "Thanks for the follow!"), 1):
            text.clear()
            text.send_keys(line)
            b.find_element(By.ID, "generate").click()
            wait.until(functools.partial(_clips_shown, count=n))
        video = b.find_element(By.ID, "clipVideo")
        wait.until(lambda d: d.execute_script("return arguments[0].readyState", video) >= 2)
        b.execute_script("arguments[0].currentTime = 0.5", video)
        time.sleep(1.0)
        b.save_screenshot(str(out / "studio_clips.png"))

        b.get(studio.url("settings"))
        wait.until(lambda d: d.find_elements(By.ID, "set-motion.head_strength"))
        field = b.find_element(By.ID, "set-motion.head_strength")
        field.clear()
        field.send_keys("3")
        b.find_element(By.ID, "saveSettings").click()
        wait.until(lambda d: "not saved" in d.find_element(By.ID, "setMsg").text)
        b.execute_script(
            "document.querySelector('.field[data-key=\"motion.head_strength\"]')"
            ".closest('.section').scrollIntoView(); window.scrollBy(0, -120)"
        )
        time.sleep(0.3)
        b.save_screenshot(str(out / "studio_settings.png"))

        b.get(studio.url("live"))
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#livePreview iframe"))
        b.switch_to.frame(b.find_element(By.CSS_SELECTOR, "#livePreview iframe"))
        wait.until(lambda d: d.execute_script("return window.streamAnimator && window.streamAnimator.painted") > 10)
        b.switch_to.default_content()
        b.execute_script("window.scrollTo(0, 0)")
        time.sleep(1.5)
        b.save_screenshot(str(out / "studio_live.png"))
    finally:
        b.quit()
        server.stop()
        studio.close()
        worker.terminate()
        worker.wait(30)
        shutil.rmtree(root, ignore_errors=True)
    print(f"wrote {', '.join(str(out / f'studio_{n}.png') for n in ('characters', 'clips', 'settings', 'live'))}")
    return 0


def _clips_shown(driver: Any, count: int) -> bool:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.TAG_NAME, "body").get_attribute("data-clips") == str(count)


if __name__ == "__main__":
    sys.exit(main())
