"""Wire protocol between the worker and its clients (the OBS script, the CLI, tests).

STANDARD LIBRARY ONLY and imports nothing from `worker`: the OBS script puts this folder on
`sys.path` and imports this very file, so the two sides cannot drift.

Control channel (protocol 1)
----------------------------
* TCP on 127.0.0.1 only. Newline-delimited UTF-8 JSON objects, one per line, at most
  `MAX_LINE` (64 KiB) bytes including the newline. A longer line gets an error reply and the
  connection is closed.
* The first client line must arrive within `AUTH_TIMEOUT` (2 s) and be
  ``{"op": "auth", "token": "<secret>"}``. Reply ``{"ok": true, "op": "auth", "protocol": 1}``.
  A wrong or missing token, or anything else, gets ``{"ok": false, "error": "..."}`` and the
  connection is closed. The secret reaches the worker through env `ENV_TOKEN`.
* Then requests ``{"id": <int>, "op": <str>, ...args}`` get replies
  ``{"id": <same>, "ok": true, "result": {...}}`` or ``{"id": <same>, "ok": false, "error": "one line"}``
  (``"id": null`` when the request had no usable id). After auth, a malformed line (bad JSON,
  not an object, no integer id, no string op) gets such an error reply; the connection stays.
* Ops (`OPS`): ``status``, ``list_characters`` (result `CharacterList`: rows of `CharacterRow`
  and the current id), ``set_character`` (exactly one of ``character``: id or file stem |
  ``index``: int >= 1, the `CharacterRow.index` counted from 1 as on the hotkeys | ``step``:
  +1 / -1 from the current one, wrapping; result ``{"character": id, "ready": bool}``: the
  request is taken, the switch happens at the next frame once the character is loaded and is
  announced by a ``character`` event), ``calibrate``, ``pause``,
  ``resume``, ``mute`` / ``unmute`` (the voice: the mouth stays shut, the microphone stays
  open; result ``{"muted": bool}``; an error when the worker has no voice input),
  ``set_options`` (``options``: dict of live-changeable settings),
  ``reload_characters``, ``shutdown``, ``subscribe`` (status events; ``{"on": false}``
  unsubscribes). `check_args()` is the argument check the server applies before dispatch.
* Subscribed clients get events ``{"event": <name>, "data": {...}}`` (`EVENTS`):
  ``status`` about once a second (`STATUS_INTERVAL`), its data a `Status` (`STATUS_FIELDS`;
  the worker sends exactly these, readers ignore fields they do not know);
  ``character`` when a switch has taken effect (data: `CharacterSwitch`), the one authority on
  which character is on stream; ``characters`` when the folder changed (data: `CharacterList`).
* At most `MAX_CONNECTIONS` (32) clients at once; beyond that a client gets an error line and
  is closed. A client that leaves a partial line pending for `PARTIAL_LINE_TIMEOUT` seconds,
  or does not read its replies (more than `MAX_PENDING_OUT` bytes queued), is disconnected.

Frame channel (protocol 1, the "obs" output)
--------------------------------------------
* The worker listens on TCP 127.0.0.1 (port configurable, 0 = random). The client sends the
  same auth line as on the control channel; the worker answers with the same one-line JSON
  reply (``{"ok": true, "op": "auth", "protocol": 1}`` or an error and close), then streams
  binary frames and never reads anything else.
* Each frame = `FRAME_HEADER` (little-endian, `FRAME_HEADER_SIZE` = 44 bytes) + payload:

  ======  =======  =============================================================
  offset  type     field
  ======  =======  =============================================================
  0       4s       magic ``b"SAMF"``
  4       u16      version (1)
  6       u16      pixel format: 1 = RGBA (8 bits per channel, straight alpha)
  8       u32      width
  12      u32      height
  16      u64      seq (frame number, increases; gaps = frames dropped)
  24      f64      capture timestamp, seconds of ``time.time()``
  32      f64      send timestamp, seconds of ``time.time()``
  40      u32      payload length = width * height * 4 (rows top to bottom, no padding)
  ======  =======  =============================================================

* Newest frame wins: a client that reads slowly gets frames skipped (the worker counts
  them), it never blocks the worker.

WebSocket channel (protocol 1, the "ws" output)
-----------------------------------------------
* One aiohttp server (`worker.web`) on 127.0.0.1 (the port and the token kept in the user's
  settings, `worker.web.settings`, so the address survives restarts). Token: the query
  ``?token=`` (pages), the header ``Authorization: Bearer <token>``, or the socket's first
  message: the auth line above, answered the same way. A wrong one is one error, then a close.
* ``GET /source?token=...``: the Browser Source page. ``GET /ws``: the socket. Query options:
  ``format`` = ``rgba`` | ``webp`` | ``png`` (default: rgba from 127.0.0.1, webp from another
  machine), ``frames=0`` for control only.
* Server -> client binary messages are frames: the frame channel's `FRAME_HEADER` above, then
  the payload; pixel format 1 = raw RGBA (width * height * 4 bytes), 2 = WebP with alpha,
  3 = PNG with alpha (payload length = the file's size). The seq field is the frame id (for
  ``render`` replies: the client's ``frame_id``). Each client gets the newest frame; frames it
  was too slow for are counted as dropped in the status (``outputs.ws``).
* Text messages are JSON: the control requests and replies above (same ops, same errors), the
  events above to subscribed clients (``subscribe``) plus ``face`` (``{"found": bool}``),
  ``voice`` (``{"voiced": bool}``), ``say`` (a line to play, see below) and ``stopping``.
  Socket-only ops (`WS_OPS`): ``frames`` (``format``: as the query, ``on``: bool), ``say``
  (``text``: a line for the system's offline voice, or ``audio``: a WAV file's bytes in
  base64; result ``{"say": id, "seconds": s}``: the mouth follows that audio from the next
  frame on and pages play it, event ``say`` ``{"id", "url", "seconds"}``), ``render``
  (request/response: ``frame_id`` int, optional ``audio``: base64 PCM, signed 16-bit
  little-endian mono at ``rate`` Hz (default 16000), at most `MAX_RENDER_AUDIO` bytes; the
  reply's result ``{"frame_id", "processing_ms", "mouth", "bounds": [x, y, w, h]}`` comes
  first, then the frame as a binary message whose seq is the frame_id).
* A message over `MAX_LINE` bytes, a binary message from a client, or an unknown op gets one
  error; the first two close the socket, the worker's frame rate is untouched.

Worker start-up
---------------
The launcher passes the secret in env `ENV_TOKEN` and may pin ports with `ENV_CONTROL_PORT`
and `ENV_FRAME_PORT` (0 or unset = random). Once listening, the worker prints one line on
stdout, `ready_line()`: ``{"event": "ready", "protocol": 1, "control_port": N, "frame_port": N}``.
"""

