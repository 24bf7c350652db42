"""`obs-setup`: register the OBS script in a scene collection (and OBS's Python), and undo it exactly.

`apply()` backs up each file before its first change (see `Ledger`), so `undo()` can put back
the original bytes. When OBS has saved a file since (it re-saves the collection on every exit),
its original cannot be restored without losing the user's later edits: then only what setup
added is removed (the script entry and the source the script created; the Python setting if it
still holds what setup wrote).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from worker.errors import UserError, os_reason
from worker.setup import obs_config, obs_paths
from worker.setup.obs_process import running_obs


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    ok: bool = True
    problem: str = ""  # why not ok: one line for the user

    def say(self, text: str) -> None:
        self.lines.append(text)


def find_config_dir(explicit: str | None = None, platform: str = sys.platform) -> Path:
    """OBS's configuration folder: `explicit`, else the first of this OS's places that exists."""
    if explicit:
        p = Path(explicit).expanduser()
        if not p.is_dir():
            raise UserError(f"--obs-config {p}: no such folder")
        return p
    candidates = [Path(c) for c in obs_paths.obs_config_dirs(platform, os.environ, str(Path.home()))]
    found = [c for c in candidates if (c / "global.ini").is_file() or (c / "basic").is_dir()]
    if found:
        # both a native and a Flatpak OBS: the one used last (its INI is saved on every exit)
        return max(found, key=lambda c: _mtime(obs_config.user_ini(c)))
    shown = " or ".join(str(c) for c in candidates)
    raise UserError(
        f"OBS's configuration was not found ({shown}): install OBS Studio 28 or newer, start it once "
        "and close it, then run `stream-animator obs-setup` again"
    )


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def refuse_if_running(config_dir: Path) -> None:
    procs = running_obs(config_dir)
    if procs:
        pids = ", ".join(str(p.pid) for p in procs)
        raise UserError(
            f"OBS is running (pid {pids}): close OBS first, then run this again "
            "(OBS rewrites its configuration when it exits)"
        )


def script_path(repo: Path, platform: str = sys.platform) -> str:
    script = repo / "obs_script" / obs_config.SCRIPT_FILE
    if not script.is_file():
        raise UserError(f"{script}: the OBS script is missing (obs-setup needs a checkout of Stream Motion Animator)")
    text = str(script.resolve())
    # OBS on Windows stores paths with forward slashes (as its file dialog returns them)
    return text.replace("\\", "/") if obs_paths.os_kind(platform) == "windows" else text


def script_settings(worker_python: str, camera: str | None = None, characters: str | None = None) -> dict:
    """The script's settings setup fills in (key names are ScriptSettings fields)."""
    s = {obs_config.WORKER_PYTHON_KEY: worker_python}
    if camera:
        if camera.startswith("webcam:"):
            s["camera"] = camera
        else:
            video = Path(camera).expanduser()
            if not video.is_file():
                raise UserError(f"--camera {camera}: neither webcam:N nor an existing video file")
            s.update(camera="file", video_file=str(video.resolve()))
    if characters:
        folder = Path(characters).expanduser()
        if not folder.is_dir():
            raise UserError(f"--characters {characters}: no such folder")
        s["characters_dir"] = str(folder.resolve())
    return s


def apply(
    config_dir: Path,
    repo: Path,
    worker_python: str,
    collection: str | None = None,
    camera: str | None = None,
    characters: str | None = None,
    base_prefix: str = sys.base_prefix,
    platform: str = sys.platform,
    check_running: bool = True,
) -> Report:
    rep = Report()
    if check_running:
        refuse_if_running(config_dir)
    coll = obs_config.find_collection(config_dir, collection)
    settings = script_settings(worker_python, camera, characters)
    ledger = obs_config.Ledger(config_dir)
    try:
        return _apply(rep, ledger, config_dir, coll, repo, worker_python, settings, base_prefix, platform)
    except OSError as e:  # a step failed half-way: put back what this run wrote, then say which file
        raise UserError(_write_failure(e, _rolled_back(ledger), "obs-setup")) from None


def _rolled_back(ledger: obs_config.Ledger) -> str:
    """Undo this run's writes; what the user is told about it."""
    stuck = ledger.rollback()
    if stuck:
        return f"could not put back {', '.join(stuck)} (the originals are in {ledger.dir})"
    return "OBS's configuration is as it was before"


