"""The script's own threads: keep the worker running, talk to it, pump its frames into OBS.

OBS threads (UI callbacks, hotkeys, the per-frame timer) only call the `Engine` methods that
put a command on a queue or copy a snapshot: they never wait for a socket or a process. All
worker I/O happens here, in one control thread plus, for the direct output, one frame thread,
plus short-lived threads that run `worker cameras --json`, `worker microphones --json` and
`worker describe --json`.

The worker is the authority on its characters: which one is on stream comes from its
``character`` events (and `list_characters` on connect), the list from ``characters`` events.
The script only remembers what the streamer last chose, to ask for it again after a restart.
"""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import threading
import time
from collections import deque

from .backoff import Backoff
from .offer import Offer
from .settings import ScriptSettings
from .status import exit_text, format_status_line
from .worker_process import WorkerProcess, child_env, worker_command

READY_TIMEOUT = 120.0  # first start may preprocess characters and load models
STATUS_FILE_INTERVAL = 0.5
SHUTDOWN_GRACE = 2.0
PROBE_TIMEOUT = 60.0  # seconds for `worker cameras` / `worker describe`


def clean_state_dir(state_dir: str, now: float | None = None) -> list[str]:
    """Delete what earlier OBS sessions left behind (a killed OBS cannot tidy up): status files
    not updated for a minute (a live one is rewritten twice a second), configs and logs older
    than a week. Returns the removed paths."""
    now = time.time() if now is None else now
    removed: list[str] = []
    try:
        names = os.listdir(state_dir)
    except OSError:
        return removed
    for name in names:
        if not name.startswith(("status-", "worker-")):
            continue
        path = os.path.join(state_dir, name)
        try:
            age = now - os.path.getmtime(path)
            if (name.startswith("status-") and age > 60) or age > 7 * 86400:
                os.remove(path)
                removed.append(path)
        except OSError:
            pass
    return removed


def free_port() -> int:
    """A loopback TCP port that is free right now (for OBS's listening Media Source)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def camera_choices(text: str) -> list[dict]:
    """`worker cameras --json` (a list of {"index", "name", "width", "height"}) -> menu entries
    [{"value": "webcam:N", "name": str}]; ValueError when it printed something else."""
    out = []
    for item in json.loads(text):
        name = item["name"] or f"Camera {item['index']}"
        if item.get("width") and item.get("height"):
            name += f" ({item['width']}×{item['height']})"
        out.append({"value": f"webcam:{int(item['index'])}", "name": name})
    return out


def microphone_choices(text: str) -> list[dict]:
    """`worker microphones --json` (a list of {"index", "name", "default", ...}) -> menu entries
    [{"value": device name, "name": label}] (by name: indices move when devices come and go);
    ValueError when it printed something else."""
    out = []
    for item in json.loads(text):
        name = str(item["name"])
        label = f"{name} (default)" if item.get("default") else name
        out.append({"value": name, "name": label})
    return out


def _pct(values, q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


class FrameStats:
    """What the direct output delivered: counts, the last seq pushed into OBS, and latencies."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with getattr(self, "_lock", threading.Lock()):
            self.frames = 0
            self.first_frame_wall: float | None = None
            self.last_seq: int | None = None
            self.last_send_ts: float | None = None
            self.last_push_wall: float | None = None
            self.size: tuple[int, int] | None = None
            self.skipped = 0
            self.gaps = 0
            self._net_ms: deque = deque(maxlen=300)  # worker send -> received here
            self._push_ms: deque = deque(maxlen=300)  # worker send -> handed to OBS
            self._capture_ms: deque = deque(maxlen=300)  # camera capture -> handed to OBS

    def record(self, frame, pushed_wall: float, skipped: int, gaps: int) -> None:
        with self._lock:
            self.frames += 1
            if self.first_frame_wall is None:
                self.first_frame_wall = pushed_wall
            self.last_seq = frame.seq
            self.last_send_ts = frame.send_ts
            self.last_push_wall = pushed_wall
            self.size = (frame.width, frame.height)
            self.skipped, self.gaps = skipped, gaps
            self._net_ms.append((frame.recv_ts - frame.send_ts) * 1000.0)
            self._push_ms.append((pushed_wall - frame.send_ts) * 1000.0)
            self._capture_ms.append((pushed_wall - frame.capture_ts) * 1000.0)

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "frames": self.frames,
                "first_frame_wall": self.first_frame_wall,
                "last_seq": self.last_seq,
                "last_send_ts": self.last_send_ts,
                "last_push_wall": self.last_push_wall,
                "size": list(self.size) if self.size else None,
                "skipped": self.skipped,
                "gaps": self.gaps,
                "net_ms_p50": _pct(self._net_ms, 0.5),
                "net_ms_p95": _pct(self._net_ms, 0.95),
                "push_ms_p50": _pct(self._push_ms, 0.5),
                "push_ms_p95": _pct(self._push_ms, 0.95),
                "capture_to_obs_ms_p50": _pct(self._capture_ms, 0.5),
            }