from __future__ import annotations

import json
import math
import secrets
import select
import socket
import struct
import time
from collections import deque
from dataclasses import asdict, dataclass, field, fields
from typing import Any

PROTOCOL_VERSION = 1
HOST = "127.0.0.1"

ENV_TOKEN = "STREAM_ANIMATOR_TOKEN"
ENV_CONTROL_PORT = "STREAM_ANIMATOR_CONTROL_PORT"
ENV_FRAME_PORT = "STREAM_ANIMATOR_FRAME_PORT"

MAX_LINE = 64 * 1024
AUTH_TIMEOUT = 2.0
MAX_CONNECTIONS = 32
STATUS_INTERVAL = 1.0
PARTIAL_LINE_TIMEOUT = 10.0
MAX_PENDING_OUT = 1 << 20

OPS = (
    "status",
    "list_characters",
    "set_character",
    "calibrate",
    "pause",
    "resume",
    "mute",
    "unmute",
    "set_options",
    "reload_characters",
    "shutdown",
    "subscribe",
)
EVENTS = ("status", "character", "characters")

FRAME_MAGIC = b"SAMF"
FRAME_VERSION = 1
PIXEL_RGBA = 1
PIXEL_WEBP = 2
PIXEL_PNG = 3
PIXEL_FORMATS = {"rgba": PIXEL_RGBA, "webp": PIXEL_WEBP, "png": PIXEL_PNG}
WS_OPS = ("frames", "say", "render")
WS_EVENTS = ("face", "voice", "say", "stopping")
MAX_RENDER_AUDIO = 48000 * 2  # one second of 48 kHz 16-bit mono
FRAME_HEADER = struct.Struct("<4sHHIIQddI")
FRAME_HEADER_SIZE = FRAME_HEADER.size  # 44
MAX_FRAME_SIDE = 8192


