"""The face-marking page (`stream-animator mark`): a small local web page to place a character's face marks by hand.

`MarkServer` serves one picture on 127.0.0.1 under a random token (nothing else on the machine
can guess the address; nothing is reachable from the network). The page shows the picture with
the marks as draggable dots (the sidecar's if there is one, else the face tracker's guess, else
a template in the middle), a kind menu, "Preview" (the character moving with the bundled
driving clip, rendered here from the current marks: a few PNG frames the page cycles through)
and "Save" (validated like any sidecar, written atomically). Standard library `http.server` in
a thread: one user, a handful of requests.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np

from worker.characters.face_marks import (
    KINDS,
    OPTIONAL,
    REQUIRED,
    default_marks,
    load_face_marks,
    marks_from_landmarks,
    parse_face_marks,
    save_face_marks,
    sidecar_path,
)
from worker.characters.image_io import load_image
from worker.errors import UserError, os_reason
from worker.paths import SAMPLE_DRIVER

log = logging.getLogger(__name__)

PREVIEW_SIZE = 256
PREVIEW_FRAMES = 12  # driver frames in the preview loop
PREVIEW_STEP = 4  # ... every this many frames of the clip


class MarkServer:
    """Serves the marking page for `image` until `close()`."""

    def __init__(self, image: str | Path, port: int = 0) -> None:
        self.image = Path(image)
        loaded = load_image(self.image)  # UserError if unreadable
        self.rgba = loaded.rgba
        self.height, self.width = self.rgba.shape[:2]
        self.token = secrets.token_urlsafe(18)
        self._driver: list | None = None
        self._lock = threading.Lock()
        ok, png = cv2.imencode(".png", cv2.cvtColor(self.rgba, cv2.COLOR_RGBA2BGRA))
        self._png = png.tobytes() if ok else b""
        if not 0 <= port <= 65535:
            raise UserError(f"--port {port}: not a port number (0-65535; 0 = any free port)")
        try:
            self._httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        except OSError as e:
            raise UserError(
                f"--port {port}: cannot listen on 127.0.0.1:{port} ({os_reason(e)}); choose another port "
                "or leave --port out (any free port)"
            ) from None
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="mark-page", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/{self.token}/"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    # --- what the page asks for -----------------------------------------------------------------
    def initial(self) -> dict:
        """The marks to start from, and where they came from."""
        try:
            marks = load_face_marks(self.image, self.width, self.height)
            origin = "sidecar"
        except UserError as e:  # a broken sidecar: start over, say why
            marks, origin = None, f"sidecar unusable ({e})"
        if marks is None:
            from worker.characters.face_finder import shared_finder

            found = shared_finder().find(np.ascontiguousarray(self.rgba[..., :3]))
            if found.found:
                marks, origin = marks_from_landmarks(found.landmarks), "tracker"
            else:
                marks, origin = default_marks(self.width, self.height), "template"
        return {
            "marks": marks.to_json(),
            "from": origin,
            "width": self.width,
            "height": self.height,
            "sidecar": sidecar_path(self.image).name,
            "required": REQUIRED,
            "optional": OPTIONAL,
            "kinds": KINDS,
        }

    def save(self, data: object) -> dict:
        marks = parse_face_marks(data, self.width, self.height, "marks")
        path = save_face_marks(self.image, marks)
        log.info("face marks saved to %s", path)
        return {"saved": str(path)}

    def preview(self, data: object) -> dict:
        """PNG frames (data URLs) of the character moving with the bundled clip, from `data`'s marks."""
        from worker.characters.preparer import preparer_tag
        from worker.characters.preprocess import PreprocessSettings, preprocess_image
        from worker.render.meshwarp import MeshWarpRenderer
        from worker.retarget.retargeter import Retargeter

        marks = parse_face_marks(data, self.width, self.height, "marks")
        with self._lock:
            driver = self._driving_faces()
            assets = preprocess_image(self.image, PreprocessSettings(size=PREVIEW_SIZE), marks=marks)
            renderer = MeshWarpRenderer(PREVIEW_SIZE)
            assets = replace(assets, arrays=renderer.prepare(assets.cutout), prepared_by=preparer_tag(renderer))
            rt = Retargeter(assets)
            frames = []
            for face, neutral in driver:
                rgba = renderer.render(assets, rt.retarget(face, neutral))
                a = rgba[..., 3:4].astype(np.float32) / 255.0  # over a light grey: the page's colour
                rgb = rgba[..., :3].astype(np.float32) * a + 235.0 * (1 - a)
                ok, png = cv2.imencode(".png", cv2.cvtColor(rgb.astype(np.uint8), cv2.COLOR_RGB2BGR))
                frames.append("data:image/png;base64," + base64.b64encode(png.tobytes()).decode())
        return {"frames": frames}

    def _driving_faces(self) -> list:
        """(face, neutral) of every PREVIEW_STEP-th frame of the bundled clip, tracked once."""
        if self._driver is None:
            from worker.capture.video import VideoFileSource
            from worker.track.mediapipe_tracker import FaceTracker

            src = VideoFileSource(SAMPLE_DRIVER)
            out = []
            try:
                with FaceTracker() as tracker:
                    for i in range(PREVIEW_FRAMES * PREVIEW_STEP):
                        frame = src.read()
                        if frame is None:
                            break
                        face = tracker.process(frame.image, frame.timestamp)
                        if i % PREVIEW_STEP == 0:
                            out.append((face, tracker.neutral))
            finally:
                src.close()
            self._driver = out
        return self._driver


