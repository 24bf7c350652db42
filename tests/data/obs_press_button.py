"""An OBS script for the real-OBS tests, loaded beside obs_script/stream_animator.py: once OBS runs,
it presses one of that script's property buttons the way OBS's properties window does
(`obs_property_button_clicked` on the script's own properties, inside OBS), and writes how long
OBS was held by the press. Env: PRESS_BUTTON (the property's name), PRESS_RESULT (a JSON file),
PRESS_WHEN (a file: the press waits until the test makes it)."""

import json
import os
import sys
import time

import obspython as obs


def _press():
    if not os.path.exists(os.environ["PRESS_WHEN"]):
        return  # asked again at the next tick of the timer
    obs.timer_remove(_press)
    result = {}
    script = sys.modules.get("stream_animator")  # OBS imports each script as a module by its file name
    if script is None:
        result["error"] = "stream_animator is not loaded"
    else:
        props = script.script_properties()
        prop = obs.obs_properties_get(props, os.environ["PRESS_BUTTON"])
        if prop is None:
            result["error"] = f"no property {os.environ['PRESS_BUTTON']}"
        else:
            t0 = time.perf_counter()
            result["returned"] = bool(obs.obs_property_button_clicked(prop, None))
            result["seconds"] = time.perf_counter() - t0
        obs.obs_properties_destroy(props)
    tmp = os.environ["PRESS_RESULT"] + ".part"
    with open(tmp, "w") as f:
        json.dump(result, f)
    os.replace(tmp, os.environ["PRESS_RESULT"])


def script_load(settings):
    obs.timer_add(_press, 250)
