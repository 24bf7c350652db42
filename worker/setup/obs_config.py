"""Reading and changing OBS's configuration files: the user INI, the scene collections, the backup ledger.

Everything here works on text and dicts (no OBS, no processes), so it is testable anywhere.
Edits keep the rest of a file as it was: the INI setter touches one line, and a collection is
re-serialised in OBS's own style (compact JSON when OBS wrote it compact).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from worker.errors import UserError

SCRIPT_FILE = "stream_animator.py"
SCRIPTS_MODULE = "scripts-tool"
BROWSER_SOURCE_NAME = "Animated Character (Browser)"  # added by `obs-setup --browser-source`
SOURCE_NAMES = ("Animated Character", "Animated Character (Spout)", BROWSER_SOURCE_NAME)  # ours
SOURCE_IDS = ("ffmpeg_source", "spout_capture", "browser_source")
WORKER_PYTHON_KEY = "worker_python"  # obs_script/stream_animator_lib/settings.py ScriptSettings field
LEDGER_DIR = "stream-animator-setup"
LEDGER_FORMAT = 1
BOM = "\ufeff"


# ---------------------------------------------------------------- INI (OBS's config_t files)


def _split_lines(text: str) -> tuple[list[str], str]:
    newline = "\r\n" if "\r\n" in text else "\n"
    lines = text.split(newline)
    return lines, newline


def ini_get(text: str, section: str, key: str) -> str | None:
    """The value of `key` in `[section]`, or None."""
    current = None
    for line in _split_lines(text.lstrip(BOM))[0]:
        s = line.strip()
        if s.startswith("[") and s.endswith("]"):
            current = s[1:-1]
        elif current == section and "=" in s:
            k, _, v = s.partition("=")
            if k.strip() == key:
                return v.strip()
    return None


def ini_set(text: str, section: str, key: str, value: str | None) -> str:
    """`text` with `key` in `[section]` set to `value` (None removes it); every other byte kept."""
    bom = BOM if text.startswith(BOM) else ""
    lines, newline = _split_lines(text[len(bom) :])
    current, section_end, found = None, None, None
    for i, line in enumerate(lines):
        s = line.strip()
        if s.startswith("[") and s.endswith("]"):
            if current == section and section_end is None:
                section_end = i
            current = s[1:-1]
            if current == section:
                section_end = None
        elif current == section and "=" in s and s.partition("=")[0].strip() == key:
            found = i
    if current == section and section_end is None:
        section_end = len(lines)
    if section_end is not None:  # insert after the section's last entry, before its blank lines
        while section_end > 0 and lines[section_end - 1].strip() == "":
            section_end -= 1
    if found is not None:
        if value is None:
            del lines[found]
        else:
            lines[found] = f"{key}={value}"
    elif value is not None:
        if section_end is not None:
            lines.insert(section_end, f"{key}={value}")
        else:
            while lines and lines[-1] == "":
                lines.pop()
            if lines:
                lines.append("")
            lines += [f"[{section}]", f"{key}={value}", ""]
    return bom + newline.join(lines)


# ---------------------------------------------------------------- where things are


def user_ini(config_dir: Path) -> Path:
    """The INI holding [Basic] and [Python]: user.ini from OBS 31 on, global.ini before."""
    user = config_dir / "user.ini"
    return user if user.is_file() else config_dir / "global.ini"


def read_text(path: Path) -> str:
    return path.read_bytes().decode("utf-8", errors="surrogateescape")


@dataclass(frozen=True)
class Collection:
    name: str  # as OBS shows it
    path: Path


def collections(config_dir: Path) -> list[Collection]:
    out = []
    for p in sorted((config_dir / "basic" / "scenes").glob("*.json")):
        try:
            data = json.loads(read_text(p))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            out.append(Collection(str(data.get("name") or p.stem), p))
    return out


def damaged_collections(config_dir: Path) -> list[Path]:
    """Scene collection files that are not a JSON object (cut short by a crash, a full disk)."""
    out = []
    for p in sorted((config_dir / "basic" / "scenes").glob("*.json")):
        try:
            ok = isinstance(json.loads(read_text(p)), dict)
        except (OSError, ValueError):
            ok = False
        if not ok:
            out.append(p)
    return out


def repair_advice(path: Path) -> str:
    """What brings a damaged collection back: OBS's own backup beside it, else starting it afresh."""
    bak = path.with_name(path.name + ".bak")
    try:
        usable = isinstance(json.loads(read_text(bak)), dict)
    except (OSError, ValueError):
        usable = False
    if usable:
        return f"close OBS, copy OBS's backup {bak.name} over {path.name} (same folder), then run obs-setup again"
    return (
        f"close OBS and move {path.name} out of {path.parent} (OBS then starts that collection empty), "
        "then run obs-setup again"
    )