class ProtocolError(Exception):
    """The peer sent something this protocol does not allow."""


class AuthError(ProtocolError):
    """The worker refused our token (or we never got an auth reply)."""


class RemoteError(Exception):
    """The worker answered a request with ``ok: false``; the message is its one-line error."""

    def __init__(self, op: str, message: str):
        super().__init__(f"{op}: {message}")
        self.op = op
        self.message = message


class LineTooLong(ProtocolError):
    pass


def make_token() -> str:
    """A fresh secret for one worker run."""
    return secrets.token_urlsafe(32)


def _finite(obj: Any) -> Any:
    # JSON has no NaN/Infinity; metrics may hold them before the first frame.
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _plain(obj: Any) -> Any:
    # numpy scalars and arrays (duck-typed: this module imports no numpy)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def encode(obj: Any) -> bytes:
    """One protocol line: compact JSON, UTF-8, newline-terminated; NaN/inf become null."""
    opts: dict[str, Any] = {"separators": (",", ":"), "ensure_ascii": False, "allow_nan": False, "default": _plain}
    try:
        text = json.dumps(obj, **opts)
    except ValueError:
        text = json.dumps(_finite(json.loads(json.dumps(obj, default=_plain))), **opts)
    return text.encode("utf-8") + b"\n"


def decode(line: bytes) -> dict:
    """Parse one line (without or with its newline) into a JSON object, else ProtocolError."""
    try:
        obj = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ProtocolError(f"malformed JSON: {e}") from None
    except RecursionError:  # "[[[[..." thousands deep
        raise ProtocolError("malformed JSON: nested too deeply") from None
    if not isinstance(obj, dict):
        raise ProtocolError(f"expected a JSON object, got {type(obj).__name__}")
    return obj


def check_args(op: str, args: dict) -> str | None:
    """None if `args` fit `op` as defined above, else a one-line reason (the server checks
    this before the handler runs; clients may check before sending). Extra keys are allowed."""
    if op == "set_character":
        given = [k for k in ("character", "index", "step") if k in args]
        if len(given) != 1:
            return "set_character needs exactly one of 'character', 'index', 'step'"
        key, v = given[0], args[given[0]]
        if key == "character" and not (isinstance(v, str) and v):
            return "'character' must be a non-empty string (a character id)"
        if key == "index" and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            return "'index' must be an integer >= 1 (characters are counted from 1)"
        if key == "step" and (isinstance(v, bool) or v not in (1, -1)):
            return "'step' must be 1 or -1"
    elif op == "set_options":
        if not isinstance(args.get("options"), dict):
            return "set_options needs 'options': an object of setting -> value"
    elif op == "subscribe":
        if not isinstance(args.get("on", True), bool):
            return "'on' must be true or false"
    return None


def _want(data: Any, names: tuple[str, ...], what: str) -> dict:
    if not isinstance(data, dict):
        raise ProtocolError(f"{what}: expected an object, got {type(data).__name__}")
    missing = [n for n in names if n not in data]
    if missing:
        raise ProtocolError(f"{what}: missing field(s) {', '.join(missing)}")
    return data


