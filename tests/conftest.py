"""Shared fixtures. Tests that need ../shared/testdata fail (not skip) when CI is set and it is missing."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from worker.paths import repo_root, shared_testdata

# The suite never writes into the user's real cache folder: it keeps its prepared characters in
# the checkout's (git-ignored) cache/, which subprocesses inherit through the environment.
# ... nor into the user's settings (the ws output keeps its address there)
os.environ.setdefault("STREAM_ANIMATOR_CONFIG", tempfile.mkdtemp(prefix="sa-test-config-"))
os.environ.setdefault("STREAM_ANIMATOR_CACHE", str((repo_root() or Path(__file__).resolve().parents[1]) / "cache"))


@pytest.fixture(scope="session")
def testdata() -> Path:
    d = shared_testdata()
    if d is None:
        msg = "../shared/testdata (real footage) not found beside the checkout"
        if os.environ.get("CI"):
            pytest.fail(msg + " — required in CI")
        pytest.skip(msg)
    return d