def find_collection(config_dir: Path, name: str | None) -> Collection:
    """The collection called `name` (its shown name or file name), else OBS's current one."""
    found = collections(config_dir)
    if name:
        for c in found:
            if name in (c.name, c.path.stem):
                return c
        names = ", ".join(repr(c.name) for c in found) or "none"
        raise UserError(f"--collection {name!r}: no such scene collection in {config_dir} (there are: {names})")
    ini = user_ini(config_dir)
    try:
        current = ini_get(read_text(ini), "Basic", "SceneCollectionFile")
    except OSError:
        current = None
    if current:
        path = config_dir / "basic" / "scenes" / f"{current}.json"
        for c in found:
            if c.path == path:
                return c
        if path.is_file():  # unreadable: the caller's parse names the file
            return Collection(current, path)
        # OBS would start a new empty collection under that name: registering elsewhere would not load
        names = ", ".join(repr(c.name) for c in found) or "none"
        raise UserError(
            f"{ini}: OBS's current scene collection {current!r} has no file ({path}); start OBS once "
            f"and close it, or choose one with --collection (there are: {names})"
        )
    if len(found) == 1:
        return found[0]
    if not found:
        raise UserError(
            f"{config_dir}: OBS has no scene collection yet: start OBS once, close it, "
            "then run `stream-animator obs-setup` again"
        )
    names = ", ".join(repr(c.name) for c in found)
    raise UserError(f"{ini}: no current scene collection recorded; choose one with --collection ({names})")


# ---------------------------------------------------------------- the collection's script entry


def is_our_script(path: str) -> bool:
    p = path.replace("\\", "/").rstrip("/")
    return p.endswith("/obs_script/" + SCRIPT_FILE)


def script_entries(data: dict) -> list[dict]:
    modules = data.get("modules")
    entries = modules.get(SCRIPTS_MODULE) if isinstance(modules, dict) else None
    return [e for e in entries or [] if isinstance(e, dict) and is_our_script(str(e.get("path", "")))]


def register_script(data: dict, script_path: str, settings: dict) -> dict:
    """`data` (a parsed collection) with our script registered and `settings` merged into its own."""
    modules = data.setdefault("modules", {})
    if not isinstance(modules, dict):
        raise UserError("the scene collection's 'modules' is not an object")
    entries = modules.setdefault(SCRIPTS_MODULE, [])
    if not isinstance(entries, list):
        raise UserError(f"the scene collection's 'modules.{SCRIPTS_MODULE}' is not a list")
    ours = [e for e in entries if isinstance(e, dict) and is_our_script(str(e.get("path", "")))]
    if ours:
        entry = ours[0]
        for extra in ours[1:]:  # one script, once: OBS would load duplicates twice
            entries.remove(extra)
    else:
        entry = {}
        entries.append(entry)
    entry["path"] = script_path
    old = entry.get("settings")
    merged: dict = old if isinstance(old, dict) else {}
    merged.update(settings)
    entry["settings"] = merged
    return data


