"""Shared fixtures. Tests that need ../shared/testdata fail (not skip) when CI is set and it is missing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from worker.paths import shared_testdata


@pytest.fixture(scope="session")
def testdata() -> Path:
    d = shared_testdata()
    if d is None:
        msg = "../shared/testdata (real footage) not found beside the checkout"
        if os.environ.get("CI"):
            pytest.fail(msg + " — required in CI")
        pytest.skip(msg)
    return d
