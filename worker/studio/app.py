"""`Studio`: the studio page's routes on the worker's one web server (`worker.web.WebServer`).

Every route is behind the server's token check. Handlers are thin: they read the request, run
the studio's plain functions (`characters`, `clips`, `settings`, `live`, the marking page's
`MarkSession`) off the event loop, and answer JSON; errors are one line (``{"ok": false,
"error": ...}``) with 400 for bad input, 404 for what is not there, 409 for a busy character,
413 for an oversized upload. Long work (prepare, render, calibrate) is a background job.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from aiohttp import BodyPartReader, web

from worker.errors import UserError
from worker.paths import SAMPLE_DRIVER
from worker.studio import settings as settings_mod
from worker.studio.characters import MAX_UPLOAD_BYTES, Characters
from worker.studio.clips import MAX_DRIVER_BYTES, MAX_RECORDING_BYTES, ClipRequest, Clips
from worker.studio.jobs import Busy, JobRunner
from worker.studio.live import WorkerLink
from worker.web import WebServer, json_error

log = logging.getLogger(__name__)


class TooLarge(UserError):
    pass


@dataclass
class StudioPaths:
    characters: Path  # the pictures (uploads go here, nowhere else)
    config: Path  # the YAML file Settings and Voice write
    clips: Path  # rendered talking clips
    cache: Path  # prepared characters, lip-sync packages, uploaded recordings


def default_config_path() -> Path:
    """The user's config file, beside the web address in the user's settings folder
    (~/.config/stream-animator/config.yaml on Linux; $STREAM_ANIMATOR_CONFIG overrides the folder)."""
    from worker.web.settings import settings_dir

    return settings_dir() / "config.yaml"


def default_paths(config: str | Path | None = None) -> StudioPaths:
    """Folders from the config file (characters.folder, cache_dir) or the defaults."""
    import platformdirs

    from worker.config import load_settings
    from worker.paths import default_cache_dir

    cfg_path = Path(config).expanduser() if config else default_config_path()
    cfg = load_settings(cfg_path if cfg_path.exists() else None)
    clips = Path(platformdirs.user_videos_dir()) / "stream-animator"
    cache = Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir()
    return StudioPaths(Path(cfg.characters.folder).expanduser(), cfg_path, clips, cache)


class Studio:
    """The studio's state (folders, jobs, mark sessions) and its routes on `server`."""

    def __init__(
        self,
        server: WebServer,
        paths: StudioPaths,
        size: int = 512,
        renderer: str = "meshwarp",
        link: WorkerLink | None = None,
    ) -> None:
        from worker.characters.cache import open_cache

        self.server = server
        self.paths = paths
        self.characters = Characters(paths.characters, open_cache(paths.cache), size, renderer)
        self.clips = Clips(self.characters, paths.clips, paths.cache, paths.config)
        self.jobs = JobRunner()
        self.link = link or WorkerLink()
        self._marks: dict[str, Any] = {}
        self._routes(server)

    def url(self, view: str = "") -> str:
        return self.server.url("/studio") + (f"#{view}" if view else "")

    def close(self) -> None:
        self.jobs.close()
        self.clips.close()

    # --- routes ----------------------------------------------------------------------------------
    def _routes(self, s: WebServer) -> None:
        s.add_page("/studio", "studio.html")
        s.add_get("/api/studio", self._wrap(self.info))
        s.add_get("/api/characters", self._wrap(self.list_characters))
        s.add_get("/api/characters/{name}/thumb", self._wrap(self.thumbnail))
        s.add_post("/api/characters", self._wrap(self.upload))
        s.add_post("/api/characters/{name}/prepare", self._wrap(self.prepare))
        s.add_get("/api/jobs", self._wrap(self.list_jobs))
        s.add_get("/api/jobs/{id}", self._wrap(self.job))
        s.add_post("/api/jobs/{id}/cancel", self._wrap(self.cancel))
        s.add_get("/api/clips", self._wrap(self.list_clips))
        s.add_post("/api/clips", self._wrap(self.render))
        s.add_get("/api/clips/{name}", self._wrap(self.clip_file))
        s.add_get("/api/settings", self._wrap(self.get_settings))
        s.add_post("/api/settings", self._wrap(self.save_settings))
        s.add_get("/api/voices", self._wrap(self.voices))
        s.add_post("/api/voice/calibrate", self._wrap(self.calibrate))
        s.add_get("/api/live", self._wrap(self.live))
        s.add_post("/api/live/character", self._wrap(self.live_character))
        s.add_page("/mark/{name}/", self._wrap(self.mark_page))
        s.add_get("/mark/{name}/image", self._wrap(self.mark_image))
        s.add_get("/mark/{name}/marks", self._wrap(self.mark_initial))
        s.add_post("/mark/{name}/save", self._wrap(self.mark_save))
        s.add_post("/mark/{name}/preview", self._wrap(self.mark_preview))

    @staticmethod
    def _wrap(handler):
        async def run(request: web.Request) -> web.StreamResponse:
            try:
                out = await handler(request)
            except TooLarge as e:
                return json_error(413, str(e))
            except Busy as e:
                return json_error(409, str(e))
            except settings_mod.FieldErrors as e:
                return web.json_response({"ok": False, "error": str(e), "fields": e.errors}, status=400)
            except UserError as e:
                return json_error(404 if "no such" in str(e) else 400, str(e))
            except web.HTTPException:
                raise
            except Exception as e:
                log.error("studio: %s %s failed", request.method, request.path, exc_info=True)
                return json_error(500, f"{type(e).__name__}: {e}")
            return out if isinstance(out, web.StreamResponse) else web.json_response(out)

        return run

    @staticmethod
    async def _off(fn, *args, **kw):
        """Run blocking work on a thread: the page never waits on the event loop."""
        return await asyncio.get_running_loop().run_in_executor(None, partial(fn, *args, **kw))

    # --- characters ------------------------------------------------------------------------------
    async def info(self, request: web.Request) -> dict:
        from worker.studio.clips import FORMATS

        return {
            "characters": str(self.paths.characters),
            "config": str(self.paths.config),
            "clips": str(self.paths.clips),
            "formats": list(FORMATS),
            "limits": {"picture": MAX_UPLOAD_BYTES, "recording": MAX_RECORDING_BYTES, "driver": MAX_DRIVER_BYTES},
        }

    async def list_characters(self, request: web.Request) -> dict:
        return {"folder": str(self.characters.folder), "characters": await self._off(self.characters.list)}

    async def thumbnail(self, request: web.Request) -> web.Response:
        png = await self._off(self.characters.thumbnail, request.match_info["name"])
        return web.Response(body=png, content_type="image/png")

    async def upload(self, request: web.Request) -> dict:
        parts = await _read_form(request, {"file": MAX_UPLOAD_BYTES})
        if "file" not in parts:
            raise UserError("upload: no file in the request (form field 'file')")
        name, data = parts["file"]
        return {"ok": True, "character": await self._off(self.characters.add, name, data)}

    async def prepare(self, request: web.Request) -> dict:
        name = request.match_info["name"]
        self.characters.path(name)  # a missing one is refused now, not in the job
        job = self.jobs.submit("prepare", name, partial(self.characters.prepare, name))
        return {"ok": True, "job": job.to_dict()}

    # --- jobs ------------------------------------------------------------------------------------
    async def list_jobs(self, request: web.Request) -> dict:
        return {"jobs": [j.to_dict() for j in self.jobs.list()]}

    async def job(self, request: web.Request) -> dict:
        return {"job": self.jobs.get(request.match_info["id"]).to_dict()}

    async def cancel(self, request: web.Request) -> dict:
        return {"ok": True, "job": self.jobs.cancel(request.match_info["id"]).to_dict()}

    # --- talking clips ---------------------------------------------------------------------------
    async def list_clips(self, request: web.Request) -> dict:
        return {"folder": str(self.paths.clips), "clips": await self._off(self.clips.list)}

    async def render(self, request: web.Request) -> dict:
        form = await _read_form(request, {"recording": MAX_RECORDING_BYTES, "driver_file": MAX_DRIVER_BYTES})
        text = _field(form, "text")
        req = ClipRequest(
            character=_field(form, "character"),
            lines=text.splitlines() if _field(form, "batch") == "1" else [" ".join(text.split())],
            voice=_field(form, "voice") or None,
            format=_field(form, "format") or "mp4",
        )
        self.characters.path(req.character)
        if "recording" in form:
            name, data = form["recording"]
            req.recording = await self._off(self.clips.save_upload, name, data, "recording")
        driver = _field(form, "driver") or "idle"
        if driver == "bundled":
            req.driver = SAMPLE_DRIVER
        elif driver == "file":
            if "driver_file" not in form:
                raise UserError("driver: choose a driving video file")
            name, data = form["driver_file"]
            req.driver = await self._off(self.clips.save_upload, name, data, "driver")
        elif driver != "idle":
            raise UserError(f"driver: {driver!r} is not one of idle, bundled, file")
        req.check()
        job = self.jobs.submit("render", req.character, partial(self.clips.render, req))
        return {"ok": True, "job": job.to_dict()}

    async def clip_file(self, request: web.Request) -> web.StreamResponse:
        path = self.clips.clip_path(request.match_info["name"])
        headers = {}
        if request.query.get("download"):
            headers["Content-Disposition"] = f'attachment; filename="{path.name}"'
        return web.FileResponse(path, headers=headers)

    # --- settings and voice ----------------------------------------------------------------------
    async def get_settings(self, request: web.Request) -> dict:
        return await self._off(settings_mod.describe, self.paths.config)

    async def save_settings(self, request: web.Request) -> dict:
        body = await _json(request)
        changes = body.get("changes") if isinstance(body, dict) else None
        if not isinstance(changes, dict) or not changes:
            raise UserError('settings: send {"changes": {"section.key": value, ...}}')
        result = await self._off(settings_mod.save, self.paths.config, changes)
        if "characters.folder" in result["keys"]:  # the page follows the folder chosen in Settings
            from worker.config import load_settings

            folder = Path(load_settings(self.paths.config).characters.folder).expanduser()
            if folder.is_dir():
                self.paths.characters = self.characters.folder = folder
                self._marks.clear()
        live = sorted(set(result["keys"]) & _live_keys())
        if live:  # a running worker takes the live settings at once
            opts = {k: settings_mod.parse_value(k, changes[k]) for k in live}
            try:
                reply = await self._off(self.link.request, "set_options", options=opts)
                result["applied_live"] = sorted(reply.get("options") or {})  # what the worker took
            except UserError:
                pass
        return {"ok": True, **result}

    async def voices(self, request: web.Request) -> dict:
        from worker.audio.sources import microphones_and_reason
        from worker.audio.tts import list_voices

        voices = await self._off(list_voices)
        mics, why = await self._off(microphones_and_reason)
        return {"voices": voices, "microphones": [m.as_dict() for m in mics], "microphones_why": why}

    async def calibrate(self, request: web.Request) -> dict:
        from worker.retarget.mouth_signal import VOWELS

        form = await _read_form(request, {v: MAX_RECORDING_BYTES for v in (*VOWELS, "silence")})
        missing = [v for v in VOWELS if v not in form]
        if missing:
            raise UserError(f"calibrate: a recording for each vowel is needed (missing: {', '.join(missing)})")
        files = {}
        for v in (*VOWELS, "silence"):
            if v in form:
                files[v] = await self._off(self.clips.save_upload, form[v][0], form[v][1], "recording")
        job = self.jobs.submit("calibrate", "voice", partial(_calibrate, files, self.paths.config))
        return {"ok": True, "job": job.to_dict()}

    # --- live ------------------------------------------------------------------------------------
    async def live(self, request: web.Request) -> dict:
        return await self._off(self.link.status)

    async def live_character(self, request: web.Request) -> dict:
        body = await _json(request)
        name = body.get("character") if isinstance(body, dict) else None
        if not isinstance(name, str) or not name:
            raise UserError('live: send {"character": NAME}')
        return {"ok": True, "result": await self._off(self.link.set_character, name)}

    # --- the marking page ------------------------------------------------------------------------
    def _mark(self, name: str):
        from worker.studio.mark_page import MarkSession

        path = self.characters.path(name)
        session = self._marks.get(name)
        if session is None or session.image != path:
            session = self._marks[name] = MarkSession(path)
        return session

    async def mark_page(self, request: web.Request) -> web.Response:
        from worker.web import STATIC_DIR

        self.characters.path(request.match_info["name"])
        html = (STATIC_DIR / "mark.html").read_text(encoding="utf-8")
        return web.Response(text=html, content_type="text/html")

    async def mark_image(self, request: web.Request) -> web.Response:
        session = await self._off(self._mark, request.match_info["name"])
        return web.Response(body=session.png, content_type="image/png")

    async def mark_initial(self, request: web.Request) -> dict:
        session = await self._off(self._mark, request.match_info["name"])
        return await self._off(session.initial)

    async def mark_save(self, request: web.Request) -> dict:
        session = await self._off(self._mark, request.match_info["name"])
        return await self._off(session.save, await _json(request))

    async def mark_preview(self, request: web.Request) -> dict:
        session = await self._off(self._mark, request.match_info["name"])
        return await self._off(session.preview, await _json(request))