def unregister_script(data: dict) -> dict:
    """`data` without our script entry and without the source the script created."""
    modules = data.get("modules")
    if isinstance(modules, dict) and isinstance(modules.get(SCRIPTS_MODULE), list):
        modules[SCRIPTS_MODULE] = [
            e for e in modules[SCRIPTS_MODULE] if not (isinstance(e, dict) and is_our_script(str(e.get("path", ""))))
        ]
    sources = data.get("sources")
    if isinstance(sources, list):
        ours = {
            s.get("name")
            for s in sources
            if isinstance(s, dict) and s.get("name") in SOURCE_NAMES and s.get("id") in SOURCE_IDS
        }
        data["sources"] = [s for s in sources if not (isinstance(s, dict) and s.get("name") in ours)]
        for s in data["sources"]:
            items = (s.get("settings") or {}).get("items") if isinstance(s, dict) else None
            if isinstance(items, list):
                s["settings"]["items"] = [i for i in items if not (isinstance(i, dict) and i.get("name") in ours)]
    return data


def add_browser_source(data: dict, url: str, width: int, height: int, fps: int = 30) -> tuple[dict, str]:
    """`data` with a Browser Source showing `url` (the ws output's page) in the current scene, and
    that scene's name. Idempotent: an existing one (by name) gets the new address; its place,
    size and filters in the scene are kept. Its audio goes to OBS's mixer (lines the character says)."""
    sources = data.setdefault("sources", [])
    if not isinstance(sources, list):
        raise UserError("the scene collection's 'sources' is not a list")
    scene_name = data.get("current_scene") or data.get("current_program_scene")
    scenes = [s for s in sources if isinstance(s, dict) and s.get("id") == "scene"]
    scene = next((s for s in scenes if s.get("name") == scene_name), scenes[0] if scenes else None)
    if scene is None:
        raise UserError("the scene collection has no scene: add one in OBS, close it, then run obs-setup again")
    settings = {
        "url": url,
        "width": int(width),
        "height": int(height),
        "fps_custom": True,
        "fps": int(fps),
        "reroute_audio": True,  # the page's sound (`say`) into OBS's mixer, not the desktop
        "shutdown": False,  # keep the page (and its socket) when the source is hidden
        "restart_when_active": False,
        "css": "",  # OBS's default CSS paints no background either; empty keeps it transparent for sure
    }
    ours = next((s for s in sources if isinstance(s, dict) and s.get("name") == BROWSER_SOURCE_NAME), None)
    if ours is None:
        ours = {
            "id": "browser_source",
            "versioned_id": "browser_source",
            "name": BROWSER_SOURCE_NAME,
            "enabled": True,
            "mixers": 255,
            "monitoring_type": 0,
            "settings": {},
        }
        sources.append(ours)
    old = ours.get("settings")
    ours["settings"] = {**(old if isinstance(old, dict) else {}), **settings}
    scene_settings = scene.setdefault("settings", {})
    items = scene_settings.setdefault("items", [])
    if not any(isinstance(i, dict) and i.get("name") == BROWSER_SOURCE_NAME for i in items):
        n = int(scene_settings.get("id_counter") or 0) + 1
        scene_settings["id_counter"] = n
        items.append(
            {
                "name": BROWSER_SOURCE_NAME,
                "id": n,
                "visible": True,
                "locked": False,
                "rot": 0.0,
                "pos": {"x": 0.0, "y": 0.0},
                "scale": {"x": 1.0, "y": 1.0},
                "align": 5,
                "bounds_type": 0,
                "bounds_align": 0,
                "bounds": {"x": 0.0, "y": 0.0},
            }
        )
    return data, str(scene.get("name"))


def dump_collection(data: dict, like: str) -> str:
    """JSON in the style of `like` (OBS 29 writes compact JSON; later versions indent)."""
    if "\n" in like.strip():
        return json.dumps(data, indent=4, ensure_ascii=False)
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def parse_collection(path: Path, text: str) -> dict:
    try:
        data = json.loads(text)
    except ValueError as e:
        raise UserError(f"{path}: damaged scene collection, not valid JSON ({e}): {repair_advice(path)}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: damaged scene collection, not a JSON object: {repair_advice(path)}")
    return data