@dataclass
class CharacterRow:
    """One character of the worker's folder, as `list_characters` and events report it."""

    id: str  # the file name in the characters folder
    index: int  # 1-based position in the sorted list: what `set_character` ``index`` and hotkeys 1-9 mean
    name: str  # the file stem, for menus
    state: str  # "ready", "loading" or "failed"
    error: str | None = None  # why it failed

    @classmethod
    def from_dict(cls, data: Any) -> CharacterRow:
        d = _want(data, ("id", "index", "name", "state"), "character row")
        return cls(
            str(d["id"]),
            int(d["index"]),
            str(d["name"]),
            str(d["state"]),
            None if d.get("error") is None else str(d["error"]),
        )


@dataclass
class CharacterList:
    """`list_characters` result and ``characters`` event data."""

    characters: list[CharacterRow]
    current: str | None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> CharacterList:
        d = _want(data, ("characters", "current"), "character list")
        rows = d["characters"]
        if not isinstance(rows, list):
            raise ProtocolError("character list: 'characters' must be a list")
        return cls([CharacterRow.from_dict(r) for r in rows], None if d["current"] is None else str(d["current"]))


@dataclass
class CharacterSwitch:
    """A switch that took effect (``character`` event data, and `Status.last_switch`)."""

    character: str  # the id now on stream
    frames_late: int  # frames still rendered with the old character after the request
    first_seq: int  # the first frame (seq) drawn with it

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> CharacterSwitch:
        d = _want(data, ("character", "frames_late", "first_seq"), "character switch")
        return cls(str(d["character"]), int(d["frames_late"]), int(d["first_seq"]))


# "voice only": started with no camera (`--source none`), the voice moves the mouth
TRACKING_STATES = ("starting", "tracking", "calibrating", "lost", "paused", "no camera", "voice only")


@dataclass
class Status:
    """The ``status`` op result and ``status`` event data. Times in ms, rates per second."""

    running: bool
    uptime_s: float
    fps: float  # frames rendered per second (last 2 s)
    # "p95": capture -> delivered, worst output; "pipeline": {"p50", "p95"} capture -> handed to the outputs
    latency_ms: dict[str, Any]
    stages_ms: dict[str, dict[str, float | None]]  # stage -> {"p50", "p95"}
    frames: dict[str, int]  # captured, tracked, rendered, with_face
    drops: dict[str, int]  # "track", "render" and one per output name
    character: str | None  # the id on stream now
    last_switch: CharacterSwitch | None
    characters: int  # how many are in the folder
    tracking: str  # one of TRACKING_STATES
    paused: bool
    camera: dict[str, Any]  # name, width, height, fps once open
    outputs: dict[str, dict[str, Any]]  # output name -> its stats
    warnings: list[str]  # the last few, newest last
    renderer: str = ""  # the renderer drawing the stream (what `auto` chose)
    renderer_reason: str = ""  # why that one, and how it runs here (device, speed)
    process: dict[str, Any] = field(default_factory=dict)  # cpu, memory of the worker process
    # the voice input, {} without one: mic (its name or file), lipsync (off | assist | always),
    # muted, voiced (heard now), openness (0..1), level_db, hops, analysis_ms_p95, error
    voice: dict[str, Any] = field(default_factory=dict)
    # why there is no camera picture ("no camera: ...; retrying", "camera lost: ...; reconnecting"),
    # None while frames come in; meanwhile the character stays on stream with idle motion
    camera_issue: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> Status:
        """A received status; ProtocolError when a field is missing. Unknown fields are ignored."""
        # an older worker may not send these
        optional = ("process", "renderer", "renderer_reason", "voice", "camera_issue")
        d = _want(data, tuple(f.name for f in fields(cls) if f.name not in optional), "status")
        values = {f.name: d[f.name] for f in fields(cls) if f.name in d}
        if values["last_switch"] is not None:
            values["last_switch"] = CharacterSwitch.from_dict(values["last_switch"])
        return cls(**values)

    def shown_latency_ms(self) -> float | None:
        """The latency to show a streamer: capture -> handed to the outputs (median)."""
        pipe = self.latency_ms.get("pipeline") or {}
        v = pipe.get("p50")
        return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


STATUS_FIELDS = tuple(f.name for f in fields(Status))


