"""The studio's Settings: every setting of the one config registry (`worker.config.SCHEMA`) with
its range and help, and saving changes to the YAML file: each value checked on its own (the
message goes beside its field), then the whole file validated before it replaces the old one
atomically. A refused change leaves the file untouched.
"""

from __future__ import annotations

import copy
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from worker.config import LIVE_KEYS, SCHEMA, get_key, load_config
from worker.errors import UserError, os_reason


class FieldErrors(UserError):
    """Values refused, by dotted key (shown beside each field)."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


def describe(path: Path) -> dict:
    """Every setting with its current value in the file at `path` (defaults when it does not exist)."""
    cfg = load_config(path if path.exists() else None)
    fields = []
    for key, opt in SCHEMA.items():
        d = opt.describe()
        d.update(key=key, value=get_key(cfg, key), live=key in LIVE_KEYS)
        if opt.kind in ("list", "map"):
            d["value"] = "" if d["value"] is None else yaml.safe_dump(d["value"], default_flow_style=True).strip()
        fields.append(d)
    return {"file": str(path), "exists": path.exists(), "settings": fields}


def parse_value(key: str, raw: Any) -> Any:
    """A form field's value (text, or already typed JSON) -> the setting's value; UserError if refused."""
    if key not in SCHEMA:
        raise UserError(f"{key}: no such setting")
    opt = SCHEMA[key]
    value = raw
    if isinstance(raw, str):
        text = raw.strip()
        if text == "" and opt.optional:
            value = None
        elif opt.kind == "int":
            try:
                value = int(text)
            except ValueError:
                raise UserError(f"{key}: expected {opt.allowed()}, got {raw!r}") from None
        elif opt.kind == "number":
            try:
                value = float(text)
            except ValueError:
                raise UserError(f"{key}: expected {opt.allowed()}, got {raw!r}") from None
        elif opt.kind == "bool":
            if text.lower() not in ("true", "false"):
                raise UserError(f"{key}: expected true or false, got {raw!r}")
            value = text.lower() == "true"
        elif opt.kind in ("list", "map"):
            try:
                value = yaml.safe_load(text)
            except yaml.YAMLError:
                raise UserError(f"{key}: not valid YAML") from None
        else:
            value = text
    opt.check(value, key)
    return value


def save(path: Path, changes: dict[str, Any]) -> dict:
    """Apply `changes` (dotted key -> form value) to the YAML file at `path`, all or nothing."""
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    for key, raw in changes.items():
        try:
            values[key] = parse_value(key, raw)
        except UserError as e:
            errors[key] = str(e)
    if errors:
        raise FieldErrors(errors)
    data: dict = {}
    if path.exists():
        load_config(path)  # never rewrite a file that is not a valid config: say what is wrong with it
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    new = copy.deepcopy(data)
    for key, value in values.items():
        node = new
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    text = yaml.safe_dump(new, sort_keys=False, default_flow_style=None, width=200)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as e:
        raise UserError(f"{path}: cannot write ({os_reason(e)})") from None
    try:
        load_config(tmp)  # the whole file, as every command will read it (outputs, relative paths)
    except UserError as e:
        os.unlink(tmp)
        msg = str(e).replace(tmp, str(path))
        named = next((k for k in values if f"'{k}'" in msg or k in msg), "")
        raise FieldErrors({named: msg}) from None
    os.replace(tmp, path)
    return {"saved": str(path), "keys": sorted(values)}
