"""Import the worker's wire protocol (worker/control/protocol.py) straight from the checkout.

It is the very file the worker uses, so the two sides cannot drift. It is loaded under a
distinctive module name: OBS scripts share one interpreter, and `protocol` is too common a name.
"""

from __future__ import annotations

import importlib.util
import os
import sys

MODULE_NAME = "stream_animator_protocol"


def protocol_path(repo_dir: str) -> str:
    return os.path.join(repo_dir, "worker", "control", "protocol.py")


def load_protocol(repo_dir: str):
    """The protocol module; raises ImportError naming the file when it is missing or broken."""
    mod = sys.modules.get(MODULE_NAME)
    path = protocol_path(repo_dir)
    if mod is not None and getattr(mod, "__file__", None) == path:
        return mod
    if not os.path.isfile(path):
        raise ImportError(
            f"{path} not found: the OBS script must stay inside its Stream Motion "
            "Animator folder (obs_script/ next to worker/)"
        )
    spec = importlib.util.spec_from_file_location(MODULE_NAME, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = mod  # dataclasses look their module up while the file executes
    try:
        spec.loader.exec_module(mod)
    except Exception as e:
        sys.modules.pop(MODULE_NAME, None)
        raise ImportError(f"{path}: {type(e).__name__}: {e}") from e
    return mod