def _write_failure(e: OSError, kept: str, what: str) -> str:
    target = Path(e.filename) if e.filename else None
    if target is None:
        where = "cannot write"
    elif target.parent.is_dir():
        where = f"{target.parent}: cannot write {target.name} there"
    else:  # the backup folder could not be made
        where = f"{target.parent.parent}: cannot make the folder {target.parent.name} there"
    return f"{where} ({os_reason(e)}); {kept}; make the folder writable (and close OBS), then run {what} again"


def _apply(
    rep: Report,
    ledger: obs_config.Ledger,
    config_dir: Path,
    coll: obs_config.Collection,
    repo: Path,
    worker_python: str,
    settings: dict,
    base_prefix: str,
    platform: str,
) -> Report:
    text = obs_config.read_text(coll.path)
    data = obs_config.parse_collection(coll.path, text)
    new = obs_config.dump_collection(obs_config.register_script(data, script_path(repo, platform), settings), text)
    if new == text or obs_config.parse_collection(coll.path, new) == obs_config.parse_collection(coll.path, text):
        rep.say(f"Scene collection '{coll.name}': the script is already registered ({coll.path})")
    else:
        ledger.change(coll.path, new.encode("utf-8", errors="surrogateescape"))
        ledger.notes["collection"] = coll.name
        ledger.notes["script"] = script_path(repo, platform)  # whose registration it is (see undo)
        ledger.save()
        rep.changed.append(str(coll.path))
        rep.say(
            f"Scene collection '{coll.name}': registered {script_path(repo, platform)} "
            f"with worker Python {worker_python} ({coll.path})"
        )

    ini = obs_config.user_ini(config_dir)
    ini_text = obs_config.read_text(ini) if ini.is_file() else ""
    current = obs_config.ini_get(ini_text, obs_paths.PYTHON_SECTION, obs_paths.PYTHON_KEY) or ""
    choice = obs_paths.choose_obs_python(platform, current, base_prefix, os.environ, str(Path.home()), os.path.exists)
    if choice.folder:
        new_ini = obs_config.ini_set(ini_text, obs_paths.PYTHON_SECTION, obs_paths.PYTHON_KEY, choice.folder)
        ledger.change(ini, new_ini.encode("utf-8", errors="surrogateescape"))
        ledger.notes["python"] = {"set": choice.folder, "previous": current or None, "ini": ledger.rel(ini)}
        ledger.save()
        rep.changed.append(str(ini))
    if choice.ok:
        rep.say(choice.message)
    else:
        rep.ok, rep.problem = False, f"the script is registered, but OBS cannot run it yet: {choice.message}"
    if obs_paths.FLATPAK_ID in config_dir.parts:
        rep.say(
            "Note: this is the Flatpak OBS, which runs scripts inside its sandbox; if the worker does not "
            "start there, use your distribution's obs-studio package (untested with the Flatpak)"
        )
    if rep.changed:
        rep.say(f"Backups of the original files: {ledger.dir} (undo with `stream-animator obs-setup --undo`)")
    rep.say("Start OBS: the script loads and the 'Animated Character' source appears in the current scene")
    return rep


def apply_browser_source(
    config_dir: Path,
    url: str,
    collection: str | None = None,
    size: int = 512,
    check_running: bool = True,
) -> Report:
    """Add the ws output's page to the collection's current scene as a Browser Source (for an OBS
    without Python). Backed up like `apply`; `undo` removes it."""
    rep = Report()
    if check_running:
        refuse_if_running(config_dir)
    coll = obs_config.find_collection(config_dir, collection)
    ledger = obs_config.Ledger(config_dir)
    text = obs_config.read_text(coll.path)
    data, scene = obs_config.add_browser_source(obs_config.parse_collection(coll.path, text), url, size, size)
    new = obs_config.dump_collection(data, text)
    if obs_config.parse_collection(coll.path, new) == obs_config.parse_collection(coll.path, text):
        rep.say(f"Scene collection '{coll.name}': the Browser Source is already there ({coll.path})")
    else:
        try:
            ledger.change(coll.path, new.encode("utf-8", errors="surrogateescape"))
            ledger.notes["collection"] = coll.name
            ledger.save()
        except OSError as e:  # put back what this run wrote, then say which folder
            raise UserError(_write_failure(e, _rolled_back(ledger), "obs-setup --browser-source")) from None
        rep.changed.append(str(coll.path))
        rep.say(
            f"Scene collection '{coll.name}': Browser Source '{obs_config.BROWSER_SOURCE_NAME}' in scene '{scene}' "
            f"({coll.path})"
        )
        rep.say(f"Backups of the original files: {ledger.dir} (undo with `stream-animator obs-setup --undo`)")
    rep.say(f"It shows {url.split('?')[0]} (the address stays the same across restarts)")
    rep.say("Start the worker with `stream-animator run --output ws` (or from your login autostart), then OBS")
    return rep


