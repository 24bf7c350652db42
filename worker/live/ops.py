"""The control channel's op table: each op of the protocol (`P.OPS`, bar ``subscribe``, which the
server serves itself) and the function that answers it.

Runs on the control server's thread, so every op only sets a flag in `Controls` or looks
something up; the stage threads act on it at their next frame.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from worker.config import LIVE_KEYS, check_key
from worker.control import protocol as P
from worker.errors import UserError
from worker.live.ports import Characters, Fanout
from worker.live.stages import Controls, StageThreads

Op = Callable[[dict], dict]


class ControlOps:
    """`table` maps each op to its function; the parts it acts on are the stages'."""

    def __init__(self, stages: StageThreads, status: Callable[[], P.Status]) -> None:
        self.stages = stages
        self.controls: Controls = stages.controls
        self.roster: Characters = stages.roster
        self.fanout: Fanout = stages.fanout
        self._status = status
        self.table: dict[str, Op] = {
            "status": lambda args: self._status().to_dict(),
            "list_characters": lambda args: self.character_list().to_dict(),
            "set_character": self.set_character,
            "calibrate": self.calibrate,
            "pause": lambda args: self._pause(True),
            "resume": lambda args: self._pause(False),
            "mute": lambda args: self._mute(True),
            "unmute": lambda args: self._mute(False),
            "set_options": self.set_options,
            "reload_characters": self.reload_characters,
            "shutdown": self.shutdown,
        }

    def request(self, op: str, args: dict) -> dict:
        fn = self.table.get(op)
        if fn is None:
            from worker.control.server import UnknownOp

            raise UnknownOp(op)
        return fn(args)

    def character_list(self) -> P.CharacterList:
        rows = [P.CharacterRow.from_dict(r) for r in self.roster.describe()]
        return P.CharacterList(rows, self.stages.character)

    def set_character(self, args: dict) -> dict:
        cid = self.roster.resolve(self.stages.character, args.get("character"), args.get("index"), args.get("step"))
        self.controls.request_character(cid, self.stages.rendered)
        return {"character": cid, "ready": self.roster.get(cid) is not None}

    def calibrate(self, args: dict) -> dict:
        self.controls.calibrate = True
        self.controls.calibrate_render = True
        return {"calibrating": True}

    def _pause(self, paused: bool) -> dict:
        self.controls.paused = paused
        return {"paused": paused}

    def _mute(self, muted: bool) -> dict:
        voice = self.stages.voice
        if voice is None:
            raise UserError("no voice input: start the worker with --mic (or voice.mic in the config)")
        voice.muted = muted  # the analyser shuts the mouth from its next hop on
        return {"muted": muted}

    def set_options(self, args: dict) -> dict:
        opts = args.get("options")
        if not isinstance(opts, dict) or not opts:
            raise UserError("set_options needs 'options': a mapping of settings")
        changes: dict[str, Any] = {}
        for key, value in opts.items():
            if key.startswith("outputs."):  # "outputs.nut": false switches that output off
                if not isinstance(value, bool):
                    raise UserError(f"option {key!r} must be true or false")
                self.fanout.set_enabled(key.split(".", 1)[1], value)
                changes[key] = value
                continue
            if key not in LIVE_KEYS:
                raise UserError(
                    f"option {key!r} cannot change live (live: {', '.join(sorted(LIVE_KEYS))}, outputs.<name>)"
                )
            check_key(key, value)  # names the key on error; the stages take the value
            changes[key] = value
        # outputs.* took effect above; the rest at the next frame
        self.controls.add_options({k: v for k, v in changes.items() if not k.startswith("outputs.")})
        return {"options": changes}

    def reload_characters(self, args: dict) -> dict:
        self.roster.reload()
        return {"reloading": True}

    def shutdown(self, args: dict) -> dict:
        self.stages.stop_event.set()
        return {"stopping": True}