# ---------------------------------------------------------------- files, backups, the ledger


def sha256(data: bytes | None) -> str | None:
    return None if data is None else hashlib.sha256(data).hexdigest()


def write_atomic(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write `data` to `path` through a temporary file, keeping `path`'s permissions (or `mode`).
    An OSError names `path` itself (not the temporary file), and leaves no temporary file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if mode is None and path.exists():
            mode = path.stat().st_mode & 0o7777
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as e:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise OSError(e.errno, e.strerror or str(e), str(path)) from None


class Ledger:
    """What obs-setup changed: each file's original bytes (backed up once) and its bytes after."""

    def __init__(self, config_dir: Path):
        self.config_dir = config_dir
        self.dir = config_dir / LEDGER_DIR
        self.path = self.dir / "ledger.json"
        self.files: dict[str, dict] = {}
        self.notes: dict = {}
        # this run's journal, for rollback(): each file's bytes before this run, the backups it made
        self._before: dict[Path, bytes | None] = {}
        self._new_backups: list[Path] = []
        self._dir_existed = self.dir.is_dir()
        self._ledger_before = self.path.read_bytes() if self.path.is_file() else None
        if self.path.is_file():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                assert data.get("format") == LEDGER_FORMAT
                self.files, self.notes = dict(data["files"]), dict(data.get("notes", {}))
            except (OSError, ValueError, AssertionError, KeyError, TypeError):
                raise UserError(
                    f"{self.path}: unreadable setup record; restore from the backups beside it "
                    "by hand or delete the folder"
                ) from None

    @property
    def exists(self) -> bool:
        return bool(self.files)

    def rel(self, path: Path) -> str:
        return path.relative_to(self.config_dir).as_posix()

    def change(self, path: Path, new: bytes) -> bool:
        """Write `new` to `path`, backing up what was there first (once). False when unchanged."""
        old = path.read_bytes() if path.exists() else None
        if old == new:
            return False
        rel = self.rel(path)
        self._before.setdefault(path, old)
        if rel not in self.files:
            backup = rel.replace("/", "__") + ".orig"
            if old is not None:
                self._new_backups.append(self.dir / backup)
                write_atomic(self.dir / backup, old)
            self.files[rel] = {"existed": old is not None, "backup": backup, "sha256_before": sha256(old)}
        write_atomic(path, new)
        self.files[rel]["sha256_after"] = sha256(new)
        self.save()
        return True

    def save(self) -> None:
        data = {"format": LEDGER_FORMAT, "files": self.files, "notes": self.notes}
        write_atomic(self.path, (json.dumps(data, indent=2) + "\n").encode())

    def original(self, rel: str) -> bytes | None:
        rec = self.files[rel]
        return (self.dir / rec["backup"]).read_bytes() if rec["existed"] else None

    def rollback(self) -> list[str]:
        """Undo this run's writes (after a step failed half-way): each file back to its bytes before
        the run, this run's backups and a new ledger removed. Returns what could not be put back."""
        stuck = []
        for path, old in self._before.items():
            try:
                if old is None:
                    path.unlink(missing_ok=True)
                elif path.read_bytes() != old:
                    write_atomic(path, old)
            except OSError:
                stuck.append(str(path))
        for backup in self._new_backups:
            try:
                backup.unlink(missing_ok=True)
            except OSError:
                stuck.append(str(backup))
        try:
            if self._ledger_before is None:
                self.path.unlink(missing_ok=True)
            elif self.path.read_bytes() != self._ledger_before:
                write_atomic(self.path, self._ledger_before)
            if not self._dir_existed and self.dir.is_dir():
                self.dir.rmdir()
        except OSError:
            stuck.append(str(self.path))
        return stuck

    def remove(self) -> None:
        for rec in self.files.values():
            (self.dir / rec["backup"]).unlink(missing_ok=True)
        self.path.unlink(missing_ok=True)
        try:
            self.dir.rmdir()
        except OSError:
            pass
        self.files = {}
