"""The face-marking page: place a character's face marks by hand (part of the studio).

The page (`worker/web/static/mark.html`, served by the studio at ``/mark/NAME/``) shows the
picture with the marks as draggable dots (the sidecar's if there is one, else the face tracker's
guess, else a template in the middle), a kind menu, "Preview" (the character moving with the
bundled driving clip, rendered here from the current marks: a few PNG frames the page cycles
through) and "Save" (validated like any sidecar, written atomically). `MarkSession` is what the
page asks for; `MarkServer` is the studio opened on one picture's folder at its marking page
(`stream-animator mark IMAGE`), on 127.0.0.1 under a random token.
"""

from __future__ import annotations

import base64
import logging
import threading
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote

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
from worker.errors import UserError
from worker.paths import SAMPLE_DRIVER

log = logging.getLogger(__name__)

PREVIEW_SIZE = 256
PREVIEW_FRAMES = 12  # driver frames in the preview loop
PREVIEW_STEP = 4  # ... every this many frames of the clip


class MarkSession:
    """One picture being marked: what the page asks for (the starting marks, save, preview)."""

    def __init__(self, image: str | Path) -> None:
        self.image = Path(image)
        loaded = load_image(self.image)  # UserError if unreadable
        self.rgba = loaded.rgba
        self.height, self.width = self.rgba.shape[:2]
        self._driver: list | None = None
        self._lock = threading.Lock()
        ok, png = cv2.imencode(".png", cv2.cvtColor(self.rgba, cv2.COLOR_RGBA2BGRA))
        self.png = png.tobytes() if ok else b""

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
            if found.found and found.landmarks is not None:
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


class MarkServer:
    """The studio for `image`'s folder, serving until `close()`; `url` opens the marking page."""

    def __init__(self, image: str | Path, port: int = 0, cache: str | Path | None = None) -> None:
        from worker.paths import default_cache_dir
        from worker.studio.app import Studio, StudioPaths, default_paths
        from worker.web import WebServer

        self.image = Path(image)
        self.height, self.width = load_image(self.image).rgba.shape[:2]  # unreadable: one line, nothing started
        if not 0 <= port <= 65535:
            raise UserError(f"--port {port}: not a port number (0-65535; 0 = any free port)")
        paths = default_paths()
        paths = StudioPaths(self.image.parent, paths.config, paths.clips, Path(cache) if cache else default_cache_dir())
        self.web = WebServer(port=port, name="mark page")
        self.studio = Studio(self.web, paths)
        try:
            self.web.start()
        except UserError as e:
            self.studio.close()
            why = str(e).rsplit(": ", 1)[-1]
            raise UserError(
                f"--port {port}: cannot listen on 127.0.0.1:{port} ({why}); choose another port "
                "or leave --port out (any free port)"
            ) from None
        self.token = self.web.token

    def api(self, what: str) -> str:
        """The address of one of the page's requests (marks, save, preview), token included."""
        return self.web.url(f"/mark/{quote(self.image.name)}/{what}")

    @property
    def url(self) -> str:
        return self.web.url(f"/mark/{quote(self.image.name)}/")

    def close(self) -> None:
        self.web.stop()
        self.studio.close()
