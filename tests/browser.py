"""A real browser for page tests: Debian's chromium + chromedriver, driven by selenium (headless).
Missing pieces skip locally and fail in CI (.ci/run installs them)."""

from __future__ import annotations

import os
import shutil

import pytest


def chrome(width: int = 1400, height: int = 1000, downloads: str | None = None):
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
        f"--window-size={width},{height}",
        "--autoplay-policy=no-user-gesture-required",
        "--mute-audio",
    ):
        opts.add_argument(a)
    if downloads:
        opts.add_experimental_option("prefs", {"download.default_directory": downloads})
    return webdriver.Chrome(service=Service(drv), options=opts)
