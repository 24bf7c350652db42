"""The per-frame chain after tracking: retarget the face onto the current character and render it.

The live render stage's one collaborator (the offline tools run the same steps in `worker/tools/offline.py`). Per
character, the `Retargeter` (built from cached assets) is kept, so switching back and forth costs
nothing after the first time. Renderers that draw from the face and its video frame instead of a
retargeted pose (`Renderer.uses_pose` False: liveportrait) skip the retargeter and get the motion
settings themselves (`Renderer.set_motion`).
"""

from __future__ import annotations

import time
from collections import OrderedDict

import numpy as np

from worker.characters.assets import CharacterAssets
from worker.render import FrameInput, create_renderer
from worker.retarget.mouth_signal import MouthSignal
from worker.retarget.retargeter import Retargeter, RetargetOptions
from worker.track.face_state import FaceState


class Animator:
    """Retargeter per character (kept) + one renderer; `animate` draws one frame."""

    def __init__(
        self,
        renderer: str = "meshwarp",
        size: int = 512,
        options: RetargetOptions | None = None,
        renderer_opts: dict | None = None,
    ) -> None:
        self.renderer = create_renderer(renderer, size=size, **(renderer_opts or {}))
        self.size = size
        self.options = options or RetargetOptions()
        self.options.validate()
        self.renderer.set_motion(self.options)
        self.assets: CharacterAssets | None = None
        self._retargeters: OrderedDict[str, Retargeter] = OrderedDict()
        self.last_ms = {"retarget": 0.0, "render": 0.0}

    def set_character(self, assets: CharacterAssets) -> None:
        self.assets = assets
        if self.renderer.uses_pose:
            self._retargeter(assets)

    def calibrate(self) -> None:
        """The next frame's face is the neutral for a renderer that keeps its own (the tracker's is reset apart)."""
        self.renderer.calibrate()

    def describe_renderer(self) -> tuple[str, str]:
        """(name, why it runs and how it runs here) for the status."""
        r = self.renderer
        line = r.status_line()
        return r.name, "; ".join(p for p in (r.selection, line) if p)

    def set_options(self, **changes) -> None:
        """Change retarget options live (expression/head strength, mirror, idle, lipsync)."""
        for k, v in changes.items():
            if not hasattr(self.options, k):
                raise KeyError(f"unknown motion option {k!r}")
            setattr(self.options, k, v)
        self.options.validate()
        for r in self._retargeters.values():
            r.options = self.options
        self.renderer.set_motion(self.options)

    def _retargeter(self, assets: CharacterAssets) -> Retargeter:
        r = self._retargeters.get(assets.key)
        if r is None:
            r = Retargeter(assets, self.options)
            self._retargeters[assets.key] = r
            while len(self._retargeters) > 32:
                self._retargeters.popitem(last=False)
        self._retargeters.move_to_end(assets.key)
        return r

    def animate(
        self,
        face: FaceState | None,
        neutral: FaceState | None,
        mouth: MouthSignal | None = None,
        frame: np.ndarray | None = None,
    ) -> np.ndarray:
        """RGBA frame of the current character following `face` (relative to `neutral`); `mouth`
        (the voice) moves the mouth as `options.lipsync` says; `frame` is the BGR image `face` was
        tracked on."""
        if self.assets is None:
            raise RuntimeError("no character set")
        t0 = time.perf_counter()
        pose = self._retargeter(self.assets).retarget(face, neutral, mouth) if self.renderer.uses_pose else None
        t1 = time.perf_counter()
        rgba = self.renderer.draw(self.assets, FrameInput(face, neutral, frame, pose))
        t2 = time.perf_counter()
        self.last_ms = {"retarget": (t1 - t0) * 1000.0, "render": (t2 - t1) * 1000.0}
        return rgba

    def close(self) -> None:
        self.renderer.close()
