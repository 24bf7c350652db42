"""Errors a user can act on: the CLI prints them as one line, never a traceback."""

from __future__ import annotations

import re


class UserError(Exception):
    """A problem with the user's input (a file, a field, a device), shown as one line."""


class NoFaceError(UserError):
    """An image or a video in which no face could be found."""


class CacheError(Exception):
    """A cache entry that is stale, truncated or tampered with; it is rebuilt, never trusted."""


def os_reason(e: BaseException) -> str:
    """An OS/FFmpeg error as a person reads it: "Permission denied", never "[Errno 13] ..." or
    FFmpeg's "[Errno 1094995529] Invalid data found when processing input"."""
    text = str(e) if not isinstance(e, OSError) or not e.strerror else e.strerror
    return without_errno(text).strip().rstrip(":") or type(e).__name__


def without_errno(text: str) -> str:
    """`text` without "[Errno N] " markers (OS and FFmpeg codes mean nothing to a person)."""
    return re.sub(r"\[Errno -?\d+\]\s*", "", text)