def registered_by(config_dir: Path, ledger: obs_config.Ledger) -> str | None:
    """The script path of the checkout whose registration the ledger records (None: unknown)."""
    if ledger.notes.get("script"):
        return str(ledger.notes["script"])
    name = ledger.notes.get("collection")
    for coll in obs_config.collections(config_dir):
        if name in (None, coll.name):
            entries = obs_config.script_entries(obs_config.parse_collection(coll.path, obs_config.read_text(coll.path)))
            if entries:
                return str(entries[0].get("path"))
    return None


def _same_file(a: str, b: str) -> bool:
    return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def undo(config_dir: Path, check_running: bool = True, repo: Path | None = None) -> Report:
    """Put back what obs-setup changed. With `repo` (the checkout asking), a registration that
    another copy of the checkout made, and whose script still exists, is left alone."""
    rep = Report()
    if check_running:
        refuse_if_running(config_dir)
    ledger = obs_config.Ledger(config_dir)
    if not ledger.exists:
        rep.say(f"Nothing to undo: obs-setup has not changed {config_dir}")
        return rep
    owner = registered_by(config_dir, ledger)
    if repo is not None and owner and Path(owner).is_file():
        mine = str(repo / "obs_script" / obs_config.SCRIPT_FILE)
        if not _same_file(owner, mine):
            rep.say(
                f"OBS's script registration belongs to another copy of Stream Motion Animator ({owner}): "
                "left as it is (run `stream-animator obs-setup --undo` from that copy to remove it)"
            )
            return rep
    try:
        _undo(rep, ledger, config_dir)
    except OSError as e:
        raise UserError(_write_failure(e, f"the backups are kept in {ledger.dir}", "obs-setup --undo")) from None
    return rep


def _undo(rep: Report, ledger: obs_config.Ledger, config_dir: Path) -> None:
    for rel, rec in sorted(ledger.files.items()):
        path = config_dir / rel
        now = path.read_bytes() if path.exists() else None
        if obs_config.sha256(now) == rec.get("sha256_after") or now == ledger.original(rel):
            original = ledger.original(rel)
            if original is None:
                path.unlink(missing_ok=True)
                rep.say(f"{path}: removed (it did not exist before setup)")
            else:
                obs_config.write_atomic(path, original)
                rep.say(f"{path}: restored exactly as it was before setup")
        elif now is None:
            rep.say(f"{path}: gone since setup, nothing to restore")
        elif rel.endswith(".json"):
            text = now.decode("utf-8", errors="surrogateescape")
            data = obs_config.unregister_script(obs_config.parse_collection(path, text))
            dumped = obs_config.dump_collection(data, text)
            obs_config.write_atomic(path, dumped.encode("utf-8", errors="surrogateescape"))
            rep.say(
                f"{path}: OBS saved it since setup, so only the script and its source were removed "
                "(your other changes are kept)"
            )
        else:
            py = ledger.notes.get("python") or {}
            text = now.decode("utf-8", errors="surrogateescape")
            if obs_config.ini_get(text, obs_paths.PYTHON_SECTION, obs_paths.PYTHON_KEY) == py.get("set"):
                text = obs_config.ini_set(text, obs_paths.PYTHON_SECTION, obs_paths.PYTHON_KEY, py.get("previous"))
                obs_config.write_atomic(path, text.encode("utf-8", errors="surrogateescape"))
                rep.say(f"{path}: OBS's Python setting put back to {py.get('previous') or 'none'}")
            else:
                rep.say(f"{path}: OBS's Python setting was changed since setup; left as it is")
        rep.changed.append(str(path))
    ledger.remove()
