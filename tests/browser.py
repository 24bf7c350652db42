"""A real browser for page tests: Debian's chromium + chromedriver through selenium (headless).
Missing pieces fail the test in CI and skip it elsewhere."""

from __future__ import annotations

import os
import shutil

import pytest


def chromium(*extra: str):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("selenium is not installed (the dev extra)")
        pytest.skip("selenium is not installed")
    binary, drv = shutil.which("chromium"), shutil.which("chromedriver")
    if not (binary and drv):
        if os.environ.get("CI"):
            pytest.fail("chromium / chromium-driver are not installed (.ci/run's SYSTEM_PACKAGES)")
        pytest.skip("chromium / chromium-driver are not installed")
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for a in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        *extra,
    ):
        opts.add_argument(a)
    return webdriver.Chrome(service=Service(drv), options=opts)


def chrome_at(width: int, height: int):
    """`chromium()` with this window size (screenshots), playing media without a click, muted."""
    return chromium(f"--window-size={width},{height}", "--autoplay-policy=no-user-gesture-required", "--mute-audio")
