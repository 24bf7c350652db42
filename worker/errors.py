"""Errors a user can act on: the CLI prints them as one line, never a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input (a file, a field, a device), shown as one line."""


class NoFaceError(UserError):
    """An image or a video in which no face could be found."""


class CacheError(Exception):
    """A cache entry that is stale, truncated or tampered with; it is rebuilt, never trusted."""