class FramePump(threading.Thread):
    """Receives the worker's frames (newest wins) and hands each to `sink.push(frame)`."""

    def __init__(self, proto, port: int, token: str, sink, stats: FrameStats, log=None):
        super().__init__(name="stream-animator-frames", daemon=True)
        self.proto, self.port, self.token, self.sink, self.stats = proto, port, token, sink, stats
        self.log = log or (lambda msg: None)
        self._stop_event = threading.Event()
        self.error: str | None = None

    def stop(self, timeout: float = 1.0) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout)

    def run(self) -> None:
        rx = self.proto.FrameReceiver(self.port, self.token, connect_timeout=1.0)
        while not self._stop_event.is_set():
            if not rx.connected:
                try:
                    rx.connect()
                    self.error = None
                except (OSError, self.proto.ProtocolError) as e:
                    self.error = f"frame channel: {e}"
                    self._stop_event.wait(0.2)
                    continue
            try:
                frame = rx.poll(0.05)
            except (ConnectionError, OSError, self.proto.ProtocolError) as e:
                self.error = f"frame channel: {e}"
                rx.close()
                self._stop_event.wait(0.1)
                continue
            if frame is None:
                continue
            try:
                shown = self.sink.push(frame)
            except Exception as e:  # an OBS-side failure must not kill the pump
                self.error = f"pushing a frame into OBS failed: {e}"
                self.log(self.error)
                self._stop_event.wait(0.5)
                continue
            if shown is not False:  # False: no source to show it in (yet)
                self.stats.record(frame, time.time(), rx.skipped, rx.gaps)
        rx.close()


