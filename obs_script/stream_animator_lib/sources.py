"""The receiving source in OBS, found by name or created in a scene: idempotent, so loading the
script, pressing Start or changing the output mode again never adds a second one.

Takes the `obspython` module as `obs`, so the logic is tested with a stand-in (tests/test_obs_logic.py)
and in real OBS (tests/test_obs_browser_source.py).
"""

from __future__ import annotations

BROWSER_SOURCE_ID = "browser_source"  # the obs-browser plugin's input (Windows, macOS, Flatpak OBS)
BROWSER_SOURCE_NAME = "Animated Character (Browser)"
BROWSER_MISSING = (
    "this OBS has no Browser Source (the obs-browser plugin; Debian's and some distributions' OBS lack it):"
    " use the Media Source (NUT) output here, or an OBS with it"
)


def browser_source_settings(url: str, size: int) -> dict:
    """The Browser Source showing the worker's page: its size the character's, its sound (`say`) through OBS."""
    return {"url": url, "width": int(size), "height": int(size), "reroute_audio": True}


def has_source_type(obs, type_id: str) -> bool:
    """Whether this OBS has the input type (its plugin is loaded): only known types have a display name."""
    return bool(obs.obs_source_get_display_name(type_id))


def obs_data(obs, values: dict):
    data = obs.obs_data_create()
    for k, v in values.items():
        if isinstance(v, bool):
            obs.obs_data_set_bool(data, k, v)
        elif isinstance(v, int):
            obs.obs_data_set_int(data, k, v)
        else:
            obs.obs_data_set_string(data, k, str(v))
    return data


def apply_source_settings(obs, src, wanted: dict) -> bool:
    """Update only what differs (updating a Media Source reopens its input, a Browser Source reloads
    its page); True when something changed."""
    cur = obs.obs_source_get_settings(src)
    differs = False
    for k, v in wanted.items():
        if isinstance(v, bool):
            differs |= obs.obs_data_get_bool(cur, k) != v
        elif isinstance(v, int):
            differs |= obs.obs_data_get_int(cur, k) != v
        else:
            differs |= obs.obs_data_get_string(cur, k) != v
    obs.obs_data_release(cur)
    if differs:
        data = obs_data(obs, wanted)
        obs.obs_source_update(src, data)
        obs.obs_data_release(data)
    return differs


def ensure_source(obs, name: str, type_id: str, wanted: dict, scene_src) -> str:
    """Find the source `name` (and update its settings) or create it in `scene_src` (borrowed, not
    released here). Returns what happened: "kept", "updated", "other type", "no scene", "cannot
    create" or "created"."""
    src = obs.obs_get_source_by_name(name)
    if src is not None:
        try:
            if obs.obs_source_get_unversioned_id(src) != type_id:
                return "other type"
            return "updated" if apply_source_settings(obs, src, wanted) else "kept"
        finally:
            obs.obs_source_release(src)
    if scene_src is None:
        return "no scene"
    data = obs_data(obs, wanted)
    src = obs.obs_source_create(type_id, name, data, None)
    obs.obs_data_release(data)
    if src is None:
        return "cannot create"
    obs.obs_scene_add(obs.obs_scene_from_source(scene_src), src)
    obs.obs_source_release(src)
    return "created"
