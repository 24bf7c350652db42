"""The render stage's contract: one interface (`worker.render.base.Renderer`) that every backend
implements exactly, one registry table, and no import cycle through the registry."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import worker.render
from worker.render import base, registry

RENDER = Path(worker.render.__file__).parent
HOOKS = ("prepare", "draw", "calibrate", "set_motion", "status_line", "close")


def _backends() -> dict[str, type]:
    out = {}
    for name, entry in registry.RENDERERS.items():
        if entry.target:
            module, cls = entry.target.split(":")
            out[name] = getattr(importlib.import_module(module), cls)
    return out


def test_every_backend_implements_the_interface_exactly():
    backends = _backends()
    assert set(backends) == {"meshwarp", "liveportrait"}
    abstract = base.Renderer.__abstractmethods__
    assert abstract == {"prepare", "draw"}
    for name, cls in backends.items():
        assert issubclass(cls, base.Renderer) and not cls.__abstractmethods__, name
        for hook in HOOKS:
            want = inspect.signature(getattr(base.Renderer, hook))
            got = inspect.signature(getattr(cls, hook))
            assert list(got.parameters) == list(want.parameters), (name, hook, str(got), str(want))
            assert got.return_annotation == want.return_annotation, (name, hook)
        assert cls.name == name


def test_no_type_ignore_override_and_one_table():
    for path in RENDER.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "ignore[override]" not in text, path
    assert not hasattr(base, "BACKENDS") and not hasattr(worker.render, "BACKENDS")


def _imports(path: Path) -> set[str]:
    """Modules a file imports at its top level (not inside functions: those are lazy on purpose)."""
    out: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.If):  # `if TYPE_CHECKING:` imports do not run
            continue
    return out


def test_base_imports_neither_the_registry_nor_a_backend():
    tree = ast.parse((RENDER / "base.py").read_text(encoding="utf-8"))
    anywhere = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not {m for m in anywhere if m.startswith("worker.render")}, anywhere
    # and the registry reaches the backends only lazily (inside functions), so base -> registry ->
    # backend -> base cannot form even if base ever needed the registry
    assert not {m for m in _imports(RENDER / "registry.py") if m.startswith("worker.render.")}


def test_liveportrait_options_are_declared_once_and_reach_config_describe_and_create(tmp_path):
    import pytest

    from worker.config import load_config
    from worker.errors import UserError
    from worker.render.liveportrait import providers, renderer

    assert providers.DEVICES == registry.LP_DEVICE.choices and renderer.PRECISION == registry.LP_PRECISION.choices
    lp = next(d for d in registry.describe_renderers() if d["name"] == "liveportrait")
    assert {"models", "precision", "device", "unverified"} <= {o["name"] for o in lp["options"]}
    cfg = tmp_path / "c.yaml"
    cfg.write_text("renderer:\n  name: liveportrait\n  precision: fp32\n  unverified: true\n")
    section = load_config(cfg)["renderer"]
    assert registry.renderer_options(section) == {"models": None, "precision": "fp32", "device": "auto",
                                                  "unverified": True}  # fmt: skip
    cfg.write_text("renderer:\n  precision: fp8\n")
    with pytest.raises(UserError, match="renderer.precision"):
        load_config(cfg)
    with pytest.raises(UserError, match="meshwarp takes no option precision"):
        registry.create_renderer("meshwarp", size=256, precision="fp16")
    assert registry.renderer_options({"name": "meshwarp", "precision": "fp16"}) == {}