def event(name: str, data: Any) -> dict:
    """An event line's object; `data` is a dataclass above or a dict."""
    if name not in EVENTS:
        raise ValueError(f"unknown event {name!r}")
    return {"event": name, "data": data.to_dict() if hasattr(data, "to_dict") else data}


def auth_line(token: str) -> bytes:
    return encode({"op": "auth", "token": token})


def auth_ok() -> dict:
    return {"ok": True, "op": "auth", "protocol": PROTOCOL_VERSION}


def check_auth(msg: dict, token: str) -> str | None:
    """None if `msg` is a valid auth request for `token`, else the one-line reason."""
    if msg.get("op") != "auth":
        return 'first message must be {"op": "auth", "token": ...}'
    got = msg.get("token")
    if not isinstance(got, str) or not secrets.compare_digest(got.encode(), token.encode()):
        return "bad token"
    return None


def ready_line(control_port: int, frame_port: int | None, **extra: Any) -> bytes:
    return encode(
        {
            "event": "ready",
            "protocol": PROTOCOL_VERSION,
            "control_port": control_port,
            "frame_port": frame_port,
            **extra,
        }
    )


class LineReader:
    """Splits a byte stream into lines of at most `max_line` bytes (newline included).

    `feed(data)` returns the complete lines (without the newline) and raises `LineTooLong` as
    soon as the pending partial line exceeds the limit, without buffering the excess.
    """

    def __init__(self, max_line: int = MAX_LINE):
        self.max_line = max_line
        self._buf = bytearray()

    @property
    def pending(self) -> int:
        """Bytes of an incomplete line held."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        lines: list[bytes] = []
        start = 0
        while True:
            nl = data.find(b"\n", start)
            if nl < 0:
                break
            if len(self._buf) + (nl - start) + 1 > self.max_line:
                raise LineTooLong(f"line longer than {self.max_line} bytes")
            if self._buf:
                self._buf += data[start:nl]
                lines.append(bytes(self._buf))
                self._buf.clear()
            else:
                lines.append(bytes(data[start:nl]))
            start = nl + 1
        rest = len(data) - start
        if rest:
            if len(self._buf) + rest >= self.max_line:
                raise LineTooLong(f"line longer than {self.max_line} bytes")
            self._buf += data[start:]
        return lines


def pack_frame_header(
    width: int,
    height: int,
    seq: int,
    capture_ts: float,
    send_ts: float,
    pixel_format: int = PIXEL_RGBA,
    payload_len: int | None = None,
) -> bytes:
    """The header; `payload_len` is needed for encoded formats (WebP, PNG), RGBA's is w * h * 4."""
    n = width * height * 4 if payload_len is None else payload_len
    return FRAME_HEADER.pack(FRAME_MAGIC, FRAME_VERSION, pixel_format, width, height, seq, capture_ts, send_ts, n)


@dataclass
class FrameHeader:
    version: int
    pixel_format: int
    width: int
    height: int
    seq: int
    capture_ts: float
    send_ts: float
    payload_len: int


def unpack_frame_header(buf: bytes | bytearray | memoryview, formats: tuple[int, ...] = (PIXEL_RGBA,)) -> FrameHeader:
    """The header of a frame; `formats` are the pixel formats the reader takes (the OBS script: RGBA)."""
    magic, ver, fmt, w, h, seq, cts, sts, n = FRAME_HEADER.unpack(buf)
    if magic != FRAME_MAGIC:
        raise ProtocolError(f"bad frame magic {magic!r}")
    if ver != FRAME_VERSION:
        raise ProtocolError(f"frame version {ver} not supported (want {FRAME_VERSION})")
    if fmt not in formats:
        raise ProtocolError(f"pixel format {fmt} not supported")
    if not (0 < w <= MAX_FRAME_SIDE and 0 < h <= MAX_FRAME_SIDE) or not (
        n == w * h * 4 if fmt == PIXEL_RGBA else 0 < n <= w * h * 4 + 65536
    ):
        raise ProtocolError(f"bad frame size {w}x{h} payload {n}")
    return FrameHeader(ver, fmt, w, h, seq, cts, sts, n)


