"""`LivePortraitRenderer`: a still character animated by LivePortrait's networks.

Use:

    r = LivePortraitRenderer(size=512, device="auto")      # sessions, prepared graphs
    arrays = r.prepare_picture(rgba, landmarks)               # once per character (cache it)
    rgba_out = r.drive(arrays, Driver(frame_rgb, landmarks, timestamp))    # per frame
    r.calibrate()                                             # next driver frame = neutral
    rgba_out = r.draw(assets, FrameInput(face, neutral, frame_bgr))   # the pipeline's per-frame entry

In the product it runs through `Renderer.draw` like every renderer (the live Animator, the
offline loop): `draw` takes the `CharacterAssets` (their arrays prepared and cached on disk by the
character cache, keyed by `name`, `prepare_version` and `prepare_key`, the hash of the graphs
`prepare` runs) and the captured BGR frame with its tracked face; the retargeted pose is not used
(`uses_pose` False), the motion settings arrive through `set_motion`.

Two network sets (weights.NET_SETS): characters of kind `animal` (their face marks) run on
LivePortrait's animal model from `models/liveportrait_animal/` when it is present and verified,
everything else on the human set; `net_set` is the one place that chooses, `prepare` records the
choice in the arrays (`net_set`) and the per-frame path follows it. The animal set loads on first
use; `availability` (whether the renderer can run at all) is about the human set.

`prepare` runs F and M on the character's 256² crop and returns plain arrays (f_s in FP16, the
rest float32, the picture uint8), so the character cache can store them as .npy keyed by `name`
+ `prepare_version`. The per-frame path builds everything that depends only on the character and
the output size once (f_s and the paste-back's maps uploaded to the device) and then per frame
does: crop the driver (one warpAffine), M, the keypoint maths, smoothing, stitching and
retargeting (tiny MLPs), the render cache lookup, and on a miss W+G, whose graph ends with the
paste-back into the picture (so a GPU does it) and hands out the finished RGBA frame.

What our own code costs per frame (`python -m worker.tools.liveportrait_overhead`, `bench
--renderer liveportrait`): docs/performance.md.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from worker.characters.assets import CharacterAssets
from worker.characters.preparer import CutOut
from worker.errors import UserError
from worker.render.base import FrameInput, Renderer
from worker.render.liveportrait import crop, motion
from worker.render.liveportrait.graph_prep import (
    CACHE_DIR,
    GEN_SIZE_KEY,
    PASTE_INPUTS,
    Variant,
    _sha256,
    prepared_graph,
)
from worker.render.liveportrait.networks import NET_NAMES, SPECS, Bound, Network, warp_paste_spec
from worker.render.liveportrait.providers import ProviderChoice, choose
from worker.render.liveportrait.render_cache import RenderCache
from worker.render.liveportrait.smoothing import MotionSmoother
from worker.render.liveportrait.weights import (
    LP_PREFIX,
    NET_SETS,
    STANDIN_ENV,
    check_all,
    default_models_dir,
    set_file,
    standin_dir,
)
from worker.render.registry import LP_PRECISION
from worker.retarget.idle import Idle
from worker.track import landmark_ids as L
from worker.track.features import eye_openness

log = logging.getLogger(__name__)

PREPARE_VERSION = 2  # 2: `net_set`, the network set the arrays were made with
SET_NAMES = tuple(NET_SETS)  # index stored in the prepared arrays' `net_set`
IOD_IN_KP_UNITS = 0.3  # about one inter-ocular distance in LivePortrait's keypoint units
LIP_NORMALIZE_THRESHOLD = 0.03  # LivePortrait's: source lip ratio below this counts as closed
GRID_SAMPLE = ("auto", "native", "rewrite")
PRECISION = LP_PRECISION.choices  # auto: FP16 on GPU providers, FP32 on the CPU
SLOW_NOTE_AFTER = 30  # frames: on the CPU, say once how slow it is here (measured, not guessed)


@dataclass
class Driver:
    """One driving frame: the video frame (H, W, 3) uint8 RGB and its MediaPipe landmarks
    (478, 3) in that frame's pixels (`FaceState.landmarks`). `found` False (face lost) holds the
    last motion and eases it to the neutral by `lost_blend` (0..1, `FaceState.lost_blend`)."""

    frame: np.ndarray | None
    landmarks: np.ndarray | None
    timestamp: float = 0.0
    found: bool = True
    lost_blend: float = 0.0
    bgr: bool = False  # the frame is BGR (as captured): only the 256² crop is converted

    @classmethod
    def from_face(cls, frame: np.ndarray | None, face, bgr: bool = False) -> Driver:
        """From a `worker.track.FaceState` and the frame it was tracked on."""
        return cls(frame, face.landmarks, face.timestamp, bool(face.found), float(face.lost_blend), bgr)


def lip_ratio(landmarks: np.ndarray) -> float:
    """Inner-lip gap / mouth width (LivePortrait's lip-close ratio, MediaPipe points 13/14, 61/291)."""
    p = np.asarray(landmarks, np.float64)[:, :2]
    gap = np.linalg.norm(p[13] - p[14])
    width = np.linalg.norm(p[L.MOUTH_LEFT_CORNER] - p[L.MOUTH_RIGHT_CORNER]) + 1e-6
    return float(gap / width)


def availability(models_dir: Path | None = None, net_set: str = "human") -> tuple[bool, str]:
    """(True, 'ready') when onnxruntime imports and every weight file of `net_set` (human: the
    renderer's own; animal: the optional set for animal characters) is present and verified (or,
    in tests, when `$STREAM_ANIMATOR_STANDIN_MODELS` holds the six stand-in graphs)."""
    prefix = NET_SETS[net_set]
    try:
        import onnxruntime  # noqa: F401
    except ImportError as e:
        return False, f"not usable: onnxruntime cannot be imported ({e})"
    standin = standin_dir()
    if standin is not None and (models_dir is None or Path(models_dir) == standin):
        files = [set_file(s.file, prefix) for s in SPECS.values()]
        missing = [f for f in files if not (standin / f).is_file()]
        if missing:
            return False, f"not usable: {STANDIN_ENV}={standin} lacks {', '.join(missing)}"
        return True, f"ready with STAND-IN graphs from {STANDIN_ENV} (tests only: not LivePortrait's weights)"
    try:
        states = check_all(models_dir, prefix=prefix)
    except UserError as e:
        return False, f"not usable: {e}"
    bad = [s for s in states if not s.ok]
    if not states:
        return False, f"not usable: models/manifest.json lists no {prefix.rstrip('/')} weights"
    if bad:
        what = ", ".join(f"{s.path.split('/')[-1]} {s.state}{' (' + s.detail + ')' if s.detail else ''}" for s in bad)
        return False, f"not ready: weights {what}; run: stream-animator models --download"
    return True, "ready"


ARCH_RECORD = "BUILD.json"  # written by worker.tools.liveportrait_graphs beside real-architecture graphs
RANDOM_ARCH = "real architecture, RANDOM weights (not LivePortrait's; unverified)"


def weights_label(models_dir: Path, unverified: bool = False) -> str:
    """What a models folder holds, for every status line and bench: "verified published weights",
    "STAND-IN graphs ...", "real architecture, RANDOM weights ..." or "UNVERIFIED files ...".
    Files that are not verified run only when `unverified` is asked for (UserError otherwise)."""
    models_dir = Path(models_dir)
    built = any((d / ARCH_RECORD).is_file() for d in (models_dir, models_dir / "liveportrait"))
    if models_dir == standin_dir():  # the tests' variable; it may point at a real-architecture build
        return RANDOM_ARCH if built else "STAND-IN graphs (tests only; not LivePortrait)"
    ok, why = availability(models_dir)
    if ok:
        return "verified published weights"
    if not unverified:
        raise UserError(
            f"renderer liveportrait: {models_dir}: {why}; "
            "to run files that are not verified anyway (labelled UNVERIFIED), pass unverified "
            "(--unverified, renderer option `unverified: true`)"
        )
    return RANDOM_ARCH if built else f"UNVERIFIED files from {models_dir}"


def load_networks(
    models_dir: Path,
    choice: ProviderChoice,
    precision: str = "auto",
    grid_sample: str = "auto",
    paste_size: int = 0,
    prefix: str = LP_PREFIX,
    threads: int = 0,
) -> dict[str, Network]:
    """The six sessions of the set under `prefix`, each graph prepared for the chosen provider
    (see graph_prep); with `paste_size`, W+G also pastes its output into the `paste_size`² picture
    (on the device). `precision` fp16 on the CPU runs the GPU graph set (FP16, GridSample
    rewritten) there, for checks; fp32 is the switch for GPUs whose FP16 misbehaves."""
    if grid_sample not in GRID_SAMPLE:
        raise UserError(f"render.grid_sample: {grid_sample!r} is not one of {', '.join(GRID_SAMPLE)}")
    if precision not in PRECISION:
        raise UserError(f"renderer.precision: {precision!r} is not one of {', '.join(PRECISION)}")
    gpu = choice.gpu
    half = gpu if precision == "auto" else precision == "fp16"
    rewrite = grid_sample == "rewrite" or (grid_sample == "auto" and (gpu or precision == "fp16"))
    nets = {}
    for key, spec in SPECS.items():
        src = Path(models_dir) / set_file(spec.file, prefix)
        if not src.is_file():
            raise UserError(f"{src}: missing (run: stream-animator models --download)")
        if key == "M":
            variant = Variant()  # the motion extractor stays FP32 everywhere
        elif key == "W":
            native_cuda = choice.device == "cuda" and not rewrite
            variant = Variant(opset20=native_cuda, rewrite=rewrite, fp16=half, paste=paste_size)
            if paste_size:
                spec = warp_paste_spec(paste_size)
        else:
            variant = Variant(fp16=half)
        try:
            nets[key] = Network(spec, prepared_graph(src, variant), choice, source=src, threads=threads)
        except UserError as e:
            if not variant.fp16:
                raise
            # a graph our FP16 pass cannot make loadable still runs in FP32 (slower, same output)
            log.warning("%s; running %s in FP32", e, spec.file)
            fallback = Variant(opset20=variant.opset20, rewrite=variant.rewrite, fp16=False, paste=variant.paste)
            nets[key] = Network(spec, prepared_graph(src, fallback), choice, source=src, threads=threads)
    feat, want = nets["F"].out_shapes[0], nets["W"].in_shapes[0]
    if feat != want:
        raise UserError(
            f"{nets['W'].source}: its feature input is {want} but {nets['F'].source} makes {feat}: "
            "the two files come from different builds"
        )
    return nets


def _graphs_key(models_dir: Path, prefixes: list[str]) -> str:
    """12 hex digits naming the graphs `prepare` may run (F, M, lip of each set in use): prepared
    arrays made with other weights (say, the stand-ins, or the human set for an animal character
    before the animal set was installed) never pass for these."""
    import hashlib

    h = hashlib.sha256()
    for prefix in prefixes:
        h.update(prefix.encode())
        for key in ("F", "M", "lip"):
            src = Path(models_dir) / set_file(SPECS[key].file, prefix)
            h.update(_sha256(src, src.parent / CACHE_DIR).encode())
    return h.hexdigest()[:12]


class _Meter:
    """Wall and thread-CPU seconds of our own code per part, network runs inside subtracted.
    CPU time is the honest cost on a shared machine (other processes do not inflate it)."""

    PARTS = ("crop", "motion", "paste")

    def __init__(self, nets: dict[str, Network]):
        self.nets = list(nets.values())
        self.wall = dict.fromkeys(self.PARTS, 0.0)
        self.cpu = dict.fromkeys(self.PARTS, 0.0)

    def start(self) -> tuple[float, float, float, float]:
        return (time.perf_counter(), time.thread_time(), *self._nets())

    def _nets(self) -> tuple[float, float]:
        return sum(n.seconds for n in self.nets), sum(n.cpu_seconds for n in self.nets)

    def stop(self, part: str, t: tuple[float, float, float, float]) -> None:
        nw, nc = self._nets()
        self.wall[part] += time.perf_counter() - t[0] - (nw - t[2])
        self.cpu[part] += time.thread_time() - t[1] - (nc - t[3])


class _Character:
    """Everything per character and output size, built on its first frame."""

    def __init__(self, arrays: dict[str, np.ndarray], nets: dict[str, Network], size: int):
        a = arrays
        self.nets = nets  # the network set the arrays were prepared with: M, stitching, W+G per frame
        self.src = motion.Motion(
            float(a["angles"][0]), float(a["angles"][1]), float(a["angles"][2]),
            a["t"].astype(np.float64), a["exp"].astype(np.float64), float(a["scale"][0]), a["x_c"].astype(np.float64),
        )  # fmt: skip
        self.x_s = a["x_s"].astype(np.float64)
        self.lip_delta = a["lip_delta"].astype(np.float64)
        self.eye_ratio = a["eye_ratio"].astype(np.float64)
        self.lip_ratio = float(a["lip_ratio"][0])
        self.x_s32 = self.x_s.astype(np.float32)
        W = nets["W"]
        self.on_device = GEN_SIZE_KEY in W.meta  # W+G pastes into the picture itself
        self.gen = int(W.meta[GEN_SIZE_KEY]) if self.on_device else W.out_shapes[0][-1]  # 512 for LivePortrait
        image = a["image"]
        h, w = image.shape[:2]
        base = image if (w, h) == (size, size) else cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
        to_picture = np.array([[w / size, 0.0, 0.0], [0.0, h / size, 0.0]])
        M_out = crop.compose(
            crop.scale_matrix(self.gen / 256.0), crop.compose(a["crop_M"].astype(np.float64), to_picture)
        )
        # everything fixed lives on the device once (f_s, and the paste-back's maps); per frame
        # only the keypoints move, and one copy comes out
        fixed = {0: a["f_s"].astype(np.float32)}
        if self.on_device:
            pb = crop.paste_inputs(base, M_out, self.gen)
            fixed.update({3 + i: pb[k] for i, k in enumerate(PASTE_INPUTS)})
            self.paste = None
        else:
            self.paste = crop.PasteBack(base, M_out, self.gen)
        self.warp: Bound = W.bind(fixed)
        self.size = size


class LivePortraitRenderer(Renderer):
    """LivePortrait through ONNX Runtime.

    Options: `device` auto|cuda|dml|coreml|cpu; `fp16` (default: on GPU providers); `grid_sample`
    auto|native|rewrite (how W's 5-D GridSample runs on GPUs); `expression_strength` (scales the
    driver's expression change), `head_strength` (scales its head rotation, translation and
    scale change), `mirror` (the driver as in a mirror), `smoothing` (One Euro on the driving
    motion), `stitching`, `eye_retarget` and `lip_retarget` (lids and mouth from the tracked
    ratios through the retargeting networks, instead of the motion extractor's expression on
    those keypoints), `normalize_lip` (close the character's lips at rest when not lip-
    retargeting), `cache_frames` (0 disables the render cache), `hold` (hold-still threshold),
    `idle` (while the face is lost: the retarget stage's sway, breathing and blinks),
    `device_paste` (W+G pastes its face into the picture itself, on the GPU; else OpenCV does it).
    """

    name = "liveportrait"
    prepare_version = PREPARE_VERSION
    uses_pose = False  # draws from the driver's face crop, not the retargeted pose

    def __init__(
        self,
        size: int = 512,
        models_dir: Path | str | None = None,
        models: Path | str | None = None,
        device: str = "auto",
        precision: str = "auto",
        unverified: bool = False,
        grid_sample: str = "auto",
        expression_strength: float = 1.0,
        head_strength: float = 1.0,
        mirror: bool = False,
        smoothing: bool = True,
        stitching: bool = True,
        eye_retarget: bool = True,
        lip_retarget: bool = True,
        normalize_lip: bool = True,
        cache_frames: int = 64,
        hold: float = 0.002,
        idle: bool = True,
        device_paste: bool = True,
        threads: int = 0,
    ) -> None:
        super().__init__(size)
        models_dir = models or models_dir  # `models`: the registry's option name
        self.models_dir = Path(models_dir) if models_dir else default_models_dir()
        self.standin = self.models_dir == standin_dir()
        self.weights = weights_label(self.models_dir, unverified)
        self.choice = choose(device)
        self.precision = precision
        self._load = (precision, grid_sample, size if device_paste else 0)
        self._threads = threads  # ONNX Runtime's threads per session (0: its default, all cores)
        self.nets = load_networks(self.models_dir, self.choice, *self._load, threads=threads)
        self.sets: dict[str, dict[str, Network]] = {"human": self.nets}  # the animal set loads on first use
        self._sets_lock = threading.Lock()
        animal_ok, why = availability(self.models_dir, "animal")
        self._animal_missing = None if animal_ok else why
        self._fallback_said = False
        # cached arrays are F's and M's: keyed by the graphs of every set in use
        self.prepare_key = _graphs_key(self.models_dir, [NET_SETS[n] for n in self.usable_sets()])
        self.expression_strength = float(expression_strength)
        self.head_strength = float(head_strength)
        self.mirror = bool(mirror)
        self.stitching, self.eye_retarget, self.lip_retarget = stitching, eye_retarget, lip_retarget
        self.normalize_lip = normalize_lip
        self.smoother = MotionSmoother() if smoothing else None
        self.idle = Idle() if idle else None
        self.cache = RenderCache(capacity=cache_frames, hold=hold)
        excluded = (motion.EYE_KP if eye_retarget else ()) + (motion.LIP_KP if lip_retarget else ())
        self.exp_mask = motion.region_mask(excluded) if excluded else None
        self._char: _Character | None = None
        self._char_id: tuple | None = None
        self.neutral: motion.Motion | None = None
        self.neutral_ratios: np.ndarray | None = None
        self._calibrate = True
        self._last: np.ndarray | None = None  # last driving vector (for face loss)
        self.meter = _Meter(self.nets)
        self.frames = 0
        self._final_status = ""
        for net in self.nets.values():
            log.info("%s", net.line)
        log.info("%s", self.choice.line())
        if self.standin:
            log.warning("liveportrait: STAND-IN graphs from %s (tests only; not LivePortrait)", STANDIN_ENV)
        if not self.choice.gpu:
            log.warning(
                "liveportrait on the CPU: fine for offline renders, too slow for live "
                "(ms per frame here logged after %d frames)",
                SLOW_NOTE_AFTER,
            )

    # ------------------------------------------------------------------ description

    availability = staticmethod(availability)

    def provider_lines(self) -> list[str]:
        """One line per network: where it actually runs (and why not where asked)."""
        return [self.choice.line()] + [n.line for n in self.nets.values()]

    def network_ms(self) -> dict[str, float]:
        return {NET_NAMES[k]: round(n.ms, 3) for k, n in self.nets.items()}

    def own_ms(self, cpu: bool = False) -> dict[str, float]:
        """Our own code's mean ms per frame around the networks (wall, or this thread's CPU)."""
        n = max(self.frames, 1)
        src = self.meter.cpu if cpu else self.meter.wall
        return {k: round(1000.0 * v / n, 3) for k, v in src.items()}

    def status_line(self) -> str:
        if not self.nets and self._final_status:
            return self._final_status  # closed: what it measured while it ran
        ms = self.network_ms()
        per_frame = sum(ms.get(k, 0.0) for k in ("motion", "warp+generator", "stitching", "eye", "lip"))
        fps = 1000.0 / per_frame if per_frame else 0.0
        s = f"liveportrait ({self.weights}) on {self.choice.device}: "
        s += f"~{per_frame:.0f} ms of networks per new frame (~{fps:.1f} FPS)" if self.frames else "no frame yet"
        if not self.choice.gpu:
            s += " - the CPU is fine for offline renders, too slow for live"
        return s

    def set_motion(self, options) -> None:
        """Expression and head strength, mirror and idle life from the motion settings
        (`RetargetOptions`), as the mesh warp gets them through the retargeter."""
        self.expression_strength = float(options.expression_strength)
        self.head_strength = float(options.head_strength)
        self.mirror = bool(options.mirror)
        if bool(options.idle) != (self.idle is not None):
            self.idle = Idle() if options.idle else None

    # ------------------------------------------------------------------ network sets

    def usable_sets(self) -> list[str]:
        return ["human"] if self._animal_missing else ["human", "animal"]

    def net_set(self, kind: str) -> str:
        """The one choice of network set per character kind: animal characters get LivePortrait's
        animal model when its weights are present and verified, everything else the human one."""
        if kind != "animal":
            return "human"
        if not self._animal_missing:
            return "animal"
        if not self._fallback_said:
            self._fallback_said = True
            log.warning("liveportrait: animal character uses the human model; animal set %s", self._animal_missing)
        return "human"

    def _nets(self, name: str) -> dict[str, Network]:
        """The sessions of set `name`, loaded on first use (the loader thread may ask first)."""
        with self._sets_lock:
            if name not in self.sets:
                nets = load_networks(
                    self.models_dir, self.choice, *self._load, prefix=NET_SETS[name], threads=self._threads
                )
                for net in nets.values():
                    log.info("%s (%s set)", net.line, name)
                self.meter.nets.extend(nets.values())
                self.sets[name] = nets
            return self.sets[name]

    # ------------------------------------------------------------------ per character

    def prepare(self, character: CutOut) -> dict[str, np.ndarray]:
        """The `Renderer` step: `prepare_picture` of the character's cut-out picture, marks and kind."""
        return self.prepare_picture(character.image, character.landmarks, character.kind)

    def prepare_picture(self, rgba: np.ndarray, landmarks: np.ndarray, kind: str = "human") -> dict[str, np.ndarray]:
        """Per-character arrays from a straight RGBA picture and its (478, 3) landmarks in pixels;
        `kind` (human | animal | drawn) picks the network set (`net_set`).
        Safe on a loader thread while another thread renders (ONNX Runtime sessions allow
        concurrent runs; nothing here touches the per-frame state).

        Runs F once and M once. Returns plain numeric arrays (cache them as .npy): `f_s`
        (1, 32, 16, 64, 64) float16; float32 `x_c`, `R`, `exp`, `t`, `scale`, `angles` (pitch,
        yaw, roll in degrees), `x_s` (the character's keypoints), `lip_delta` (lip
        normalisation), `eye_ratio`, `lip_ratio`, `crop_M` / `crop_inv` (picture <-> 256² crop,
        2×3), `paste_mask` (256² feather); `net_set` (index into SET_NAMES); and `image`, the
        uint8 picture pasted into.
        """
        rgba = np.asarray(rgba)
        if rgba.ndim != 3 or rgba.shape[2] != 4 or rgba.dtype != np.uint8:
            raise UserError(f"liveportrait.prepare: expected (H, W, 4) uint8 RGBA, got {rgba.shape} {rgba.dtype}")
        lm = np.asarray(landmarks, np.float64)
        if lm.ndim != 2 or lm.shape[0] < 478:
            raise UserError(f"liveportrait.prepare: expected (478, 3) landmarks, got {lm.shape}")
        set_name = self.net_set(kind)
        nets = self._nets(set_name)
        M = crop.crop_matrix(lm, 256, crop.SOURCE_SCALE, crop.SOURCE_VY)
        inp = crop.to_network(crop.warp_crop(crop.flatten_alpha(rgba), M, 256))
        f_s = nets["F"].run(inp)[0]
        src = motion.Motion.from_outputs(*nets["M"].run(inp))
        x_s = src.keypoints()
        eye_l, eye_r = eye_openness(lm)
        lip = lip_ratio(lm)
        # lip normalisation (LivePortrait's): close lips that are open at rest, leave closed ones alone
        lip_delta = np.zeros((motion.N_KP, 3))
        if lip >= LIP_NORMALIZE_THRESHOLD:
            lip_delta = nets["lip"].run(motion.lip_input(x_s, lip, 0.0))[0].reshape(motion.N_KP, 3)
        return {
            "f_s": np.ascontiguousarray(f_s, np.float16),
            "x_c": src.kp.astype(np.float32),
            "R": src.R.astype(np.float32),
            "exp": src.exp.astype(np.float32),
            "t": src.t.astype(np.float32),
            "scale": np.array([src.scale], np.float32),
            "angles": np.array([src.pitch, src.yaw, src.roll], np.float32),
            "x_s": x_s.astype(np.float32),
            "lip_delta": lip_delta.astype(np.float32),
            "eye_ratio": np.array([eye_l, eye_r], np.float32),
            "lip_ratio": np.array([lip], np.float32),
            "crop_M": M.astype(np.float32),
            "crop_inv": crop.invert(M).astype(np.float32),
            "paste_mask": crop.feather_mask(256),
            "net_set": np.array([SET_NAMES.index(set_name)], np.uint8),
            "image": np.ascontiguousarray(rgba),
        }

    def _character(self, arrays: dict[str, np.ndarray]) -> _Character:
        # by content, not identity: a cache may hand out fresh (memory-mapped) arrays per call
        set_name = SET_NAMES[int(np.asarray(arrays["net_set"])[0])]
        key = (
            np.asarray(arrays["x_s"]).tobytes(),
            np.asarray(arrays["crop_M"]).tobytes(),
            arrays["image"].shape,
            set_name,
        )
        ch = self._char
        if ch is None or self._char_id != key:  # (the two are set and cleared together)
            if ch is not None and ch.nets is not self.sets.get(set_name):
                self._calibrate = True  # the other set's motion extractor: its neutral does not carry over
            ch = self._char = _Character(arrays, self._nets(set_name), self.size)
            self._char_id = key
            self.cache.clear()
        return ch

    # ------------------------------------------------------------------ per frame

    def calibrate(self) -> None:
        """The next driver frame with a face becomes the neutral that motion is relative to."""
        self._calibrate = True

    def _driver_vector(self, drv: Driver) -> np.ndarray:
        """[pitch, yaw, roll, t, log s, exp(63), eye L, eye R, lip] of the driver's frame, by the
        motion extractor of the current character's set."""
        nets = self._char.nets if self._char is not None else self.nets
        landmarks, frame = drv.landmarks, drv.frame
        assert landmarks is not None and frame is not None  # drive() comes here only with both
        t0 = self.meter.start()
        M = crop.crop_matrix(landmarks, 256, crop.DRIVER_SCALE, crop.DRIVER_VY)
        if self.mirror:
            M = crop.compose(crop.mirror_matrix(256), M)
        face = crop.warp_crop(frame, M, 256)
        inp = crop.to_network(face[..., ::-1] if drv.bgr else face)
        eye_l, eye_r = eye_openness(landmarks)
        if self.mirror:
            eye_l, eye_r = eye_r, eye_l
        ratios = [eye_l, eye_r, lip_ratio(landmarks)]
        self.meter.stop("crop", t0)
        m = motion.Motion.from_outputs(*nets["M"].run(inp))
        return np.concatenate([m.vector(), ratios])

    def driving_keypoints(self, ch: _Character, v: np.ndarray | None) -> np.ndarray:
        """x_d for driving vector `v` (None: the character at rest), all deltas applied."""
        src = ch.src
        if v is None or self.neutral is None:
            x_d = ch.x_s.copy()
            if self.normalize_lip and not self.lip_retarget:
                x_d = x_d + ch.lip_delta
            drv_ratios = None
        else:
            drv = src.from_vector(v[:70])
            x_d = motion.relative_keypoints(
                src, drv, self.neutral, self.expression_strength, self.head_strength, self.exp_mask
            )
            drv_ratios = v[70:]
            if self.normalize_lip and not self.lip_retarget:
                x_d = x_d + ch.lip_delta
        n = self.neutral_ratios  # set with the neutral: there whenever drv_ratios is
        if self.eye_retarget:
            target = float(np.mean(ch.eye_ratio))
            if drv_ratios is not None and n is not None:
                gain = 0.5 * (drv_ratios[0] / max(n[0], 1e-3) + drv_ratios[1] / max(n[1], 1e-3))
                target *= 1.0 + self.expression_strength * (gain - 1.0)
            target = float(np.clip(target, 0.0, 0.8))
            d = ch.nets["eye"].run(motion.eye_input(ch.x_s, ch.eye_ratio[0], ch.eye_ratio[1], target))[0]
            x_d = motion.apply_delta(x_d, d)
        if self.lip_retarget:
            target = ch.lip_ratio
            if drv_ratios is not None and n is not None:
                target += self.expression_strength * (drv_ratios[2] - n[2])
            target = float(np.clip(target, 0.0, 1.2))
            d = ch.nets["lip"].run(motion.lip_input(ch.x_s, ch.lip_ratio, target))[0]
            x_d = motion.apply_delta(x_d, d)
        if self.stitching:
            x_d = motion.apply_stitching(x_d, ch.nets["S"].run(motion.stitching_input(ch.x_s, x_d))[0])
        return x_d

    def draw(self, assets: CharacterAssets, inp: FrameInput) -> np.ndarray:
        """One frame of `assets` (`CharacterAssets`, prepared through the character cache or here
        once) driven by the face in `inp.frame` (BGR, as captured); `inp.pose` is not used."""
        face = inp.face
        if face is None:
            driver = Driver(None, None, found=False)
        else:
            driver = Driver.from_face(inp.frame, face, bgr=True)
        out = self.drive(self.prepared(assets), driver)
        if self.frames == SLOW_NOTE_AFTER and not self.choice.gpu:
            log.warning("%s", self.status_line())
        return out

    def drive(self, arrays, driver: Driver) -> np.ndarray:
        """The character (`prepare`'s arrays, or an object whose `.arrays` are they) driven by one
        driver frame: straight RGBA uint8 (size, size, 4). `draw` comes here; tools that hold
        the driver's RGB frame and landmarks call it directly."""
        if not isinstance(driver, Driver):
            raise UserError(
                "renderer liveportrait draws from the driver's video frame and landmarks "
                f"(a liveportrait.Driver), not from a {type(driver).__name__}: this pipeline does not feed it yet"
            )
        if not isinstance(arrays, dict) and hasattr(arrays, "arrays"):
            arrays = arrays.arrays
        if "f_s" not in arrays or "net_set" not in arrays:
            raise UserError("liveportrait.render: these arrays were not made by LivePortraitRenderer.prepare")
        ch = self._character(arrays)
        self.frames += 1
        found = driver.found and driver.landmarks is not None and driver.frame is not None
        v = None
        if found:
            raw = self._driver_vector(driver)
            t0 = self.meter.start()
            if self._calibrate or self.neutral is None:
                self.neutral = ch.src.from_vector(raw[:70])
                self.neutral_ratios = raw[70:].copy()
                self._calibrate = False
                if self.smoother:
                    self.smoother.reset()
            v = self.smoother(raw, driver.timestamp) if self.smoother else raw
            self._last = v
        else:
            t0 = self.meter.start()
            if self._last is not None and self.neutral is not None:
                rest = np.concatenate([self.neutral.vector(), self.neutral_ratios])
                b = float(np.clip(driver.lost_blend, 0.0, 1.0))
                v = (1.0 - b) * self._last + b * rest
                if self.idle is not None and b > 0:
                    v = self._idle_life(self.idle, v, b, driver.timestamp)
        x_d = self.driving_keypoints(ch, v)
        self.meter.stop("motion", t0)
        frame, key = self.cache.lookup(x_d)
        if frame is not None:
            return frame.copy()
        img = ch.warp(x_d.astype(np.float32), ch.x_s32)[0]
        t0 = self.meter.start()
        if ch.paste is None:  # on the device: W+G pasted it
            out = img.reshape(ch.size, ch.size, 4)
        else:
            out = ch.paste(self._to_rgb(img))
        self.meter.stop("paste", t0)
        self.cache.store(key, x_d, out)
        return out.copy()

    @staticmethod
    def _idle_life(idle: Idle, v: np.ndarray, b: float, t: float) -> np.ndarray:
        """The retarget stage's idle motion (sway, breathing, blinks) mixed in by `b`."""
        m = idle.sample(t)
        v = v.copy()
        v[0:3] += b * np.array([m.pitch, m.yaw, m.roll])
        v[4] += b * m.dy * IOD_IN_KP_UNITS
        v[6] += b * np.log(m.scale)
        v[70:72] *= 1.0 - b * m.blink
        return v

    @staticmethod
    def _to_rgb(img: np.ndarray) -> np.ndarray:
        """(1, 3, G, G) float in [0, 1] -> (G, G, 3) uint8 (clipped)."""
        chw = np.asarray(img, np.float32).reshape(3, img.shape[-2], img.shape[-1])
        # negatives to 0 (convertScaleAbs would mirror them); x255 saturates above and rounds
        return cv2.merge([cv2.convertScaleAbs(cv2.max(c, 0.0), alpha=255.0) for c in chw])

    def close(self) -> None:
        """Drop the sessions and everything bound on the device (frees GPU memory at once)."""
        if self.nets:
            self._final_status = self.status_line()
        self._char = None
        self._char_id = None
        self.cache.clear()
        self.nets = {}
        self.sets = {}

    def stats(self) -> dict:
        """Per-network ms, our own ms per frame, render-cache counters, where each network runs."""
        return {
            "device": self.choice.device,
            "providers": self.provider_lines(),
            "network_ms": self.network_ms(),
            "network_runs": {NET_NAMES[k]: n.runs for k, n in self.nets.items()},
            "network_runs_by_set": {s: {NET_NAMES[k]: n.runs for k, n in ns.items()} for s, ns in self.sets.items()},
            "own_ms": self.own_ms(),
            "own_ms_total": round(sum(self.own_ms().values()), 3),
            "own_cpu_ms": self.own_ms(cpu=True),
            "own_cpu_ms_total": round(sum(self.own_ms(cpu=True).values()), 3),
            "cache": self.cache.stats(),
        }
