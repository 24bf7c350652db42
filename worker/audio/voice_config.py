"""The config file's `voice:` section -> analysis settings and voice profile; writing a calibration back
into the user's file with nothing else in it changed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml

from worker.audio.analysis import VoiceSettings
from worker.audio.calibration import VoiceProfile, default_profile
from worker.errors import UserError

SETTING_KEYS = ("gain_db", "gate_db", "attack_ms", "release_ms", "vad")


def voice_from_config(path: str | Path | None) -> tuple[VoiceSettings, VoiceProfile]:
    from worker.config import load_config

    return voice_from_section(load_config(path)["voice"], f"{path}: voice")


def voice_from_section(cfg: dict, where: str = "voice") -> tuple[VoiceSettings, VoiceProfile]:
    """A loaded config's `voice` section -> analysis settings and voice profile."""
    settings = VoiceSettings(**{k: cfg[k] for k in SETTING_KEYS})
    settings.validate("voice")
    cal = cfg.get("calibration")
    profile = VoiceProfile.from_config(cal, f"{where}.calibration") if cal is not None else default_profile()
    return settings, profile


def check_config_target(path: str | Path) -> None:
    """Fail now (not after the recordings) when the calibration cannot be stored in `path`."""
    from worker.config import load_config

    p = Path(path)
    if p.is_dir():
        raise UserError(f"{p}: is a folder; --config names a YAML file")
    if p.exists():
        load_config(p)
        if _read_only(p):
            raise UserError(f"{p}: the config is read-only; make it writable or give another file with --config")
    elif not os.access(_existing_parent(p), os.W_OK):
        raise UserError(f"{p}: cannot create the config there (the folder is not writable)")


def _read_only(p: Path) -> bool:
    """Not writable, or marked read-only by its mode (which root's access check ignores)."""
    return not os.access(p, os.W_OK) or not p.stat().st_mode & 0o222


def _existing_parent(p: Path) -> Path:
    q = p.absolute().parent
    while not q.exists() and q != q.parent:
        q = q.parent
    return q


def store_calibration(path: str | Path, profile: VoiceProfile) -> None:
    """Put `profile` under voice.calibration in the YAML file at `path` (created if missing), atomically.

    Only that value changes: the file is edited as text where the YAML parser says the value is,
    so comments, layout, line endings and the file's mode stay as the user made them. The edit is
    checked (the file must read back as before with the new calibration) before it replaces the file.
    """
    from worker.config import load_config

    p = Path(path)
    cal = profile.to_config()
    if p.exists():
        load_config(p)  # refuse to touch a file that is not a valid config
        if _read_only(p):
            raise UserError(f"{p}: the config is read-only; make it writable or give another file with --config")
        raw = p.read_bytes()
        text = raw.decode("utf-8")
        mode = p.stat().st_mode & 0o7777
        new = calibration_edit(text, cal, str(p))
        want = yaml.safe_load(text) or {}
        want.setdefault("voice", {})
        if not isinstance(want["voice"], dict):
            want["voice"] = {}
        want["voice"]["calibration"] = cal
        if _loaded(new) != _loaded(yaml.safe_dump(want)):
            raise UserError(f"{p}: cannot place voice.calibration in this file's layout; it was left as it was")
    else:
        new, mode = "voice:\n  calibration: " + _flow(cal, 4, "\n") + "\n", None
    tmp = p.with_name(f".{p.name}.tmp")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(new.encode("utf-8"))
        if mode is not None:
            os.chmod(tmp, mode)
        load_config(tmp)  # what is written must load
        os.replace(tmp, p)
    except OSError as e:
        raise UserError(f"{p}: cannot write config ({e.strerror})") from None
    finally:
        tmp.unlink(missing_ok=True)


def _loaded(text: str) -> object:
    """A YAML text's data with floats rounded as `to_config` rounds them (for comparing two texts)."""
    return json.loads(json.dumps(yaml.safe_load(text) or {}, default=str))


