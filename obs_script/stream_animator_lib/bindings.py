"""Scene -> character bindings: switching scenes in OBS switches the character.

Only the program scene decides (in studio mode the preview is what the streamer is preparing,
not what viewers see, and there is one animated character for both). A scene without a binding
keeps whatever character is current, so hotkey choices survive a switch to e.g. "BRB".
"""

from __future__ import annotations

# Settings key of one scene's binding: one combo box per scene in the script's properties.
SCENE_KEY_PREFIX = "scene_character::"
UNBOUND = ""  # the "(keep current)" choice


def scene_key(scene_name: str) -> str:
    return SCENE_KEY_PREFIX + scene_name


def bindings_from_settings(scene_names: list[str], get_string) -> dict[str, str]:
    """{scene: character id} for every scene whose setting names a character.

    `get_string(key) -> str` reads the script settings (obs_data_get_string in OBS).
    """
    out: dict[str, str] = {}
    for name in scene_names:
        value = (get_string(scene_key(name)) or "").strip()
        if value != UNBOUND:
            out[name] = value
    return out


def resolve_character(
    program_scene: str | None, bindings: dict[str, str], current: str | None, preview_scene: str | None = None
) -> str | None:
    """The character that should be live after a scene event.

    The program scene's binding wins; an unbound (or unknown) program scene keeps `current`.
    `preview_scene` is accepted to make the studio-mode rule explicit: it never decides.
    """
    del preview_scene  # studio mode: what is being prepared does not change what is live
    if program_scene is not None and program_scene in bindings:
        return bindings[program_scene]
    return current


def character_change(
    program_scene: str | None, bindings: dict[str, str], current: str | None, preview_scene: str | None = None
) -> str | None:
    """The character to switch to, or None when the scene event changes nothing."""
    want = resolve_character(program_scene, bindings, current, preview_scene)
    return want if want is not None and want != current else None