@dataclass
class ReceivedFrame:
    width: int
    height: int
    seq: int
    capture_ts: float  # time.time() at capture, worker side
    send_ts: float  # time.time() when the worker queued it on the socket
    recv_ts: float  # time.time() when the last byte arrived here
    data: bytearray  # width*height*4 RGBA bytes, rows top to bottom

    @property
    def latency(self) -> float:
        """Seconds from capture to arrival (same machine, same clock)."""
        return self.recv_ts - self.capture_ts


def _connect(host: str, port: int, timeout: float) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _read_line_blocking(sock: socket.socket, reader: LineReader, pending: deque, timeout: float) -> bytes:
    deadline = time.monotonic() + timeout
    while not pending:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no reply from worker")
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except socket.timeout:  # noqa: UP041 - OBS may embed a Python older than 3.10
            raise TimeoutError("no reply from worker") from None
        if not data:
            raise ConnectionError("worker closed the connection")
        pending.extend(reader.feed(data))
    return pending.popleft()


def _login(sock: socket.socket, token: str, timeout: float, channel: str) -> None:
    """The handshake of both channels: send the auth line, read exactly the reply line (byte by
    byte, so nothing after it, such as the first frame, is consumed), close the socket on refusal."""
    try:
        sock.sendall(auth_line(token))
        reply = _read_auth_reply(sock, timeout)
    except (OSError, ProtocolError) as e:
        sock.close()
        raise AuthError(f"{channel}auth failed: {e}") from None
    if reply.get("ok") is not True:
        sock.close()
        raise AuthError(f"{channel}auth refused: {reply.get('error', 'no reason given')}")


