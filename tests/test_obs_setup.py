"""obs-setup's logic without OBS: where OBS keeps its files per OS, which Python OBS can embed
(Windows/macOS), INI and collection edits that keep every other byte, and backup/undo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from worker.errors import UserError
from worker.setup import obs_config, obs_paths, obs_process, obs_registration

REPO = Path(__file__).resolve().parents[1]

# global.ini and the collection exactly as OBS 29 wrote them on its first start here (trimmed)
FRESH_INI = (
    "[General]\nPre19Defaults=false\nFirstRun=true\nLastVersion=486539266\n\n[Basic]\nProfile=Untitled\n"
    "ProfileDir=Untitled\nSceneCollection=Untitled\nSceneCollectionFile=Untitled\n\n[BasicWindow]\n"
    "gridMode=false\n\n[OBSWebSocket]\nFirstLoad=false\nServerEnabled=false\n"
)
FRESH_COLLECTION = {
    "current_program_scene": "Scene",
    "current_scene": "Scene",
    "groups": [],
    "modules": {"output-timer": {"autoStartRecordTimer": False}, "scripts-tool": []},
    "name": "Untitled",
    "scene_order": [{"name": "Scene"}],
    "sources": [
        {
            "id": "scene",
            "name": "Scene",
            "settings": {"custom_size": False, "id_counter": 0, "items": []},
            "versioned_id": "scene",
        }
    ],
}


def make_obs_config(root: Path, ini: str = FRESH_INI, name: str = "Untitled") -> Path:
    cfg = root / "obs-studio"
    (cfg / "basic" / "scenes").mkdir(parents=True)
    (cfg / "global.ini").write_text(ini)
    (cfg / "basic" / "scenes" / f"{name}.json").write_text(json.dumps(FRESH_COLLECTION, separators=(",", ":")))
    return cfg


# ---------------------------------------------------------------- paths per OS


def test_config_dirs_per_os():
    assert obs_paths.obs_config_dirs("win32", {"APPDATA": r"C:\Users\ann\AppData\Roaming"}, r"C:\Users\ann") == [
        r"C:\Users\ann\AppData\Roaming\obs-studio"
    ]
    assert obs_paths.obs_config_dirs("win32", {}, r"C:\Users\ann") == [r"C:\Users\ann\AppData\Roaming\obs-studio"]
    assert obs_paths.obs_config_dirs("darwin", {}, "/Users/ann") == [
        "/Users/ann/Library/Application Support/obs-studio"
    ]
    assert obs_paths.obs_config_dirs("linux", {}, "/home/ann") == [
        "/home/ann/.config/obs-studio",
        "/home/ann/.var/app/com.obsproject.Studio/config/obs-studio",
    ]
    assert obs_paths.obs_config_dirs("linux", {"XDG_CONFIG_HOME": "/cfg"}, "/home/ann")[0] == "/cfg/obs-studio"


def test_config_dir_of_a_running_obs_from_its_environment():
    assert obs_paths.config_dir_of_process("linux", {"HOME": "/home/ann"}) == "/home/ann/.config/obs-studio"
    flatpak = {"HOME": "/home/ann", "FLATPAK_ID": "com.obsproject.Studio"}
    assert (
        obs_paths.config_dir_of_process("linux", flatpak)
        == "/home/ann/.var/app/com.obsproject.Studio/config/obs-studio"
    )
    assert obs_paths.config_dir_of_process("win32", {"APPDATA": r"D:\prof"}) == r"D:\prof\obs-studio"
    assert obs_paths.config_dir_of_process("linux", {}) is None


def _fs(*files: str):
    present = set(files)
    return lambda p: p in present


def test_windows_python_choice():
    env = {"LOCALAPPDATA": r"C:\Users\ann\AppData\Local"}
    home = r"C:\Users\ann"
    own = r"C:\Users\ann\AppData\Local\Programs\Python\Python311"
    exists = _fs(own + r"\python311.dll")
    # OBS has none: the Python the worker was installed with
    c = obs_paths.choose_obs_python("win32", "", own, env, home, exists)
    assert (c.folder, c.version, c.ok) == (own, "3.11", True) and "installed with" in c.message
    # a working setting is kept
    c = obs_paths.choose_obs_python("win32", own, own, env, home, exists)
    assert c.folder == "" and c.ok and "already set" in c.message
    # a broken setting is replaced, and the old value is named
    c = obs_paths.choose_obs_python("win32", r"C:\gone", own, env, home, exists)
    assert c.folder == own and "C:\\\\gone" in c.message
    # Store Python cannot be embedded: a python.org install elsewhere is found instead
    store = r"C:\Program Files\WindowsApps\PythonSoftwareFoundation.Python.3.12_3.12.1_x64__qbz5n2kfra8p0"
    other = r"C:\Program Files\Python312"
    c = obs_paths.choose_obs_python("win32", "", store, env, home, _fs(other + r"\python312.dll"))
    assert (c.folder, c.version) == (other, "3.12") and "found installed" in c.message
    # nothing at all: what to install
    c = obs_paths.choose_obs_python("win32", "", store, env, home, _fs())
    assert not c.ok and c.folder == "" and "python.org/downloads/windows" in c.message and "Store" in c.message


def test_no_python_for_obs_registers_and_says_what_to_install(tmp_path, monkeypatch):
    cfg = make_obs_config(tmp_path)
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "nowhere"))
    monkeypatch.setenv("ProgramFiles", str(tmp_path / "nowhere"))
    rep = obs_registration.apply(
        cfg, REPO, "C:/v/Scripts/python.exe", base_prefix=str(tmp_path / "nopy"), platform="win32", check_running=False
    )
    assert not rep.ok and "OBS cannot run it yet" in rep.problem and "python.org/downloads/windows" in rep.problem
    assert obs_config.script_entries(json.loads((cfg / "basic" / "scenes" / "Untitled.json").read_text()))
    assert obs_config.ini_get((cfg / "global.ini").read_text(), "Python", "Path64bit") is None


def test_macos_python_choice():
    home = "/Users/ann"
    base = "/Library/Frameworks/Python.framework/Versions/3.12"
    lib = "/Library/Frameworks/Python.framework/Versions/3.12/lib/libpython3.12.dylib"
    c = obs_paths.choose_obs_python("darwin", "", base, {}, home, _fs(lib))
    assert (c.folder, c.version) == ("/Library/Frameworks", "3.12")  # OBS wants the folder holding the framework
    brew = "/opt/homebrew/opt/python@3.11/Frameworks"
    brew_lib = brew + "/Python.framework/Versions/3.11/lib/libpython3.11.dylib"
    pyenv = "/Users/ann/.pyenv/versions/3.11.7"  # not a framework build: OBS cannot load it
    assert obs_paths.obs_folder_for_python("darwin", pyenv) is None
    cellar = "/opt/homebrew/Cellar/python@3.11/3.11.9_1/Frameworks/Python.framework/Versions/3.11"
    assert obs_paths.obs_folder_for_python("darwin", cellar) == brew  # survives `brew upgrade`
    c = obs_paths.choose_obs_python("darwin", "", pyenv, {}, home, _fs(brew_lib))
    assert (c.folder, c.version) == (brew, "3.11")
    c = obs_paths.choose_obs_python("darwin", "", pyenv, {}, home, _fs())
    assert not c.ok and "python.org/downloads/macos" in c.message
    # a Python newer than OBS can embed is not chosen
    assert obs_paths.python_obs_would_load("darwin", "/Library/Frameworks", _fs(lib.replace("3.12", "3.13"))) is None


def test_linux_needs_no_python_setting():
    c = obs_paths.choose_obs_python("linux", "", "/usr", {}, "/home/ann", _fs())
    assert c.ok and c.folder == "" and "system's Python" in c.message


# ---------------------------------------------------------------- INI and collection edits


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_ini_set_touches_one_line(newline):
    text = "\ufeff" + FRESH_INI.replace("\n", newline)
    added = obs_config.ini_set(text, "Python", "Path64bit", r"C:\Py311")
    assert added.startswith("\ufeff" + FRESH_INI.replace("\n", newline).rstrip(newline))
    assert obs_config.ini_get(added, "Python", "Path64bit") == r"C:\Py311"
    assert added.endswith(f"[Python]{newline}Path64bit=C:\\Py311{newline}")
    changed = obs_config.ini_set(added, "Python", "Path64bit", r"D:\Py312")
    assert changed == added.replace(r"C:\Py311", r"D:\Py312")
    in_section = obs_config.ini_set(text, "Basic", "Extra", "1")
    assert f"SceneCollectionFile=Untitled{newline}Extra=1{newline}{newline}[BasicWindow]" in in_section
    assert obs_config.ini_set(in_section, "Basic", "Extra", None) == text


def test_register_then_unregister_script():
    data = json.loads(json.dumps(FRESH_COLLECTION))
    obs_config.register_script(data, "/x/obs_script/stream_animator.py", {"worker_python": "/x/.venv/bin/python"})
    obs_config.register_script(data, "/y/obs_script/stream_animator.py", {"worker_python": "/y/.venv/bin/python"})
    (entry,) = obs_config.script_entries(data)  # a moved checkout replaces the entry, never duplicates it
    assert entry == {"path": "/y/obs_script/stream_animator.py", "settings": {"worker_python": "/y/.venv/bin/python"}}
    # what the script adds when OBS runs: its source, in a scene
    data["sources"].append({"id": "ffmpeg_source", "name": "Animated Character", "settings": {}})
    data["sources"][0]["settings"]["items"].append({"name": "Animated Character", "id": 1})
    data["sources"].append({"id": "image_source", "name": "Animated Character copy", "settings": {}})
    obs_config.unregister_script(data)
    assert obs_config.script_entries(data) == []
    assert [s["name"] for s in data["sources"]] == ["Scene", "Animated Character copy"]
    assert data["sources"][0]["settings"]["items"] == []


def test_bad_collection_is_one_line(tmp_path):
    cfg = make_obs_config(tmp_path)
    (cfg / "basic" / "scenes" / "Untitled.json").write_text("{not json")
    with pytest.raises(UserError, match=r"Untitled.json: damaged scene collection, not valid JSON"):
        obs_registration.apply(cfg, REPO, "/v/bin/python", check_running=False)


def test_choosing_the_collection(tmp_path):
    cfg = make_obs_config(tmp_path)
    (cfg / "basic" / "scenes" / "Other.json").write_text(json.dumps({**FRESH_COLLECTION, "name": "My Show"}))
    assert obs_config.find_collection(cfg, None).name == "Untitled"  # the current one, from global.ini
    assert obs_config.find_collection(cfg, "My Show").path.name == "Other.json"
    (cfg / "user.ini").write_text("[Basic]\nSceneCollectionFile=Other\n")  # OBS 31+ keeps it there
    assert obs_config.find_collection(cfg, None).name == "My Show"
    with pytest.raises(UserError, match=r"--collection 'Nope': no such scene collection .*'My Show'"):
        obs_config.find_collection(cfg, "Nope")
    empty = tmp_path / "empty"
    (empty / "basic" / "scenes").mkdir(parents=True)
    with pytest.raises(UserError, match="start OBS once"):
        obs_config.find_collection(empty, None)


# ---------------------------------------------------------------- apply / undo (Windows layout)


def test_windows_setup_sets_obs_python_and_undo_restores_bytes(tmp_path, monkeypatch):
    ini = FRESH_INI.replace("\n", "\r\n")
    cfg = make_obs_config(tmp_path, "\ufeff" + ini)
    before = {p: p.read_bytes() for p in (cfg / "global.ini", cfg / "basic" / "scenes" / "Untitled.json")}
    own = str(tmp_path / "Python311")
    # Windows paths joined on Linux: "<own>\\python311.dll" is one file name here, which is what is checked
    Path(own + "\\python311.dll").write_bytes(b"")
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "nowhere"))
    rep = obs_registration.apply(
        cfg, REPO, "C:/w/.venv/Scripts/python.exe", base_prefix=own, platform="win32", check_running=False
    )
    assert rep.ok and any("OBS's Python set to" in line and "Python 3.11" in line for line in rep.lines)
    text = (cfg / "global.ini").read_bytes().decode("utf-8")
    assert obs_config.ini_get(text, "Python", "Path64bit") == own and "\r\n" in text
    entry = obs_config.script_entries(json.loads((cfg / "basic" / "scenes" / "Untitled.json").read_text()))[0]
    assert "\\" not in entry["path"] and entry["path"].endswith("/obs_script/stream_animator.py")
    # second run: nothing to do
    again = obs_registration.apply(
        cfg, REPO, "C:/w/.venv/Scripts/python.exe", base_prefix=own, platform="win32", check_running=False
    )
    assert again.changed == [] and "already set" in " ".join(again.lines)
    undo = obs_registration.undo(cfg, check_running=False)
    assert len(undo.changed) == 2
    assert {p: p.read_bytes() for p in before} == before


def test_undo_after_obs_changed_the_ini_puts_back_only_the_python_setting(tmp_path):
    cfg = make_obs_config(tmp_path)
    own = tmp_path / "fw"
    lib = own / "Python.framework" / "Versions" / "3.12" / "lib"
    lib.mkdir(parents=True)
    (lib / "libpython3.12.dylib").write_bytes(b"")
    obs_registration.apply(
        cfg,
        REPO,
        sys.executable,
        base_prefix=str(own / "Python.framework/Versions/3.12"),
        platform="darwin",
        check_running=False,
    )
    ini = cfg / "global.ini"
    ini.write_text(ini.read_text() + "[ScriptLogWindow]\ngeometry=abc\n")  # OBS saved its window on exit
    obs_registration.undo(cfg, check_running=False)
    text = ini.read_text()
    assert obs_config.ini_get(text, "Python", "Path64bit") is None
    assert obs_config.ini_get(text, "ScriptLogWindow", "geometry") == "abc"


def test_unsupported_camera_and_missing_config_are_one_line(tmp_path, monkeypatch):
    cfg = make_obs_config(tmp_path)
    with pytest.raises(UserError, match="--camera nope.mp4: neither webcam:N nor an existing video file"):
        obs_registration.apply(cfg, REPO, "/v/bin/python", camera="nope.mp4", check_running=False)
    monkeypatch.setenv("HOME", str(tmp_path / "nohome"))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    proc = subprocess.run(
        [sys.executable, "-m", "worker", "obs-setup"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        env=dict(os.environ, HOME=str(tmp_path / "nohome")),
    )
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "OBS's configuration was not found" in proc.stderr and "start it once" in proc.stderr


# ---------------------------------------------------------------- is OBS running on this configuration?


def test_running_obs_is_matched_by_its_configuration(tmp_path):
    """A process named `obs` with HOME=tmp counts for tmp's configuration only (other OBSes on this
    machine, e.g. other tests', use other HOMEs and must not block setup)."""
    fake = tmp_path / "bin" / "obs"
    fake.parent.mkdir()
    os.symlink(sys.executable, fake)  # a process whose name is "obs"
    home = tmp_path / "home"
    proc = subprocess.Popen(
        [str(fake), "-c", "import time; time.sleep(30)"], env={"HOME": str(home), "PATH": os.environ.get("PATH", "")}
    )
    try:
        deadline = time.monotonic() + 10
        mine = home / ".config" / "obs-studio"
        while not [p for p in obs_process.running_obs(mine) if p.pid == proc.pid]:
            assert time.monotonic() < deadline, "the fake OBS was not seen"
            time.sleep(0.1)
        assert not [p for p in obs_process.running_obs(tmp_path / "other" / "obs-studio") if p.pid == proc.pid]
        with pytest.raises(UserError, match=rf"OBS is running \(pid .*{proc.pid}.*\): close OBS first"):
            obs_registration.refuse_if_running(mine)
    finally:
        proc.kill()
        proc.wait()


