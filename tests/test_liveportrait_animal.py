"""Characters of kind `animal` run LivePortrait's animal model (its own six networks) when that set
is present, else the human set with one line saying why; stand-in graphs for both sets, CPU."""

from __future__ import annotations

import logging

import pytest
from test_liveportrait import _character, _driver_frame

from worker.characters.assets import CharacterAssets
from worker.characters.cache import CharacterCache
from worker.characters.preparer import preparer_tag
from worker.render.liveportrait import Driver, LivePortraitRenderer, weights
from worker.render.liveportrait.renderer import availability
from worker.render.liveportrait.standin import build_models


@pytest.fixture(scope="module")
def both_sets(tmp_path_factory):
    d = tmp_path_factory.mktemp("lp_both")
    build_models(d)
    build_models(d, prefix=weights.ANIMAL_PREFIX)
    return d


@pytest.fixture(scope="module")
def human_only(tmp_path_factory):
    return build_models(tmp_path_factory.mktemp("lp_human"))


def _assets(cache: CharacterCache, key: str, kind: str) -> CharacterAssets:
    """A character of `kind`, stored in `cache` as preprocessing would (meta.json keeps the kind)."""
    rgba, lm = _character()
    a = CharacterAssets(key, key, "", 256, rgba, lm.astype("float32"), (0, 0, 256, 256), True, meta={"kind": kind})
    return cache.get(key)[0] or cache.put(a)


def _renderer(models_dir, monkeypatch) -> LivePortraitRenderer:
    monkeypatch.setenv(weights.STANDIN_ENV, str(models_dir))
    return LivePortraitRenderer(size=256, models_dir=models_dir, device="cpu")


def _runs(r: LivePortraitRenderer, name: str, net: str) -> int:
    return r.sets[name][net].runs if name in r.sets else 0


def test_animal_character_runs_the_animal_set_and_human_the_human(both_sets, tmp_path, monkeypatch):
    r = _renderer(both_sets, monkeypatch)
    assert r.usable_sets() == ["human", "animal"] and "animal" not in r.sets  # loaded on first use
    cache = CharacterCache(tmp_path / "cache")
    human, _ = cache.prepared(_assets(cache, "h", "human"), r)
    animal, _ = cache.prepared(_assets(cache, "a", "animal"), r)
    drawn, _ = cache.prepared(_assets(cache, "d", "drawn"), r)
    assert [int(x.arrays["net_set"][0]) for x in (human, animal, drawn)] == [0, 1, 0]
    assert (_runs(r, "human", "F"), _runs(r, "animal", "F")) == (2, 1)
    assert (_runs(r, "human", "M"), _runs(r, "animal", "M")) == (2, 1)
    f0, l0 = _driver_frame(0)
    f1, l1 = _driver_frame(20, tint=30)
    for t, (f, lm) in enumerate([(f0, l0), (f1, l1)]):
        out = r.drive(animal.arrays, Driver(f, lm, 0.1 * t))
        assert out.shape == (256, 256, 4)
    # the animal character's driver motion, stitching and W+G all ran on the animal set
    assert (_runs(r, "animal", "M"), _runs(r, "animal", "S")) == (3, 2) and _runs(r, "animal", "W") >= 1
    assert (_runs(r, "human", "M"), _runs(r, "human", "S"), _runs(r, "human", "W")) == (2, 0, 0)
    r.drive(human.arrays, Driver(f0, l0, 0.3))
    assert (_runs(r, "human", "M"), _runs(r, "human", "W")) == (3, 1) and _runs(r, "animal", "M") == 3
    # cached: a second look-up prepares nothing again, and the disk copy serves a fresh cache
    assert cache.prepared(_assets(cache, "a", "animal"), r)[1] == "memory"
    fresh = CharacterCache(tmp_path / "cache")
    again, where = fresh.prepared(_assets(fresh, "a", "animal"), r)
    assert where == "disk" and int(again.arrays["net_set"][0]) == 1
    assert _runs(r, "animal", "F") == 1
    assert r.stats()["network_runs_by_set"]["animal"]["appearance"] == 1
    r.close()


def test_without_the_animal_set_an_animal_falls_back_with_one_line(
    both_sets, human_only, tmp_path, monkeypatch, caplog
):
    full = _renderer(both_sets, monkeypatch)
    cache = CharacterCache(tmp_path / "cache")
    assert cache.prepared(_assets(cache, "a", "animal"), full)[1] == "built"
    r = _renderer(human_only, monkeypatch)
    assert r.usable_sets() == ["human"]
    # the human graphs are the same bytes in both folders: only the set choice tells the keys apart
    assert preparer_tag(r) != preparer_tag(full)
    caplog.clear()  # what the set-up above logged (provider lines, at INFO when logging is configured)
    with caplog.at_level(logging.WARNING, logger="worker.render.liveportrait.renderer"):
        a, where = cache.prepared(_assets(cache, "a", "animal"), r)  # not the animal-set arrays cached above
        b, _ = cache.prepared(_assets(cache, "b", "animal"), r)
    assert where == "built" and int(a.arrays["net_set"][0]) == int(b.arrays["net_set"][0]) == 0
    said = [r.getMessage() for r in caplog.records if r.name.endswith("renderer") and r.levelno >= logging.WARNING]
    lines = [m for m in said if "animal" in m]
    assert len(lines) == 1 and "human model" in lines[0] and "lacks" in lines[0], lines
    assert "animal" not in r.sets and _runs(r, "human", "F") == 2
    f0, l0 = _driver_frame(0)
    r.drive(a.arrays, Driver(f0, l0, 0.0))
    assert _runs(r, "human", "W") == 1
    full.close()
    r.close()


def test_manifest_lists_the_animal_set_as_optional():
    entries = weights.load_entries(prefix=weights.ANIMAL_PREFIX)
    names = sorted(e.path.removeprefix(weights.ANIMAL_PREFIX) for e in entries)
    assert names == sorted(_spec_files())  # the same six networks as the human set
    base = "https://huggingface.co/warmshao/FasterLivePortrait/resolve/main/liveportrait_animal_onnx/"
    assert all(e.optional and e.url == base + e.path.removeprefix(weights.ANIMAL_PREFIX) for e in entries)
    human = weights.load_entries()
    assert len(human) == 6 and not any(e.optional for e in human) and all(e.sha256 for e in human)
    md = weights.downloader()
    # no published hash for the animal files: the installer fetches only the verifiable ones
    assert md.downloadable(human + entries) == human + [e for e in entries if e.sha256]
    md.require_verifiable(human + entries, weights.default_manifest())  # optional entries never refuse the manifest


def test_availability_is_about_the_human_set(human_only, both_sets, monkeypatch):
    monkeypatch.setenv(weights.STANDIN_ENV, str(human_only))
    assert availability(human_only)[0]
    ok, why = availability(human_only, "animal")
    assert not ok and "liveportrait_animal/" in why
    monkeypatch.setenv(weights.STANDIN_ENV, str(both_sets))
    assert availability(both_sets, "animal")[0]


def _spec_files() -> list[str]:
    from worker.render.liveportrait.networks import SPECS

    return [s.file.removeprefix(weights.LP_PREFIX) for s in SPECS.values()]
