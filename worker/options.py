"""`Option`: one setting's name, type, default and allowed values, declared once by its owner;
`Backend`: one entry of a registry (a renderer, an output) with its options and availability.

Config sections, renderers and outputs list their settings as `Option`s; the same declaration
checks a value (a one-line `UserError` naming the field and what is allowed) and describes the
setting for `stream-animator describe --json`, which the OBS script reads to build its menus.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from worker.errors import UserError

KINDS = ("int", "number", "bool", "str", "choice", "list", "map", "colour")


@dataclass(frozen=True)
class Option:
    name: str
    kind: str  # one of KINDS
    default: Any = None
    lo: float | None = None  # int / number: inclusive range
    hi: float | None = None
    choices: tuple[str, ...] = ()  # choice: the allowed values
    optional: bool = False  # None (null) is allowed too
    required: str = ""  # when set: None is refused with "<key> is required (<this>)"
    help: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"option {self.name}: unknown kind {self.kind!r}")

    def allowed(self) -> str:
        """What a valid value looks like, for error messages."""
        if self.kind == "int":
            want = f"an integer in {self.lo:g}..{self.hi:g}"
        elif self.kind == "number":
            want = f"a number in {self.lo:g}..{self.hi:g}"
        elif self.kind == "bool":
            want = "true or false"
        elif self.kind == "str":
            want = "a non-empty string"
        elif self.kind == "choice":
            want = "one of " + ", ".join(self.choices)
        elif self.kind == "list":
            want = "a list"
        elif self.kind == "map":
            want = "a mapping"
        else:
            want = "".join(f'"{c}", ' for c in self.choices) + '"#rrggbb" or [r, g, b] with 0..255'
        return want + (" or null" if self.optional else "")

    def ok(self, value: Any) -> bool:
        if value is None:
            return self.optional
        if self.kind in ("int", "number"):
            if isinstance(value, bool) or not isinstance(value, int if self.kind == "int" else (int, float)):
                return False
            return (self.lo is None or value >= self.lo) and (self.hi is None or value <= self.hi)
        if self.kind == "bool":
            return isinstance(value, bool)
        if self.kind == "str":
            return isinstance(value, str) and value != ""
        if self.kind == "choice":
            return value in self.choices
        if self.kind == "list":
            return isinstance(value, list)
        if self.kind == "map":
            return isinstance(value, dict)
        return value in self.choices or _is_colour(value)

    def check(self, value: Any, where: str) -> Any:
        """`value` if allowed, else a UserError naming `where` (the dotted key)."""
        if value is None and self.required:
            raise UserError(f"{where} is required ({self.required})")
        if not self.ok(value):
            raise UserError(f"{where}: expected {self.allowed()}, got {value!r}")
        return value

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "type": self.kind, "default": self.default}
        if self.lo is not None:
            d["min"], d["max"] = self.lo, self.hi
        if self.choices:
            d["choices"] = list(self.choices)
        if self.optional:
            d["optional"] = True
        if self.required:
            d["required"] = True
        if self.help:
            d["help"] = self.help
        return d


def _is_colour(value: Any) -> bool:
    if isinstance(value, str):
        s = value.lstrip("#")
        return len(s) == 6 and all(c in "0123456789abcdefABCDEF" for c in s)
    return (
        isinstance(value, (list, tuple))
        and len(value) == 3
        and all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in value)
    )


def check_options(config: dict, options: Iterable[Option], where: str) -> dict[str, Any]:
    """Defaults overlaid with `config` (minus "type"), every value checked; unknown keys are a
    UserError naming them and the allowed ones."""
    opts = {o.name: o for o in options}
    if not isinstance(config, dict):
        raise UserError(f"{where}: must be a mapping, got {type(config).__name__}")
    unknown = sorted(set(config) - set(opts) - {"type"})
    if unknown:
        raise UserError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(opts))}")
    values = {name: o.default for name, o in opts.items()}
    values.update({k: v for k, v in config.items() if k != "type"})
    for name, o in opts.items():
        o.check(values[name], f"{where}.{name}")
    return values


@dataclass(frozen=True)
class Backend:
    """A registry entry: a class imported on first use (so listing costs nothing and a missing
    optional dependency affects only its own entry), its options, and whether it can run here."""

    name: str
    target: str  # "module:Class"
    summary: str
    options: tuple[Option, ...]
    why_unavailable: Callable[[], str | None]  # None when it can run on this machine

    def explain(self, reason: str) -> str:
        """The one line a user reads when it cannot run (subclasses name their kind)."""
        return f"{self.name} {reason}"

    def availability(self) -> tuple[bool, str | None]:
        reason = self.why_unavailable()
        return (reason is None, None if reason is None else self.explain(reason))

    def load(self) -> Any:
        module, cls = self.target.split(":")
        return getattr(importlib.import_module(module), cls)

    def describe(self) -> dict[str, Any]:
        ok, reason = self.availability()
        return {
            "name": self.name,
            "summary": self.summary,
            "available": ok,
            "reason": reason,
            "options": [o.describe() for o in self.options],
        }


E = TypeVar("E", bound=Backend)


def by_name(*entries: E) -> dict[str, E]:
    """A registry: its entries by name, in the order given."""
    return {e.name: e for e in entries}


# The working size of characters and frames (square, pixels): one range for the character
# preparation, the renderers and the config (`characters.size`).
SIZE = Option("size", "int", 512, 64, 2048, help="working and output size in pixels (square)")