class Engine:
    """Worker lifecycle + control channel, in one thread of its own.

    `sink` (direct output only) has `push(frame)` and `clear()`; it is called from the frame
    thread. `status_path`, when given, receives a JSON snapshot twice a second (tests and
    support read it; it holds no secret).
    """

    def __init__(
        self,
        proto,
        repo_dir: str,
        state_dir: str,
        sink=None,
        token: str | None = None,
        parent_pid: int | None = None,
        status_path: str | None = None,
        log=None,
        backoff: Backoff | None = None,
    ):
        self.proto = proto
        self.repo_dir, self.state_dir, self.sink = repo_dir, state_dir, sink
        self.token = token or proto.make_token()
        self.parent_pid = parent_pid or os.getpid()
        self.status_path = status_path
        self.log = log or (lambda msg: None)
        self.backoff = backoff or Backoff()
        self.stats = FrameStats()
        tag = str(self.parent_pid)
        self.config_path = os.path.join(state_dir, f"worker-{tag}.yaml")
        self.stderr_path = os.path.join(state_dir, f"worker-{tag}-stderr.log")
        self.log_path = os.path.join(state_dir, f"worker-{tag}.log")

        self._q: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        # below: touched by the engine thread only (published through _snap)
        self.settings: ScriptSettings | None = None
        self.nut_port: int | None = None
        self._want_running = False
        self._next_start = 0.0
        self._proc: WorkerProcess | None = None
        self._client = None
        self._pump: FramePump | None = None
        self._desired: str | None = None  # the streamer's last choice, asked for again after a restart
        self._offer_path = os.path.join(state_dir, "describe.json")
        self._launched_live: dict = {}
        self._connect_deadline = 0.0
        self._describe_due = False  # a `describe` probe waits while a worker starts (both cost a CPU core)
        self._last_status_write = 0.0
        self._snap: dict = {
            "state": "stopped",
            "last_error": "",
            "restarts": 0,
            "worker": {},
            "latency_ms": None,
            "characters": [],
            "cameras": None,
            "microphones": None,
            "character": None,
            "offer": Offer.load(self._offer_path),
        }

    # ---- called from OBS threads: never block -------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="stream-animator-control", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 6.0) -> None:
        """Stop the worker and the threads (script unload). Bounded by `timeout` seconds."""
        if self._thread is None:
            return
        self._q.put(("quit",))
        self._thread.join(timeout)
        self._thread = None

    def apply_settings(self, settings: ScriptSettings, nut_port: int | None = None) -> None:
        self._q.put(("settings", settings, nut_port))

    def start_worker(self) -> None:
        self._q.put(("start",))

    def stop_worker(self) -> None:
        self._q.put(("stop",))

    def request(self, op: str, **args) -> None:
        """Queue a control request (calibrate, set_character, pause_toggle, reload_characters...)."""
        self._q.put(("op", op, args))

    def probe_cameras(self) -> None:
        """List the cameras and microphones and ask the worker what it offers again (Refresh button)."""
        self._q.put(("cameras",))

    def offer(self) -> Offer | None:
        """What the worker offers (renderers, outputs, ranges), once `describe` has answered
        (or from the copy an earlier session saved)."""
        with self._lock:
            return self._snap.get("offer")

    def snapshot(self) -> dict:
        with self._lock:
            snap = dict(self._snap)
        snap["frames"] = self.stats.snapshot()
        if snap.get("state") == "restarting":
            snap["restart_in"] = max(0.0, self._next_start - time.monotonic())
        snap["line"] = format_status_line(snap)
        snap["offer"] = snap["offer"].data if snap.get("offer") is not None else None
        return snap

    def report_problem(self, text: str) -> None:
        """A problem the script found (not the worker): shown in the status until the next one."""
        self._set(last_error=text)

    def current_character(self) -> str | None:
        with self._lock:
            return self._snap.get("character")

    # ---- the engine thread ---------------------------------------------------------------------

    def _set(self, **kw) -> None:
        with self._lock:
            self._snap.update(kw)

    def _run(self) -> None:
        try:
            while True:
                try:
                    item = self._q.get(timeout=0.02 if self._client else 0.1)
                except queue.Empty:
                    item = None
                while item is not None:
                    if item[0] == "quit":
                        return
                    self._handle(item)
                    try:
                        item = self._q.get_nowait()
                    except queue.Empty:
                        item = None
                self._step()
                self._poll_events()
                self._write_status()
        except Exception as e:  # keep OBS alive and say what happened
            self._set(state="error", last_error=f"internal error: {type(e).__name__}: {e}")
            self.log(f"engine crashed: {type(e).__name__}: {e}")
        finally:
            self._stop_worker(clear=True)  # no frozen face left on stream when the script goes
            self._set(state="stopped")
            self._write_status(force=True)

    def _handle(self, item) -> None:
        kind = item[0]
        if kind == "settings":
            _, new, nut_port = item
            old, self.settings = self.settings, new
            if nut_port:
                self.nut_port = nut_port
            if self._desired is None and new.character:
                self._desired = new.character
            if old is None or new.worker_python != old.worker_python:
                self._describe_due = True
            if self._proc is not None and old is not None and new.needs_restart(old):
                self.log("settings changed: restarting the worker")
                self._stop_worker(clear=False)
                self._next_start = 0.0
                self.backoff.reset()
            elif self._client is not None and old is not None and new.live_options() != old.live_options():
                self._call("set_options", options=new.live_options())
            elif self._want_running and self._proc is None:
                self._next_start = 0.0  # a fixed setting may make a failed start work now
        elif kind == "start":
            self._want_running = True
            self._next_start = 0.0
            self.backoff.reset()
            self._set(last_error="")
        elif kind == "stop":
            self._want_running = False
            self._stop_worker(clear=True)
            self._set(state="stopped", restart_in=None)
        elif kind == "op":
            self._op(item[1], item[2])
        elif kind == "cameras":
            self._probe("cameras", self._cameras)
            self._probe("microphones", self._microphones)
            self._probe("describe", self._describe)

    def _op(self, op: str, args: dict) -> None:
        if self._client is None:
            if op == "set_character" and "character" in args:  # remembered, asked for when the worker is up
                self._desired = args["character"]
                self._set(character=self._desired)
            else:  # an index or a step needs the worker's list and current character
                self._set(last_error=f"{op}: the worker is not running")
            return
        if op == "pause_toggle":
            paused = bool((self._snap.get("worker") or {}).get("paused"))
            op, args = ("resume" if paused else "pause"), {}
        elif op == "mute_toggle":
            muted = bool(((self._snap.get("worker") or {}).get("voice") or {}).get("muted"))
            op, args = ("unmute" if muted else "mute"), {}
        result = self._call(op, **args)
        if result is None:
            return
        if op == "set_character":  # on stream once the worker's `character` event says so
            self._desired = result["character"]
        elif op == "reload_characters":
            self._refresh_characters()
        elif op in ("pause", "resume"):
            w = dict(self._snap.get("worker") or {})
            w["paused"] = op == "pause"
            self._set(worker=w)
        elif op in ("mute", "unmute"):  # until the next status event says so too
            w = dict(self._snap.get("worker") or {})
            w["voice"] = {**(w.get("voice") or {}), "muted": op == "mute"}
            self._set(worker=w)

    def _call(self, op: str, **args) -> dict | None:
        """One request; errors become the status's last error, a lost connection drops it."""
        if self._client is None:
            return None
        try:
            result = self._client.request(op, **args)
            self._set(last_request={"op": op, "ok": True, "result": result, "wall": time.time()})
            return result
        except self.proto.RemoteError as e:
            self._set(last_error=str(e), last_request={"op": op, "ok": False, "error": e.message, "wall": time.time()})
            self.log(f"worker refused {op}: {e.message}")
        except (OSError, TimeoutError, self.proto.ProtocolError) as e:
            self._set(
                last_error=f"{op}: {e}", last_request={"op": op, "ok": False, "error": str(e), "wall": time.time()}
            )
            self._drop_client()
        return None

    def _step(self) -> None:
        now = time.monotonic()
        if self._describe_due and (self._proc is None or self._client is not None):
            # not while a worker starts: at OBS start both would load the same libraries on the
            # same cores, and the first frame on screen waits for the worker (the menus use the
            # copy an earlier session saved meanwhile)
            self._describe_due = False
            self._probe("describe", self._describe)
        if self._want_running and self._proc is None and now >= self._next_start:
            self._launch()
            return
        if self._proc is None:
            return
        rc = self._proc.poll()
        if rc is not None:
            self._on_exit(rc)
        elif self._client is None:
            ready = self._proc.ready
            if ready is not None:
                self._connect(ready)
            elif now - self._proc.started_at > READY_TIMEOUT:
                self._fail(f"the worker did not get ready within {READY_TIMEOUT:.0f} s", kill=True)

    def _launch(self) -> None:
        s = self.settings
        if s is None:
            return
        offer = self.offer()
        problems = s.problems(offer)
        if s.output_mode == "nut" and not self.nut_port:
            problems.append("Output: nut needs the Media Source's port")
        if problems:
            self._set(state="error", last_error=problems[0])
            self._next_start = float("inf")  # retried when settings change or Start is pressed
            return
        os.makedirs(self.state_dir, exist_ok=True)
        known = {c["id"] for c in self._snap.get("characters") or []}
        cfg = s.worker_config(self.nut_port, self._desired if self._desired in known else None, offer)
        tmp = self.config_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(cfg, f, indent=1)  # JSON is valid YAML
        os.replace(tmp, self.config_path)
        self._launched_live = s.live_options()
        argv = worker_command(
            s.worker_python, self.config_path, s.source_arg(), self.parent_pid, self.log_path, s.mic_arg(), s.lipsync
        )
        self._proc = WorkerProcess(argv, child_env(self.proto.ENV_TOKEN, self.token), self.repo_dir, self.stderr_path)
        try:
            self._proc.start()
        except OSError as e:
            self._proc = None
            self._fail(f"cannot start {s.worker_python}: {e}", kill=False)
            return
        self.log(f"worker started, pid {self._proc.pid}")
        self._set(state="starting", worker_pid=self._proc.pid, worker={})

    def _connect(self, ready: dict) -> None:
        # frames first: after a crash the picture is frozen until they flow, and the control
        # requests below (list, switch, options) wait on a worker that is still starting
        frame_error = self._start_frames(ready)
        if not self._connect_deadline:
            self._connect_deadline = time.monotonic() + 5.0
        try:
            client = self.proto.ControlClient(int(ready["control_port"]), self.token, timeout=2.0)
            client.connect()
            client.subscribe()
        except (OSError, TimeoutError, self.proto.ProtocolError) as e:
            if time.monotonic() > self._connect_deadline:
                self._fail(f"cannot talk to the worker: {e}", kill=True)
            return
        self._connect_deadline = 0.0
        self._client = client
        self._refresh_characters()
        if self._desired and self._desired != self._snap.get("character"):
            self._call("set_character", character=self._desired)
        if self.settings is not None and self.settings.live_options() != self._launched_live:
            self._call("set_options", options=self.settings.live_options())  # changed while starting
        frame_port = ready.get("frame_port")
        self._set(
            state="running", control_port=ready.get("control_port"), frame_port=frame_port, last_error=frame_error
        )
        self.log(f"worker ready (control port {ready.get('control_port')}, frame port {frame_port})")
        if ready.get("browser_source"):  # the "browser" mode: where the Browser Source points
            self._set(browser_source=ready["browser_source"])  # the script makes the source show it
            self.log(f"Browser Source page: {ready['browser_source']}")

    def _start_frames(self, ready: dict) -> str:
        """Start receiving the worker's frames (direct output; once per worker run); returns why
        there will be none, or ""."""
        if self.settings is None or self.settings.output_mode != "direct":
            return ""
        frame_port = ready.get("frame_port")
        if self.sink is None:
            return "the direct output does not work in this OBS: choose the Media Source (NUT) output"
        if not frame_port:
            return "the worker has no frame channel (obs output)"
        if self._pump is None:
            self.stats.reset()
            self._pump = FramePump(self.proto, int(frame_port), self.token, self.sink, self.stats, self.log)
            self._pump.start()
        return ""

    def _refresh_characters(self) -> None:
        result = self._call("list_characters")
        if result is not None:
            try:
                self._characters(result)
            except self.proto.ProtocolError as e:
                self._set(last_error=f"list_characters: {e}")

    def _characters(self, data: dict) -> None:
        lst = self.proto.CharacterList.from_dict(data)
        self._set(
            characters=[{"id": r.id, "name": r.name, "index": r.index, "state": r.state} for r in lst.characters],
            character=lst.current,
        )

    def _poll_events(self) -> None:
        if self._client is None:
            return
        try:
            ev = self._client.next_event(0.01)
        except (OSError, self.proto.ProtocolError):
            self._drop_client()
            return
        while ev is not None:
            try:
                self._on_event(ev.get("event"), ev.get("data"))
            except self.proto.ProtocolError as e:  # a worker of another version: say so once per kind
                self._set(last_error=f"worker event: {e}")
            try:
                ev = self._client.next_event(0.0)  # only lines already received: never waits
            except (OSError, self.proto.ProtocolError):
                self._drop_client()
                return

    def _on_event(self, name, data) -> None:
        if name == "status":
            st = self.proto.Status.from_dict(data)
            self._set(worker=st.to_dict(), latency_ms=st.shown_latency_ms())
        elif name == "character":  # a switch took effect
            sw = self.proto.CharacterSwitch.from_dict(data)
            self._desired = sw.character
            self._set(character=sw.character)
        elif name == "characters":  # the folder changed
            self._characters(data)

    def _drop_client(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _on_exit(self, rc: int) -> None:
        self._fail(exit_text(rc, self._proc.error_text() if self._proc else ""), kill=False)

    def _fail(self, message: str, kill: bool) -> None:
        """The worker died or is unusable: record why and schedule a restart with back-off."""
        run = self._proc.run_seconds() if self._proc else 0.0
        self._stop_worker(clear=False, grace=0.0 if kill else SHUTDOWN_GRACE)
        delay = self.backoff.next_delay(run)
        self._next_start = time.monotonic() + delay
        with self._lock:
            self._snap["restarts"] = self._snap.get("restarts", 0) + 1
        self._set(state="restarting" if self._want_running else "stopped", last_error=message)
        self.log(f"worker stopped ({message}); restarting in {delay:.1f} s")

    def _stop_worker(self, clear: bool, grace: float | None = None) -> None:
        # OBS calls first (frame thread, clearing the source): if unloading gives up waiting for
        # the process below, nothing touches OBS after the script is gone
        if self._pump is not None:
            self._pump.stop()
            self._pump = None
        if clear and self.sink is not None:
            try:
                self.sink.clear()
            except Exception as e:  # noqa: BLE001
                self.log(f"clearing the source failed: {e}")
        asked = False
        if self._client is not None:
            try:
                self._client.request("shutdown", timeout=1.0)
                asked = True
            except Exception:  # noqa: BLE001 - the worker may already be gone
                pass
            self._drop_client()
        if self._proc is not None:
            self._proc.stop(grace=(SHUTDOWN_GRACE if asked else 0.0) if grace is None else grace)
            self._proc = None
        self._connect_deadline = 0.0

    def _probe(self, command: str, take) -> None:
        """Run `worker <command> --json` on a thread of its own (never on OBS's or this one) and
        hand its stdout to `take`; failures are logged."""
        s = self.settings
        if s is None or not s.worker_python or not os.path.isfile(s.worker_python):
            return
        env = child_env(self.proto.ENV_TOKEN, "")
        env.pop(self.proto.ENV_TOKEN, None)
        argv = [s.worker_python, "-m", "worker", command, "--json"]

        def run() -> None:
            try:
                out = subprocess.run(
                    argv,
                    cwd=self.repo_dir,
                    env=env,
                    capture_output=True,
                    timeout=PROBE_TIMEOUT,
                    stdin=subprocess.DEVNULL,
                    creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
                )
                take(out.stdout.decode("utf-8", "replace"))
            except (OSError, subprocess.SubprocessError, ValueError, KeyError, TypeError) as e:
                self.log(f"worker {command} failed: {type(e).__name__}: {e}")

        threading.Thread(target=run, name=f"stream-animator-{command}", daemon=True).start()

    def _cameras(self, text: str) -> None:
        self._set(cameras=camera_choices(text))

    def _microphones(self, text: str) -> None:
        self._set(microphones=microphone_choices(text))

    def _describe(self, text: str) -> None:
        offer = Offer.from_json(text)
        self._set(offer=offer)
        try:
            os.makedirs(self.state_dir, exist_ok=True)
            offer.save(self._offer_path)  # the next OBS session has the menus at once
        except OSError as e:
            self.log(f"saving {self._offer_path} failed: {e}")

    def _write_status(self, force: bool = False) -> None:
        if not self.status_path:
            return
        now = time.monotonic()
        if not force and now - self._last_status_write < STATUS_FILE_INTERVAL:
            return
        self._last_status_write = now
        snap = self.snapshot()
        snap["updated_wall"] = time.time()
        snap["want_running"] = self._want_running
        snap["token_from_env"] = bool(os.environ.get(self.proto.ENV_TOKEN))
        try:
            os.makedirs(os.path.dirname(self.status_path) or ".", exist_ok=True)
            tmp = self.status_path + ".tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(snap, f, indent=1, default=str)
            os.replace(tmp, self.status_path)
        except OSError:
            pass
