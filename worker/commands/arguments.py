"""Options several commands share, declared once from the registries that own them.

`--size` comes from `worker.options.SIZE` (the range and default the config and the renderers
use); `--renderer` from the renderer registry (its names and its default, `auto`). A command
only says what the flag means for it.
"""

from __future__ import annotations

import argparse

from worker.options import SIZE
from worker.render.registry import AUTO, DEFAULT, RENDERERS


def add_size(p: argparse.ArgumentParser, what: str = "output size") -> None:
    p.add_argument(
        "--size",
        type=int,
        default=SIZE.default,
        help=f"{what} in pixels, {SIZE.lo:g}..{SIZE.hi:g} (default {SIZE.default})",
    )


def add_renderer(p: argparse.ArgumentParser, purpose: str = "", from_config: bool = False) -> None:
    """`--renderer NAME`; with `from_config` it overrides the config's renderer.name (same default)."""
    default = None if from_config else DEFAULT
    where = "overrides renderer.name; " if from_config else ""
    # no argparse choices: an unknown name gets the registry's one-line error naming the choices
    p.add_argument(
        "--renderer",
        default=default,
        help=f"{purpose + ': ' if purpose else ''}{', '.join(RENDERERS)} ({where}default {DEFAULT}: "
        f"{RENDERERS[DEFAULT].summary})",
    )


def renderer_names(with_auto: bool = True) -> list[str]:
    """The renderers' names, for commands that compare the real backends side by side."""
    return [n for n in RENDERERS if with_auto or n != AUTO]
