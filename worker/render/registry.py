"""The registry of renderers: each renderer's name, options (types, ranges, defaults), and whether
it can run on this machine (with the reason when not).

Read by `create_renderer`, the config validation (`renderer.name`, `characters.size`) and
`stream-animator describe --json`, which the OBS script reads to fill its renderer list. Listing
imports no backend: availability is decided from what is installed, and a renderer's module is
imported only when one is created.

`auto` (the default) is an entry too: it picks `liveportrait` when its weights are present and
verified and a GPU execution provider works, else `meshwarp`, and says which and why
(`pick_auto`); the renderer it creates carries that line as `selection`.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from worker.errors import UserError
from worker.options import SIZE, Backend, Option, by_name

if TYPE_CHECKING:
    from worker.render.base import Renderer

AUTO = "auto"
DEFAULT = AUTO


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


def pick_auto() -> tuple[str, str]:
    """(renderer, why) for `renderer: auto`: liveportrait when its weights are verified and a GPU
    execution provider works (it is too slow for live on a CPU), else meshwarp."""
    why_not = _liveportrait_unavailable()
    if why_not:
        return "meshwarp", f"auto chose meshwarp: liveportrait is {why_not}"
    from worker.render.liveportrait.providers import choose

    try:
        choice = choose("auto")
    except UserError as e:
        return "meshwarp", f"auto chose meshwarp: liveportrait cannot run ({e})"
    if not choice.gpu:
        return "meshwarp", (
            f"auto chose meshwarp: liveportrait's weights are ready but no GPU provider works ({choice.reason}); "
            "on the CPU it is too slow for live (choose liveportrait to render offline)"
        )
    from worker.render.liveportrait.weights import standin_dir

    weights = "STAND-IN graphs (tests only)" if standin_dir() is not None else "weights verified"
    return "liveportrait", f"auto chose liveportrait: {weights}, GPU provider {choice.device} works"


# liveportrait's options, declared once here (the renderer, the config, `describe` and the OBS
# script read them from this table; providers.DEVICES and renderer.PRECISION are these choices)
LP_MODELS = Option("models", "str", None, optional=True, help="folder holding liveportrait/*.onnx (default: installed)")
LP_PRECISION = Option(
    "precision", "choice", "auto", choices=("auto", "fp16", "fp32"),
    help="auto: FP16 on GPUs, FP32 on the CPU; fp32 for GPUs whose FP16 misbehaves (black frames); "
    "fp16 on the CPU runs the GPU graph set for checks",
)  # fmt: skip
LP_DEVICE = Option("device", "choice", "auto", choices=("auto", "cuda", "dml", "coreml", "cpu"))
LP_UNVERIFIED = Option(
    "unverified", "bool", False, help="run weight files that are not verified (labelled UNVERIFIED everywhere)"
)
LP_OPTIONS = (LP_MODELS, LP_PRECISION, LP_DEVICE, LP_UNVERIFIED)


@dataclass(frozen=True)
class RendererEntry(Backend):
    def explain(self, reason: str) -> str:
        return f"renderer {self.name} is {reason}"

    def create(self, **opts: Any) -> Any:
        known = {o.name for o in self.options}
        unknown = sorted(k for k, v in opts.items() if k not in known and v is not None)
        if unknown:
            took = ", ".join(sorted(known))
            raise UserError(f"renderer {self.name} takes no option {', '.join(unknown)} (its options: {took})")
        opts = {k: v for k, v in opts.items() if v is not None}
        for o in self.options:
            if o.name in opts:
                o.check(opts[o.name], f"renderer.{o.name}")
        ok, reason = self.availability()
        if not ok and not opts.get("unverified") and not opts.get("models"):  # the renderer checks those itself
            raise UserError(f"renderer.name: {reason}")
        r = self.load()(**opts)
        r.selection = f"{self.name}: chosen by name"
        return r


@dataclass(frozen=True)
class AutoEntry(RendererEntry):
    """`auto`: creates the renderer `pick_auto` names; its `selection` says which and why."""

    def create(self, **opts: Any) -> Any:
        name, why = pick_auto()
        takes = {o.name for o in RENDERERS[name].options}
        r = RENDERERS[name].create(**{k: v for k, v in opts.items() if k in takes})  # meshwarp: no LP options
        r.selection = why
        return r

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["picks"], d["picks_reason"] = pick_auto()
        return d


RENDERERS: dict[str, RendererEntry] = by_name(
    AutoEntry(
        name=AUTO,
        target="",
        summary="liveportrait where its weights are verified and a GPU works, else meshwarp",
        options=(SIZE, *LP_OPTIONS),
        why_unavailable=lambda: None,
    ),
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
        options=(SIZE, *LP_OPTIONS),
        why_unavailable=_liveportrait_unavailable,
    ),
)


def create_renderer(name: str = DEFAULT, **opts: Any) -> Renderer:
    """The renderer called `name`, built with `opts` (e.g. size=512)."""
    entry = RENDERERS.get(name)
    if entry is None:
        raise UserError(f"renderer.name: unknown renderer {name!r} (choose from {', '.join(RENDERERS)})")
    return entry.create(**opts)


def renderer_options(section: dict[str, Any]) -> dict[str, Any]:
    """The options of the config's `renderer` section that its chosen renderer takes (size apart)."""
    entry = RENDERERS.get(section.get("name", DEFAULT))
    takes = {o.name for o in entry.options} - {"size"} if entry else set()
    return {k: v for k, v in section.items() if k in takes}


def describe_renderers() -> list[dict[str, Any]]:
    return [e.describe() for e in RENDERERS.values()]
