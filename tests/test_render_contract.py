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
