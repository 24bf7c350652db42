"""The wire protocol module: stdlib-only, line framing, JSON, frame header layout."""

from __future__ import annotations

import ast
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from worker.control import protocol as P

PROTOCOL_FILE = Path(P.__file__)


def test_protocol_imports_only_the_standard_library():
    tree = ast.parse(PROTOCOL_FILE.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    assert names <= set(sys.stdlib_module_names), names - set(sys.stdlib_module_names)


def test_protocol_loads_standalone_like_the_obs_script_does():
    # The OBS script puts the folder on sys.path and imports the file by itself (-I: no site).
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import protocol; "
        "assert 'worker' not in sys.modules and 'numpy' not in sys.modules; "
        "print(protocol.PROTOCOL_VERSION, protocol.FRAME_HEADER_SIZE)"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", code, str(PROTOCOL_FILE.parent)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert out.stdout.split() == ["1", "44"]


def test_line_reader_splits_across_chunks_and_limits_length():
    r = P.LineReader(max_line=16)
    assert r.feed(b'{"a":1}\n{"b"') == [b'{"a":1}']
    assert r.pending == 4
    assert r.feed(b":2}\n\n") == [b'{"b":2}', b""]
    assert r.feed(b"x" * 15) == []  # 15 + newline = 16: allowed
    assert r.feed(b"\n") == [b"x" * 15]
    with pytest.raises(P.LineTooLong):
        r.feed(b"y" * 16)  # 16 + newline would be 17
    r2 = P.LineReader(max_line=16)
    with pytest.raises(P.LineTooLong):
        r2.feed(b"z" * 20 + b"\n")
    # a 100 MB chunk is refused without copying it into the buffer
    r3 = P.LineReader()
    with pytest.raises(P.LineTooLong):
        r3.feed(b"q" * (100 << 20))
    assert r3.pending == 0


def test_encode_decode_round_trip_and_nan():
    line = P.encode({"id": 3, "op": "status", "x": "ünï", "f": math.nan, "l": [math.inf, 1.5]})
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line) == {"id": 3, "op": "status", "x": "ünï", "f": None, "l": [None, 1.5]}
    assert P.decode(line) == json.loads(line)
    assert json.loads(P.encode({"a": np.float32(1.5), "b": np.arange(3), "c": np.float64("nan")})) == {
        "a": 1.5,
        "b": [0, 1, 2],
        "c": None,
    }
    with pytest.raises(TypeError):
        P.encode({"x": object()})
    for bad in (b"[1, 2]", b'"str"', b"nul", b"\xff\xfe", b"{", b"3"):
        with pytest.raises(P.ProtocolError):
            P.decode(bad)


def test_auth_check():
    tok = P.make_token()
    assert len(tok) >= 40 and P.make_token() != tok
    assert P.check_auth({"op": "auth", "token": tok}, tok) is None
    assert P.check_auth({"op": "auth", "token": tok + "x"}, tok) == "bad token"
    assert P.check_auth({"op": "auth", "token": 5}, tok) == "bad token"
    assert P.check_auth({"op": "auth"}, tok) == "bad token"
    assert P.check_auth({"op": "status", "token": tok}, tok) is not None
    assert json.loads(P.auth_line(tok)) == {"op": "auth", "token": tok}
    assert P.auth_ok() == {"ok": True, "op": "auth", "protocol": 1}


def test_frame_header_layout_is_fixed():
    assert P.FRAME_HEADER.format == "<4sHHIIQddI" and P.FRAME_HEADER_SIZE == 44
    raw = P.pack_frame_header(640, 360, 2**40 + 7, 1700000000.25, 1700000000.5)
    assert raw[:4] == b"SAMF"
    assert int.from_bytes(raw[4:6], "little") == 1 and int.from_bytes(raw[6:8], "little") == P.PIXEL_RGBA
    assert int.from_bytes(raw[8:12], "little") == 640 and int.from_bytes(raw[12:16], "little") == 360
    assert int.from_bytes(raw[16:24], "little") == 2**40 + 7
    assert int.from_bytes(raw[40:44], "little") == 640 * 360 * 4
    h = P.unpack_frame_header(raw)
    assert (h.width, h.height, h.seq, h.capture_ts, h.send_ts) == (640, 360, 2**40 + 7, 1700000000.25, 1700000000.5)
    bad = bytearray(raw)
    bad[:4] = b"XXXX"
    with pytest.raises(P.ProtocolError):
        P.unpack_frame_header(bad)
    with pytest.raises(P.ProtocolError):
        P.unpack_frame_header(P.FRAME_HEADER.pack(b"SAMF", 1, 1, 10, 10, 0, 0.0, 0.0, 7))


def test_ready_line():
    assert json.loads(P.ready_line(1234, None)) == {
        "event": "ready",
        "protocol": 1,
        "control_port": 1234,
        "frame_port": None,
    }


def test_status_voice_is_optional_on_the_wire_and_mute_ops_exist():
    """A status from a worker without the voice field still parses (readers ignore what they lack)."""
    st = P.Status(
        running=True, uptime_s=1.0, fps=30.0, latency_ms={}, stages_ms={}, frames={}, drops={}, character=None,
        last_switch=None, characters=0, tracking="voice only", paused=False, camera={}, outputs={}, warnings=[],
        voice={"mic": "default", "muted": True},
    )  # fmt: skip
    assert P.Status.from_dict(P.decode(P.encode(st.to_dict()))) == st
    old = {k: v for k, v in st.to_dict().items() if k not in ("voice", "process")}
    assert P.Status.from_dict(old).voice == {}
    assert "voice only" in P.TRACKING_STATES and {"mute", "unmute"} <= set(P.OPS)
    assert P.check_args("mute", {}) is None
