"""Where a worker started from the command line can be reached: `run` leaves its control port and
token in `control.json` in the logs folder (owner-only); `ctl` and the studio read it back."""

from __future__ import annotations

import json

from worker.paths import default_log_dir


def saved_endpoint() -> dict:
    """{"port", "token", "pid"} of the last worker started by hand, or {} when there is none."""
    try:
        data = json.loads((default_log_dir() / "control.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