def _flow(value: dict, indent: int, nl: str) -> str:
    """`value` as a flow mapping (`{a: 1, b: [..]}`), its continuation lines indented by `indent`."""
    lines = yaml.safe_dump(value, default_flow_style=True, width=100, sort_keys=False).rstrip("\n").split("\n")
    return (nl + " " * indent).join(line.strip() for line in lines)


def _content_end(node: yaml.Node, text: str, after_key: int) -> int:
    """Index just past the last character of a value node's own text (never its trailing lines)."""
    if isinstance(node, yaml.ScalarNode):
        if node.value == "" and node.style is None:  # an empty value: ends at its key's colon
            return text.index(":", after_key) + 1
        return node.end_mark.index
    if getattr(node, "flow_style", False):
        return node.end_mark.index
    items = node.value if isinstance(node, yaml.SequenceNode) else [v for _, v in node.value]
    return max((_content_end(v, text, node.start_mark.index) for v in items), default=node.start_mark.index)


def _line_end(text: str, i: int) -> int:
    """Index of the line break ending the line that holds index `i` (past any comment on it)."""
    j = text.find("\n", i)
    if j < 0:
        return len(text)
    return j - 1 if j > 0 and text[j - 1] == "\r" else j


def calibration_edit(text: str, cal: dict, where: str) -> str:
    """`text` (a YAML config) with voice.calibration set to `cal`, every other byte unchanged."""
    nl = "\r\n" if "\r\n" in text else "\n"
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        raise UserError(f"{where}: invalid YAML: {e}") from None
    if root is None:
        lead = text if not text or text.endswith(("\n", "\r")) else text + nl
        return f"{lead}voice:{nl}  calibration: {_flow(cal, 4, nl)}{nl}"
    if not isinstance(root, yaml.MappingNode) or root.flow_style:
        raise UserError(f"{where}: the config must be a block mapping of keys to add voice.calibration to it")
    voice = next(((k, v) for k, v in root.value if k.value == "voice"), None)
    if voice is None:
        end = _line_end(text, _content_end(root, text, 0))
        col = root.value[0][0].start_mark.column if root.value else 0
        block = f"{nl}{' ' * col}voice:{nl}{' ' * (col + 2)}calibration: {_flow(cal, col + 4, nl)}"
        return text[:end] + block + text[end:]
    vkey, vnode = voice
    if isinstance(vnode, yaml.ScalarNode):  # `voice:` or `voice: null`
        end = _content_end(vnode, text, vkey.end_mark.index)
        col = vkey.start_mark.column + 2
        return text[: vkey.end_mark.index] + f":{nl}{' ' * col}calibration: {_flow(cal, col + 2, nl)}" + text[end:]
    if not isinstance(vnode, yaml.MappingNode):
        raise UserError(f"{where}: 'voice' must be a mapping")
    cal_item = next(((k, v) for k, v in vnode.value if k.value == "calibration"), None)
    if vnode.flow_style:
        one_line = json.dumps(cal)
        if cal_item is not None:
            ck, cv = cal_item
            return text[: cv.start_mark.index] + one_line + text[_content_end(cv, text, ck.end_mark.index) :]
        close = vnode.end_mark.index - 1
        sep = ", " if vnode.value else ""
        return text[:close] + f"{sep}calibration: {one_line}" + text[close:]
    if cal_item is not None:
        ck, cv = cal_item
        end = _content_end(cv, text, ck.end_mark.index)
        return text[: ck.end_mark.index] + f": {_flow(cal, ck.start_mark.column + 2, nl)}" + text[end:]
    end = _line_end(text, _content_end(vnode, text, vkey.end_mark.index))
    col = vnode.value[0][0].start_mark.column
    return text[:end] + f"{nl}{' ' * col}calibration: {_flow(cal, col + 2, nl)}" + text[end:]
