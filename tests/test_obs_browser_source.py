"""`obs-setup --browser-source`: the ws output's page lands in the current scene as a Browser
Source with the address the worker keeps, once (a second run changes nothing), and --undo
takes it out again."""

from __future__ import annotations

import json

from test_obs_setup import FRESH_COLLECTION, make_obs_config

from worker.cli import main
from worker.setup import obs_config
from worker.web.settings import load_address


def run(capsys, *args: str) -> tuple[int, str]:
    rc = main(["obs-setup", *args])
    return rc, capsys.readouterr().out


def test_browser_source_added_once_and_undone(tmp_path, monkeypatch, capsys):
    cfg = make_obs_config(tmp_path)
    coll = cfg / "basic" / "scenes" / "Untitled.json"
    monkeypatch.setenv("STREAM_ANIMATOR_CONFIG", str(tmp_path / "sa-config"))
    rc, out = run(capsys, "--browser-source", "--obs-config", str(cfg), "--json")
    assert rc == 0
    assert json.loads(out)["changed"] == [str(coll)]
    data = json.loads(coll.read_text())
    addr = load_address()
    src = next(s for s in data["sources"] if s["name"] == obs_config.BROWSER_SOURCE_NAME)
    assert src["id"] == "browser_source"
    assert src["settings"]["url"] == f"http://127.0.0.1:{addr.port}/source?token={addr.token}"
    assert src["settings"]["reroute_audio"] is True and src["settings"]["width"] == 512
    scene = next(s for s in data["sources"] if s["id"] == "scene")
    assert [i["name"] for i in scene["settings"]["items"]] == [obs_config.BROWSER_SOURCE_NAME]

    rc, out = run(capsys, "--browser-source", "--obs-config", str(cfg), "--json")
    assert rc == 0 and json.loads(out)["changed"] == []

    rc, _ = run(capsys, "--undo", "--obs-config", str(cfg))
    assert rc == 0
    assert json.loads(coll.read_text()) == FRESH_COLLECTION
