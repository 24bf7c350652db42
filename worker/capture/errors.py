"""Capture errors: one line a user can act on (which camera or file, and what went wrong)."""

from __future__ import annotations

from worker.errors import UserError


class CaptureError(UserError):
    """A camera or video that cannot be opened or stopped delivering frames."""