def _live_keys() -> set[str]:
    from worker.config import LIVE_KEYS

    return set(LIVE_KEYS)


def _calibrate(files: dict[str, Path], config: Path, job) -> dict:
    from worker.audio.calibration import MAX_RECORDING_S, calibrate
    from worker.audio.sources import decode_audio
    from worker.config import store_voice_calibration
    from worker.retarget.mouth_signal import VOWELS

    job.step(0, 3, "reading the recordings")
    what = "a calibration recording (a held vowel takes a few seconds)"
    recordings = {v: decode_audio(files[v], MAX_RECORDING_S, what) for v in VOWELS}
    silence = decode_audio(files["silence"], MAX_RECORDING_S, what) if "silence" in files else None
    job.step(1, 3, "measuring your vowels")
    profile = calibrate(recordings, silence, source="files")
    job.step(2, 3, "storing voice.calibration")
    store_voice_calibration(config, profile)
    return {"config": str(config), "floor_db": round(profile.floor_db, 1), "peak_db": round(profile.peak_db, 1)}


async def _json(request: web.Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise UserError("the request body is not JSON") from None


def _field(form: dict, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


async def _read_form(request: web.Request, limits: dict[str, int]) -> dict[str, Any]:
    """A multipart form: text fields as str, files (only those named in `limits`) as (name, bytes).
    A file over its limit is refused as soon as it passes the limit: nothing of it is kept."""
    if not request.content_type.startswith("multipart/"):
        raise UserError("upload: send a multipart form")
    reader = await request.multipart()
    out: dict[str, Any] = {}
    while True:
        part = await reader.next()
        if part is None:
            return out
        if not isinstance(part, BodyPartReader) or not part.name:
            continue
        if part.filename is None:
            out[part.name] = (await part.read(decode=True))[:100_000].decode("utf-8", "replace")
            continue
        if not part.filename:  # a form's file input left empty
            await part.release()
            continue
        limit = limits.get(part.name)
        if limit is None:
            raise UserError(f"upload: unexpected file field {part.name!r}")
        buf = bytearray()
        while chunk := await part.read_chunk(1 << 16):
            buf += chunk
            if len(buf) > limit:
                raise TooLarge(f"{part.filename}: refused: larger than the {limit >> 20} MB upload limit")
        # browsers and aiohttp escape some characters of a file name (%22 for a quote): read it back
        out[part.name] = (unquote(part.filename), bytes(buf))
