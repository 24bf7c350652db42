"""The real-OBS harness for tests: `worker.tools.obs_run` (shared with `bench --recovery`), and
what a test does when OBS cannot run here."""

from __future__ import annotations

import os

from worker.tools.obs_run import (  # noqa: F401 - re-exported for the tests
    COLLECTION,
    OBS_SCRIPTING_DIR,
    PROFILE,
    REPO,
    SCRIPT,
    ObsRun,
    Xvfb,
    free_port,
    missing_requirements,
    scene_json,
    write_config,
)


def skip_or_fail(reason: str):
    """pytest.skip locally, pytest.fail on CI (env CI set): CI must really run these tests."""
    import pytest

    if os.environ.get("CI"):
        pytest.fail(f"real-OBS test cannot run on CI: {reason}")
    pytest.skip(reason)