def _read_auth_reply(sock: socket.socket, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    line = bytearray()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise ProtocolError("no auth reply")
        sock.settimeout(left)
        b = sock.recv(1)
        if not b:
            raise ProtocolError("worker closed the connection during auth")
        if b == b"\n":
            return decode(bytes(line))
        line += b
        if len(line) > MAX_LINE:
            raise ProtocolError("auth reply too long")


class _Client:
    """What both clients share: one socket, closed on exit from a `with` block."""

    sock: socket.socket | None = None

    def connect(self):  # pragma: no cover - defined by each client
        raise NotImplementedError

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None

    def __enter__(self):
        if self.sock is None:
            self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ControlClient(_Client):
    """Blocking client of the control channel; every call gives up after `timeout` seconds.

    Not thread-safe: use one client per thread. Events that arrive while waiting for a reply
    are queued and returned by `next_event()`.
    """

    def __init__(self, port: int, token: str, host: str = HOST, timeout: float = 2.0):
        self.host, self.port, self.token, self.timeout = host, port, token, timeout
        self.sock: socket.socket | None = None
        self._reader = LineReader()
        self._lines: deque[bytes] = deque()
        self._events: deque[dict] = deque()
        self._next_id = 1

    def connect(self) -> ControlClient:
        self.close()
        self._reader = LineReader()
        self._lines.clear()
        sock = _connect(self.host, self.port, self.timeout)
        _login(sock, self.token, self.timeout, "")
        self.sock = sock
        return self

    def request(self, op: str, timeout: float | None = None, **args: Any) -> dict:
        """Send one request and return its ``result``; raises RemoteError on ``ok: false``."""
        if self.sock is None:
            raise ConnectionError("not connected")
        rid = self._next_id
        self._next_id += 1
        self.sock.sendall(encode({"id": rid, "op": op, **args}))
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            msg = decode(
                _read_line_blocking(self.sock, self._reader, self._lines, max(0.0, deadline - time.monotonic()))
            )
            if "event" in msg:
                self._events.append(msg)
                continue
            if msg.get("id") not in (rid, None):
                continue  # a late reply to a request that timed out earlier
            if msg.get("ok") is True:
                result = msg.get("result")
                return result if isinstance(result, dict) else {}
            raise RemoteError(op, str(msg.get("error", "unknown error")))

    def subscribe(self, on: bool = True) -> dict:
        return self.request("subscribe", on=on)

    def next_event(self, timeout: float = 2.0) -> dict | None:
        """The next pushed event, or None when none arrives within `timeout`."""
        if self._events:
            return self._events.popleft()
        if self.sock is None:
            raise ConnectionError("not connected")
        deadline = time.monotonic() + timeout
        while True:
            try:
                msg = decode(
                    _read_line_blocking(self.sock, self._reader, self._lines, max(0.0, deadline - time.monotonic()))
                )
            except TimeoutError:
                return None
            if "event" in msg:
                return msg


class FrameReceiver(_Client):
    """Client of the frame channel, stdlib only, for the OBS script's background thread.

    `poll(timeout)` waits at most `timeout` seconds for a complete frame, then takes whatever
    else has already arrived without waiting, and returns the newest complete frame (older
    ones are counted in `skipped`). Raises ConnectionError when the worker goes away; call
    `connect()` again to retry.
    """

    def __init__(self, port: int, token: str, host: str = HOST, connect_timeout: float = 2.0):
        self.host, self.port, self.token = host, port, token
        self.connect_timeout = connect_timeout
        self.sock: socket.socket | None = None
        self.received = 0
        self.skipped = 0  # complete frames replaced by a newer one before poll() returned
        self.last_seq: int | None = None
        self.gaps = 0  # frames the worker dropped for us (holes in seq)
        self._reset_state()

    def _reset_state(self) -> None:
        self._hdr = bytearray(FRAME_HEADER_SIZE)
        self._hdr_got = 0
        self._header: FrameHeader | None = None
        self._payload: bytearray | None = None
        self._payload_got = 0

    @property
    def connected(self) -> bool:
        return self.sock is not None

    def connect(self) -> FrameReceiver:
        self.close()
        sock = _connect(self.host, self.port, self.connect_timeout)
        _login(sock, self.token, self.connect_timeout, "frame channel ")
        sock.setblocking(False)
        self.sock = sock
        self._reset_state()
        return self

    def _recv_available(self) -> ReceivedFrame | None:
        """Read without blocking until the socket is empty; return the newest complete frame."""
        assert self.sock is not None
        newest: ReceivedFrame | None = None
        while True:
            try:
                if self._header is None:
                    n = self.sock.recv_into(memoryview(self._hdr)[self._hdr_got :])
                else:
                    assert self._payload is not None
                    n = self.sock.recv_into(memoryview(self._payload)[self._payload_got :])
            except (BlockingIOError, InterruptedError):
                return newest
            except OSError as e:
                self.close()
                raise ConnectionError(f"frame channel: {e}") from None
            if n == 0:
                self.close()
                raise ConnectionError("worker closed the frame channel")
            if self._header is None:
                self._hdr_got += n
                if self._hdr_got == FRAME_HEADER_SIZE:
                    try:
                        self._header = unpack_frame_header(self._hdr)
                    except ProtocolError:
                        self.close()
                        raise
                    self._payload = bytearray(self._header.payload_len)
                    self._payload_got = 0
                continue
            self._payload_got += n
            assert self._payload is not None and self._header is not None
            if self._payload_got == len(self._payload):
                h = self._header
                if newest is not None:
                    self.skipped += 1
                if self.last_seq is not None and h.seq > self.last_seq + 1:
                    self.gaps += h.seq - self.last_seq - 1
                self.last_seq = h.seq
                self.received += 1
                newest = ReceivedFrame(h.width, h.height, h.seq, h.capture_ts, h.send_ts, time.time(), self._payload)
                self._hdr_got = 0
                self._header = None
                self._payload = None

    def poll(self, timeout: float) -> ReceivedFrame | None:
        if self.sock is None:
            raise ConnectionError("not connected")
        deadline = time.monotonic() + timeout
        while True:
            frame = self._recv_available()
            if frame is not None or self.sock is None:
                return frame
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            readable, _, _ = select.select([self.sock], [], [], left)
            if not readable:
                return None