def test_native_and_flatpak_obs_the_one_used_last_is_chosen(tmp_path, monkeypatch):
    home = tmp_path / "home"
    native = make_obs_config(home / ".config")
    flatpak = make_obs_config(home / ".var" / "app" / "com.obsproject.Studio" / "config")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    os.utime(native / "global.ini", (1_000_000, 1_000_000))
    assert obs_registration.find_config_dir(None, "linux") == flatpak
    os.utime(flatpak / "global.ini", (500_000, 500_000))
    assert obs_registration.find_config_dir(None, "linux") == native


def test_the_settings_setup_writes_are_the_scripts_own_keys(tmp_path):
    """obs-setup fills in settings the OBS script reads: its ScriptSettings fields, same names."""
    import dataclasses
    import importlib

    # the script's own package, imported the way OBS does (its folder on sys.path)
    sys.path.insert(0, str(REPO / "obs_script"))
    try:
        module = importlib.import_module("stream_animator_lib.settings")
    finally:
        sys.path.remove(str(REPO / "obs_script"))
    fields = {f.name for f in dataclasses.fields(module.ScriptSettings)}
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"")
    written = obs_registration.script_settings(sys.executable, camera=str(video), characters=str(tmp_path))
    assert set(written) <= fields, set(written) - fields
    s = module.ScriptSettings.from_reader(lambda name, default: written.get(name, default))
    assert (s.worker_python, s.camera, s.video_file, s.characters_dir) == (
        sys.executable,
        "file",
        str(video),
        str(tmp_path),
    )
    assert s.problems() == []
