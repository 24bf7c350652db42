"""The registry of renderers: each renderer's name, options (types, ranges, defaults), and whether
it can run on this machine (with the reason when not).

Read by `create_renderer`, the config validation (`renderer.name`, `characters.size`) and
`stream-animator describe --json`, which the OBS script reads to fill its renderer list. Listing
imports no backend: availability is decided from what is installed, and a renderer's module is
imported only when one is created.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from worker.errors import UserError
from worker.options import Backend, Option, by_name

SIZE = Option("size", "int", 512, 64, 2048, help="working and output size in pixels (square)")
DEFAULT = "meshwarp"


def _module_missing(module: str) -> Callable[[], str | None]:
    def why() -> str | None:
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:  # its package is missing
            found = False
        return None if found else f"not in this install yet ({module.replace('.', '/')}.py does not exist)"

    return why


def _liveportrait_unavailable() -> str | None:
    """Module missing, or its weights not present and verified (worker/render/liveportrait)."""
    missing = _module_missing("worker.render.liveportrait")()
    if missing:
        return missing
    from worker.render.liveportrait import availability

    ok, reason = availability()
    return None if ok else reason


@dataclass(frozen=True)
class RendererEntry(Backend):
    def explain(self, reason: str) -> str:
        return f"renderer {self.name} is {reason}"

    def create(self, **opts: Any) -> Any:
        ok, reason = self.availability()
        if not ok:
            raise UserError(f"renderer.name: {reason}")
        return self.load()(**opts)


RENDERERS: dict[str, RendererEntry] = by_name(
    RendererEntry(
        name="meshwarp",
        target="worker.render.meshwarp:MeshWarpRenderer",
        summary="CPU mesh warp of the picture itself; no GPU, no weights",
        options=(SIZE,),
        why_unavailable=lambda: None,
    ),
    RendererEntry(
        name="liveportrait",
        target="worker.render.liveportrait:LivePortraitRenderer",
        summary="LivePortrait neural renderer (ONNX Runtime; NVIDIA GPU recommended)",
        options=(SIZE,),
        why_unavailable=_liveportrait_unavailable,
    ),
)


def create_renderer(name: str = DEFAULT, **opts: Any) -> Any:
    """The renderer called `name`, built with `opts` (e.g. size=512)."""
    entry = RENDERERS.get(name)
    if entry is None:
        raise UserError(f"renderer.name: unknown renderer {name!r} (choose from {', '.join(RENDERERS)})")
    return entry.create(**opts)


def describe_renderers() -> list[dict[str, Any]]:
    return [e.describe() for e in RENDERERS.values()]
