"""The direct output writes into `struct obs_source_frame` by offset: check them against real libobs.

obspython's SWIG wrapper was compiled against the libobs headers, so the addresses it hands out
for `frame.data` / `frame.linesize` are the true offsets. The check runs in the Python OBS
embeds (the one `_obspython.so` links to) with the real libobs allocating the frame; no running
OBS is needed. The same numbers are also compared with a ctypes mirror of the libobs 29 header.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from obs_harness import skip_or_fail

from worker.tools.obs_run import OBS_SCRIPTING_DIR, REPO

PROBE = r"""
import ctypes, json, sys
sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[2])
import obspython as obs
from stream_animator_lib import obs_frames

class HeaderFrame(ctypes.Structure):  # struct obs_source_frame, libobs/obs.h of OBS 29
    _fields_ = [("data", ctypes.c_void_p * 8), ("linesize", ctypes.c_uint32 * 8), ("width", ctypes.c_uint32),
                ("height", ctypes.c_uint32), ("timestamp", ctypes.c_uint64), ("format", ctypes.c_int),
                ("color_matrix", ctypes.c_float * 16), ("full_range", ctypes.c_bool),
                ("max_luminance", ctypes.c_uint16), ("color_range_min", ctypes.c_float * 3),
                ("color_range_max", ctypes.c_float * 3), ("flip", ctypes.c_bool), ("flags", ctypes.c_uint8),
                ("trc", ctypes.c_uint8), ("refs", ctypes.c_long), ("prev_frame", ctypes.c_bool)]

out = {"swig_offsets": list(obs_frames.struct_offsets(obs)), "layout_ok": obs_frames.layout_ok(obs),
       "header_offsets": [HeaderFrame.data.offset, HeaderFrame.linesize.offset],
       "version": obs.obs_get_version_string()}
f = obs.obs_source_frame()
base = int(f.this)
f.width, f.height, f.format, f.timestamp = 37, 5, obs_frames.VIDEO_FORMAT_RGBA, 0x1122334455667788
h = HeaderFrame.from_address(base)
out["fields_via_header"] = [h.width, h.height, h.format, h.timestamp]
out["fields_via_swig_addr"] = [int(f.width), int(f.height)]

# the sink's own allocation + copy path, on a frame libobs allocates
sink = obs_frames.ObsFrameSink.__new__(obs_frames.ObsFrameSink)
sink.obs, sink.video_format = obs, obs_frames.VIDEO_FORMAT_RGBA
sink._frame, sink._size, sink._data, sink._linesize = None, None, 0, 0
sink._ensure_frame(37, 5)
pixels = bytearray((i * 7) % 251 for i in range(37 * 5 * 4))
src = (ctypes.c_char * len(pixels)).from_buffer(pixels)
for y in range(5):  # the row-by-row path handles any stride
    ctypes.memmove(sink._data + y * sink._linesize, ctypes.addressof(src) + y * 148, 148)
fb = HeaderFrame.from_address(int(sink._frame.this))
out["alloc"] = {"linesize0": fb.linesize[0], "data0_is_sink_data": fb.data[0] == sink._data,
                "data1": fb.data[1], "format": fb.format, "w": fb.width, "h": fb.height}
out["copied_ok"] = all(ctypes.string_at(sink._data + y * sink._linesize, 148) == bytes(pixels[y*148:(y+1)*148])
                       for y in range(5))
sink._free_frame()
print(json.dumps(out))
"""


def _embedded_python() -> str | None:
    """The interpreter whose libpython `_obspython.so` links (what OBS embeds)."""
    so = OBS_SCRIPTING_DIR / "_obspython.so"
    if not so.is_file():
        return None
    ldd = subprocess.run(["ldd", str(so)], capture_output=True, text=True).stdout
    m = re.search(r"libpython(3\.\d+)", ldd)
    exe = Path(f"/usr/bin/python{m.group(1)}") if m else None
    return str(exe) if exe and exe.is_file() else None


def test_obs_source_frame_layout_matches_libobs():
    py = _embedded_python()
    if py is None:
        skip_or_fail(f"OBS Python scripting not found in {OBS_SCRIPTING_DIR} (apt-get install obs-studio)")
    r = subprocess.run(
        [py, "-c", PROBE, str(OBS_SCRIPTING_DIR), str(REPO / "obs_script")], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    # data[0] at 0, linesize[0] at 64: from SWIG (compiled against the headers) and the header mirror
    assert out["swig_offsets"] == [0, 64], out
    assert out["header_offsets"] == [0, 64]
    assert out["layout_ok"] is True
    assert out["fields_via_header"] == [37, 5, 6, 0x1122334455667788]
    assert out["alloc"] == {"linesize0": 148, "data0_is_sink_data": True, "data1": None, "format": 6, "w": 37, "h": 5}
    assert out["copied_ok"] is True