def _handler(server: MarkServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt: str, *args) -> None:  # to the log, not the console
            log.debug("mark page: " + fmt, *args)

        def _route(self) -> str | None:
            prefix = f"/{server.token}/"
            if not self.path.startswith(prefix):
                self._send(403, b"forbidden", "text/plain")
                return None
            return self.path[len(prefix) :].split("?")[0]

        def _send(self, code: int, body: bytes, ctype: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _json(self, code: int, obj: object) -> None:
            self._send(code, json.dumps(obj).encode(), "application/json")

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            route = self._route()
            if route is None:
                return
            if route == "":
                self._send(200, PAGE.encode(), "text/html; charset=utf-8")
            elif route == "image":
                self._send(200, server._png, "image/png")
            elif route == "marks":
                self._json(200, server.initial())
            else:
                self._send(404, b"not found", "text/plain")

        def do_POST(self) -> None:  # noqa: N802
            route = self._route()
            if route is None:
                return
            try:
                n = int(self.headers.get("Content-Length", "0"))
                data = json.loads(self.rfile.read(min(n, 1 << 20)) or b"null")
                if route == "save":
                    self._json(200, server.save(data))
                elif route == "preview":
                    self._json(200, server.preview(data))
                else:
                    self._send(404, b"not found", "text/plain")
            except (UserError, ValueError) as e:
                self._json(400, {"error": str(e)})
            except Exception as e:  # the page shows one line; the log has the rest
                log.error("mark page: %s failed", route, exc_info=True)
                self._json(500, {"error": f"{type(e).__name__}: {e}"})

    return Handler


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Mark the face</title>
<style>
 body { font: 14px sans-serif; background: #ebebeb; margin: 16px; }
 #wrap { position: relative; display: inline-block; user-select: none; }
 #pic { display: block; max-width: 70vw; max-height: 80vh; }
 .dot { position: absolute; width: 12px; height: 12px; margin: -7px 0 0 -7px; border-radius: 50%;
        border: 2px solid #fff; cursor: grab; box-shadow: 0 0 2px #000; }
 .dot.req { background: #e5322d; } .dot.opt { background: #2d7be5; } .dot.sel { outline: 3px solid #ff0; }
 .lab { position: absolute; font-size: 11px; color: #fff; text-shadow: 0 0 3px #000; pointer-events: none; }
 #side { display: inline-block; vertical-align: top; margin-left: 16px; width: 280px; }
 #preview { width: 256px; height: 256px; background: #ddd; display: block; margin-top: 8px; }
 #status { margin-top: 8px; min-height: 2em; } .err { color: #b00; }
</style></head><body>
<div id="wrap"><img id="pic" src="image" alt="the character"></div>
<div id="side">
 <p>Drag the dots onto the face (<b>red</b>: needed, <b>blue</b>: optional). "Left" is the
 picture's left. Click the picture to move the selected dot there.</p>
 <label>Kind <select id="kind"></select></label>
 <p><button id="previewBtn">Preview</button> <button id="saveBtn">Save</button></p>
 <div id="status"></div>
 <img id="preview" alt="preview">
</div>
<script>
let info = null, marks = {}, selected = null, frames = [], frameTimer = null;
const pic = document.getElementById('pic'), wrap = document.getElementById('wrap');
const status = (t, err) => { const s = document.getElementById('status'); s.textContent = t;
  s.className = err ? 'err' : ''; };
function scale() { return pic.clientWidth / info.width; }
function place() {
  for (const d of wrap.querySelectorAll('.dot, .lab')) d.remove();
  const s = scale();
  for (const [k, p] of Object.entries(marks)) {
    const d = document.createElement('div');
    d.className = 'dot ' + (info.required.includes(k) ? 'req' : 'opt') + (k === selected ? ' sel' : '');
    d.id = 'dot-' + k; d.dataset.name = k;
    d.style.left = (p[0] * s) + 'px'; d.style.top = (p[1] * s) + 'px';
    d.addEventListener('mousedown', ev => { ev.preventDefault(); ev.stopPropagation(); selected = k; drag(ev); });
    const l = document.createElement('div'); l.className = 'lab'; l.textContent = k;
    l.style.left = (p[0] * s + 8) + 'px'; l.style.top = (p[1] * s - 6) + 'px';
    wrap.appendChild(d); wrap.appendChild(l);
  }
}
function toPic(ev) { const r = pic.getBoundingClientRect(), s = scale();
  return [Math.max(0, Math.min(info.width, (ev.clientX - r.left) / s)),
          Math.max(0, Math.min(info.height, (ev.clientY - r.top) / s))]; }
function drag(ev) {
  place();
  const move = e => { marks[selected] = toPic(e).map(v => Math.round(v * 10) / 10); place(); };
  const up = () => { document.removeEventListener('mousemove', move); document.removeEventListener('mouseup', up); };
  document.addEventListener('mousemove', move); document.addEventListener('mouseup', up);
}
pic.addEventListener('mousedown', ev => { if (selected) { marks[selected] = toPic(ev); place(); } });
function body() { return JSON.stringify(Object.assign({}, marks, {kind: document.getElementById('kind').value})); }
async function post(what) {
  const r = await fetch(what, {method: 'POST', headers: {'Content-Type': 'application/json'}, body: body()});
  const j = await r.json(); if (!r.ok) throw new Error(j.error); return j;
}
document.getElementById('saveBtn').onclick = async () => {
  try { const j = await post('save'); status('saved ' + j.saved); document.body.dataset.saved = '1'; }
  catch (e) { status(e.message, true); }
};
document.getElementById('previewBtn').onclick = async () => {
  status('rendering the preview...');
  try {
    const j = await post('preview'); frames = j.frames; let i = 0;
    clearInterval(frameTimer);
    const show = () => { const p = document.getElementById('preview'); p.src = frames[i % frames.length];
      p.dataset.frame = String(i); i++; };
    show(); frameTimer = setInterval(show, 160); status('preview: ' + frames.length + ' frames');
  } catch (e) { status(e.message, true); }
};
fetch('marks').then(r => r.json()).then(j => {
  info = j; const { kind, ...pts } = j.marks; marks = pts;
  const sel = document.getElementById('kind');
  for (const k of j.kinds) {
    const o = document.createElement('option'); o.value = o.textContent = k; sel.appendChild(o); }
  sel.value = kind;
  const ready = () => { place(); document.body.dataset.ready = '1';
    status('marks from the ' + j.from + '; save writes ' + j.sidecar); };
  if (pic.complete && pic.naturalWidth) ready(); else pic.onload = ready;
  window.addEventListener('resize', place);
});
</script></body></html>
"""
