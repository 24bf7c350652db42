"""The renderer and output registries: every `--output` short form, availability with reasons,
`describe --json`, and each setting's range stated once."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from worker.config import SCHEMA, load_config
from worker.errors import UserError
from worker.output.registry import OUTPUTS, create_output, output_entry, parse_output_spec
from worker.render.registry import RENDERERS, SIZE, create_renderer
from worker.retarget.retargeter import RetargetOptions

REPO = Path(__file__).resolve().parents[1]

# one example of each output's short form
SHORT = {
    "obs": "obs:0",
    "ws": "ws:0",
    "nut": "nut:9999",
    "spout": "spout:StreamMotionAnimator",
    "virtualcam": "virtualcam:/dev/video10",
    "window": "window:Preview",
    "ndi": "ndi:Stream Animator",
    "file": "file:{tmp}/out.mov",
}


def test_every_output_has_a_short_form_example():
    assert set(SHORT) == set(OUTPUTS)


@pytest.mark.parametrize("name", list(OUTPUTS))
def test_short_form_parses_to_a_config_the_output_accepts(name, tmp_path, monkeypatch):
    monkeypatch.setenv("STREAM_ANIMATOR_TOKEN", "t" * 20)  # the obs output's secret (the worker sets it)
    spec = SHORT[name].format(tmp=tmp_path)
    cfg = parse_output_spec(spec)
    entry = OUTPUTS[name]
    assert cfg["type"] == name and str(cfg[entry.short_key]) == spec.split(":", 1)[1]
    assert entry.short_form.startswith(name)
    out = create_output(cfg)  # the output's own from_config accepts it
    assert out.name == name
    ok, reason = entry.availability()
    if ok:
        return
    # where it cannot run here, its reason is one line and starting it fails with one line too
    assert reason and "\n" not in reason and reason.startswith(f"{name} output ")
    with pytest.raises(UserError) as e:
        out.start()
    assert "\n" not in str(e.value) and str(e.value).startswith(f"{name} output")
    out.close()


def test_short_form_without_a_value_and_bad_values():
    assert parse_output_spec("obs") == {"type": "obs"} and parse_output_spec("window") == {"type": "window"}
    for spec, message in (
        ("nut", "give the port as nut:PORT"),
        ("file", "give the path as file:PATH"),
        ("nut:abc", "port must be an integer in 1..65535"),
        ("obs:70000", "outputs.obs.port: expected an integer in 0..65535"),
        ("rtmp:x", "outputs[].type must be one of obs, nut, spout"),
        ("nut:", "the form is nut:PORT"),
    ):
        with pytest.raises(UserError, match=re.escape(message)):
            parse_output_spec(spec)


@pytest.mark.skipif(sys.platform == "win32", reason="checks the refusal off Windows")
def test_run_refuses_an_output_that_cannot_run_here_in_one_line(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "worker", "run", "--output", "spout:Name", "--duration", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert r.returncode == 2
    assert r.stderr.strip() == "error: --output spout:Name: spout output needs Windows and SpoutGL"


def test_config_example_loads_with_every_commented_output(tmp_path, monkeypatch):
    monkeypatch.setenv("STREAM_ANIMATOR_TOKEN", "t" * 20)
    text = (REPO / "config.example.yaml").read_text()
    commented = re.findall(r"^  # (- \{type: .*\})", text, flags=re.M)
    assert {yaml.safe_load(c)[0]["type"] for c in commented} == set(OUTPUTS) - {"obs"}
    p = tmp_path / "c.yaml"
    p.write_text(text.replace("\n  # - {", "\n  - {"))
    cfg = load_config(p)
    assert [o["type"] for o in cfg["outputs"]] == ["obs", "nut", "virtualcam", "spout", "ndi", "window", "file", "ws"]
    for o in cfg["outputs"]:
        create_output(o)


def test_config_errors_name_the_output_key(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("outputs:\n  - {type: spout, name: X}\n")
    with pytest.raises(UserError, match=r"outputs.spout: unknown key\(s\) name; allowed: sender_name"):
        load_config(p)


def test_each_range_is_stated_once():
    # the motion strengths are RetargetOptions'; the working size is the renderers'
    for name, (lo, hi) in RetargetOptions.RANGES.items():
        key = f"motion.{name}"
        if key in SCHEMA:
            assert (SCHEMA[key].lo, SCHEMA[key].hi) == (lo, hi)
    assert (SCHEMA["characters.size"].lo, SCHEMA["characters.size"].hi) == (SIZE.lo, SIZE.hi) == (64, 2048)
    with pytest.raises(UserError, match="'characters.size': expected an integer in 64..2048"):
        load_config(None, {"characters.size": 32})
    load_config(None, {"characters.size": 64})


def test_renderer_registry(tmp_path, monkeypatch):
    assert RENDERERS["meshwarp"].availability() == (True, None)
    monkeypatch.setenv("STREAM_ANIMATOR_MODELS", str(tmp_path))  # no weights here
    ok, reason = RENDERERS["liveportrait"].availability()
    assert not ok and "liveportrait" in reason and "stream-animator models --download" in reason
    with pytest.raises(UserError, match="renderer liveportrait is not ready: weights"):
        create_renderer("liveportrait", size=256)
    with pytest.raises(UserError, match="unknown renderer 'magic'"):
        create_renderer("magic")
    assert create_renderer("meshwarp", size=256).size == 256


def test_describe_json_lists_renderers_and_outputs_with_availability(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "worker", "describe", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO), "STREAM_ANIMATOR_MODELS": str(tmp_path)},
    )
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    rend = {e["name"]: e for e in d["renderers"]}
    assert rend["meshwarp"]["available"] is True and rend["meshwarp"]["reason"] is None
    assert rend["liveportrait"]["available"] is False and "models --download" in rend["liveportrait"]["reason"]
    # auto: always offered; without weights it picks meshwarp and says why
    assert rend["auto"]["available"] is True and rend["auto"]["picks"] == "meshwarp"
    assert rend["auto"]["picks_reason"].startswith("auto chose meshwarp: liveportrait is not ready: weights")
    assert {"name": "size", "type": "int", "default": 512, "min": 64, "max": 2048} == {
        k: v for k, v in rend["meshwarp"]["options"][0].items() if k != "help"
    }
    outs = {e["name"]: e for e in d["outputs"]}
    assert set(outs) == set(OUTPUTS)
    for name, e in outs.items():
        ok, reason = output_entry(name).availability()
        assert (e["available"], e["reason"]) == (ok, reason)
        assert e["short_form"] == OUTPUTS[name].short_form and e["options"]
    assert outs["obs"]["available"] is True and outs["nut"]["available"] is True
    if sys.platform != "win32":
        assert outs["spout"]["available"] is False and "Windows" in outs["spout"]["reason"]
    motion = {o["name"]: o for o in d["config"]["motion"]}
    assert (motion["expression_strength"]["min"], motion["expression_strength"]["max"]) == (0.0, 2.0)
    assert "motion.expression_strength" in d["live_keys"] and d["default_renderer"] == "auto"
