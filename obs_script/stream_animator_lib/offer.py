"""What the worker offers, as `python -m worker describe --json` prints it: its renderers and
outputs (with whether they can run on this machine, and why not) and its settings' ranges.

The script builds its menus and checks its settings from this instead of keeping its own
copies of those facts. `Offer.from_json` refuses anything that is not that shape.
"""

from __future__ import annotations

import json
import os
from typing import Any

# the script's output modes and the worker output each one uses
MODE_OUTPUTS = {"direct": "obs", "nut": "nut", "spout": "spout", "browser": "ws"}
MODE_LABELS = {
    "direct": "Direct (this script pushes frames)",
    "nut": "Media Source (NUT over local TCP)",
    "spout": "Spout2 (Windows, needs the Spout2 plugin)",
    # the worker's page: add it once with `stream-animator obs-setup --browser-source` (its address is kept);
    # lines said through the WebSocket API (`say`) play through it
    "browser": "Browser Source (the worker's page)",
}


class OfferError(ValueError):
    """`describe --json` printed something else than expected."""


def _rows(d: dict, key: str) -> dict[str, dict]:
    rows = d.get(key)
    if not isinstance(rows, list) or not all(isinstance(r, dict) and isinstance(r.get("name"), str) for r in rows):
        raise OfferError(f"describe: '{key}' must be a list of entries with a name")
    return {r["name"]: r for r in rows}


class Offer:
    def __init__(self, data: dict):
        if not isinstance(data, dict) or not isinstance(data.get("config"), dict):
            raise OfferError("describe: expected an object with 'renderers', 'outputs' and 'config'")
        self.data = data
        self.renderers = _rows(data, "renderers")
        self.outputs = _rows(data, "outputs")
        self.settings: dict[str, dict] = {}
        for section, opts in data["config"].items():
            for o in opts:
                self.settings[f"{section}.{o['name']}" if section else o["name"]] = o

    @classmethod
    def from_json(cls, text: str) -> Offer:
        try:
            return cls(json.loads(text))
        except ValueError as e:  # OfferError is one too
            raise OfferError(str(e)) from None
        except (KeyError, TypeError) as e:
            raise OfferError(f"describe: malformed entry ({e})") from None

    @classmethod
    def load(cls, path: str) -> Offer | None:
        """The copy saved by an earlier session, or None."""
        try:
            with open(path, encoding="utf-8") as f:
                return cls.from_json(f.read())
        except (OSError, OfferError):
            return None

    def save(self, path: str) -> None:
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.data, f)
        os.replace(tmp, path)

    def range(self, key: str) -> tuple[float, float] | None:
        """(min, max) of a worker setting such as 'motion.expression_strength'."""
        o = self.settings.get(key)
        return None if o is None or "min" not in o else (o["min"], o["max"])

    def choices(self, key: str) -> list[str]:
        """The allowed values of a worker setting with a fixed list, such as 'performance'."""
        o = self.settings.get(key)
        return list(o.get("choices", ())) if o is not None else []

    def renderer_choices(self, current: str) -> list[str]:
        """The renderers that can run here (and the current choice, so a saved one stays visible)."""
        names = [n for n, r in self.renderers.items() if r.get("available")]
        return names + ([current] if current and current not in names else [])

    def mode_choices(self, current: str) -> list[str]:
        """The script's output modes whose worker output can run here (and the current choice)."""
        modes = [m for m, out in MODE_OUTPUTS.items() if self.outputs.get(out, {}).get("available")]
        return modes + ([current] if current in MODE_OUTPUTS and current not in modes else [])

    def renderer_option(self, renderer: str, name: str) -> dict | None:
        """One of a renderer's options as `describe` lists it (type, default, choices), or None
        when that renderer does not take it (meshwarp takes none of liveportrait's)."""
        for o in self.renderers.get(renderer, {}).get("options", ()):
            if isinstance(o, dict) and o.get("name") == name:
                return o
        return None

    def problems(
        self, renderer: str, mode: str, values: dict[str, tuple[str, Any]], renderer_opts: dict | None = None
    ) -> list[str]:
        """What the worker would refuse, one line each; `values`: setting key -> (label, value);
        `renderer_opts`: the renderer options the script would pass (name -> value)."""
        out = []
        opts = renderer_opts or {}
        r = self.renderers.get(renderer)
        if r is None:
            out.append(f"Renderer: {renderer!r} is not one of {', '.join(self.renderers)}")
        elif not r.get("available") and not opts.get("models") and not opts.get("unverified"):
            out.append(f"Renderer: {r.get('reason')}")  # a models folder / unverified: the renderer checks
        for name, value in opts.items():
            o = self.renderer_option(renderer, name)
            if o is not None and "choices" in o and value not in o["choices"]:
                out.append(f"Renderer {name}: {value!r} is not one of {', '.join(o['choices'])}")
        o = self.outputs.get(MODE_OUTPUTS.get(mode, ""))
        if o is not None and not o.get("available"):
            out.append(f"Output: {o.get('reason')}")
        for key, (label, value) in values.items():
            lo_hi = self.range(key)
            if lo_hi is not None and not lo_hi[0] <= value <= lo_hi[1]:
                out.append(f"{label}: {value} is outside {lo_hi[0]:g}..{lo_hi[1]:g}")
        return out
