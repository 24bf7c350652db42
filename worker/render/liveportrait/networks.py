"""ONNX Runtime sessions for LivePortrait's six networks, bound to their roles safely.

Each role has the tensor name the published files carry (as VisoMaster binds them: F `img` ->
`output`; M `img` -> `pitch, yaw, roll, t, exp, scale, kp`; W+G `feature_3d, kp_driving,
kp_source` -> `out`; stitching, eye and lip `input` -> `output`). A file that carries those names
is bound by them, whatever order it lists its tensors in (FasterLivePortrait's motion engines list
`kp` first; LivePortrait's own `warp_decode` takes the source before the driving keypoints).
Without the names, a role is bound by its element count (and rank) only where that is unique:
two unnamed tensors of the same shape (exp and kp, both [1, 63]; the two keypoint inputs, both
[1, 21, 3]; the three angle heads) cannot be told apart, and the file is refused with one line
naming it and the ambiguity, never bound by a guess. Inputs are cast to the session's dtype.

`Bound` is the per-frame path on any provider: inputs that never change (the character's
feature volume f_s) are uploaded once as OrtValues on the provider's device; per frame only the
small keypoint arrays are bound from host memory and the output is copied out once.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from worker.errors import UserError
from worker.render.liveportrait.providers import ProviderChoice, describe_session, ort_device

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tensor:
    role: str
    count: int  # number of elements (batch 1); 0: any (the feature volume's width differs by build)
    rank: int | None = None  # required rank, when several layouts would have the same count
    dtype: str = "float"  # 'float' matches float and float16; else the exact element type
    name: str = ""  # the name the published files give it ("" = the role)

    @property
    def published(self) -> str:
        return self.name or self.role


@dataclass(frozen=True)
class NetSpec:
    key: str
    file: str  # relative to the models folder
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]


_IMG256 = Tensor("image", 3 * 256 * 256, name="img")
_FEAT = Tensor("feature", 0, rank=5, name="output")  # LivePortrait's: 1 x 32 x 16 x 64 x 64


def _mlp(key: str, file: str, role_in: str, n_in: int, n_out: int) -> NetSpec:
    return NetSpec(key, file, (Tensor(role_in, n_in, name="input"),), (Tensor("delta", n_out, name="output"),))


SPECS = {
    "F": NetSpec("F", "liveportrait/appearance_feature_extractor.onnx", (_IMG256,), (_FEAT,)),
    "M": NetSpec(
        "M",
        "liveportrait/motion_extractor.onnx",
        (_IMG256,),
        (
            Tensor("pitch", 66),
            Tensor("yaw", 66),
            Tensor("roll", 66),
            Tensor("t", 3),
            Tensor("exp", 63),
            Tensor("scale", 1),
            Tensor("kp", 63),
        ),
    ),
    "W": NetSpec(
        "W",
        "liveportrait/warping_spade.onnx",
        (Tensor("feature", 0, rank=5, name="feature_3d"), Tensor("kp_driving", 63), Tensor("kp_source", 63)),
        (Tensor("image", 3 * 512 * 512, name="out"),),
    ),
    "S": _mlp("S", "liveportrait/stitching.onnx", "x_s_x_d", 126, 65),
    "eye": _mlp("eye", "liveportrait/stitching_eye.onnx", "x_s_eyes", 66, 63),
    "lip": _mlp("lip", "liveportrait/stitching_lip.onnx", "x_s_lip", 65, 63),
}
NET_NAMES = {"F": "appearance", "M": "motion", "W": "warp+generator", "S": "stitching", "eye": "eye", "lip": "lip"}


def warp_paste_spec(size: int) -> NetSpec:
    """W+G with the paste-back appended (graph_prep.append_paste_back) for a `size`² picture."""
    n = size * size
    w = SPECS["W"]
    extra = (
        Tensor("pb_grid", 2 * n),
        Tensor("pb_mask", n),
        Tensor("pb_keep", 3 * n),
        Tensor("pb_alpha", n, dtype="uint8"),
    )
    return NetSpec("W", w.file, w.inputs + extra, (Tensor("frame", 4 * n, dtype="uint8", name="pb_frame"),))


def _shape(arg) -> list[int]:
    """A session tensor's shape with symbolic/unknown dimensions taken as 1 (batch)."""
    return [d if isinstance(d, int) and d > 0 else 1 for d in arg.shape]


def _desc(args) -> str:
    return ", ".join(f"{a.shape}:{a.type.replace('tensor(', '').rstrip(')')}" for a in args)


def _fits(s: Tensor, a) -> bool:
    shape = _shape(a)
    count_ok = s.count == 0 or math.prod(shape) == s.count
    return s.dtype in a.type and count_ok and (s.rank is None or len(shape) == s.rank)


def _match(specs: tuple[Tensor, ...], args, path: Path, what: str, all_args) -> list[int]:
    """Index into `args` for each spec: by the published name where the file carries it, else by
    shape where only one role fits; a shape shared by two unnamed roles is refused, not guessed."""
    ins, outs = all_args

    def mismatch(detail: str = "") -> UserError:
        want = ", ".join(f"{s.published}({s.count or 'any'})" for s in specs)
        return UserError(
            f"{path}: not the expected network ({what} should be: {want}){detail}; "
            f"found inputs [{_desc(ins)}] outputs [{_desc(outs)}]"
        )

    if len(args) != len(specs):
        raise mismatch()
    by_name = {a.name: i for i, a in enumerate(args)}
    chosen: dict[int, int] = {}  # spec index -> arg index
    for k, s in enumerate(specs):
        i = by_name.get(s.published)
        if i is not None:
            if not _fits(s, args[i]):
                raise mismatch(f" ({s.published!r} has the wrong shape or type)")
            chosen[k] = i
    free = [i for i in range(len(args)) if i not in chosen.values()]
    left = [k for k in range(len(specs)) if k not in chosen]
    for k in left:
        cands = [i for i in free if _fits(specs[k], args[i])]
        if not cands:
            raise mismatch()
        rivals = [specs[j].published for j in left if j != k and any(_fits(specs[j], args[i]) for i in cands)]
        if rivals:
            shape = _shape(args[cands[0]])
            raise UserError(
                f"{path}: ambiguous {what}: {specs[k].published} and {', '.join(rivals)} are all {shape} and the "
                f"file does not name them as the published files do ({', '.join(s.published for s in specs)}); "
                "binding by order could swap them silently: rename those tensors to the published names"
            )
        chosen[k] = cands[0]
        free.remove(cands[0])
    return [chosen[k] for k in range(len(specs))]


_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(uint8)": np.uint8,
}


class Network:
    """One session; `run(*arrays)` in the spec's input order -> outputs in the spec's order."""

    def __init__(self, spec: NetSpec, path: Path, choice: ProviderChoice, source: Path | None = None, threads: int = 0):
        import onnxruntime as ort

        self.spec, self.path, self.choice = spec, Path(path), choice
        shown = source or self.path  # the user's file, even when running a prepared copy
        self.source = shown
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        if threads > 0:  # `bench --cores N`, the GPU check: ONNX Runtime's own pool, not only the process
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
        # idle worker threads must not spin: the tracker and our own per-frame code share the cores
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.add_session_config_entry("session.inter_op.allow_spinning", "0")
        if choice.device == "dml":  # DirectML supports neither memory patterns nor parallel execution
            so.enable_mem_pattern = False
            so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=so, providers=choice.providers)
        except Exception as e:  # noqa: BLE001 - ORT raises its own exception types for bad files
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise UserError(f"{shown}: cannot load this network ({msg[:200]})") from None
        ins, outs = self.session.get_inputs(), self.session.get_outputs()
        order_in = _match(spec.inputs, ins, shown, "inputs", (ins, outs))
        order_out = _match(spec.outputs, outs, shown, "outputs", (ins, outs))
        self.in_names = [ins[i].name for i in order_in]
        self.in_shapes = [_shape(ins[i]) for i in order_in]
        self.in_dtypes = [_DTYPES.get(ins[i].type, np.float32) for i in order_in]
        self.out_names = [outs[i].name for i in order_out]
        self.out_shapes = [_shape(outs[i]) for i in order_out]
        self.meta = dict(self.session.get_modelmeta().custom_metadata_map)
        self.runs = 0
        self.seconds = 0.0  # wall time in runs
        self.cpu_seconds = 0.0  # the calling thread's CPU time in runs (to subtract from our own)
        self.line = describe_session(spec.file.rsplit("/", 1)[-1].removesuffix(".onnx"), self.session, choice)

    def _feed(self, k: int, a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.asarray(a).reshape(self.in_shapes[k]), dtype=self.in_dtypes[k])

    def run(self, *arrays: np.ndarray) -> list[np.ndarray]:
        feeds = {n: self._feed(k, a) for k, (n, a) in enumerate(zip(self.in_names, arrays, strict=True))}
        t0, c0 = time.perf_counter(), time.thread_time()
        out = self.session.run(self.out_names, feeds)
        self.seconds += time.perf_counter() - t0
        self.cpu_seconds += time.thread_time() - c0
        self.runs += 1
        return out

    def bind(self, fixed: dict[int, np.ndarray]) -> Bound:
        """A per-frame runner with inputs `fixed` (index -> array) uploaded to the device once."""
        return Bound(self, fixed)

    @property
    def ms(self) -> float:
        """Mean milliseconds per run so far."""
        return 1000.0 * self.seconds / self.runs if self.runs else 0.0


class Bound:
    """I/O binding: fixed inputs live on the device; per call the others are bound from host
    memory and the outputs are copied to the host once."""

    def __init__(self, net: Network, fixed: dict[int, np.ndarray]):
        import onnxruntime as ort

        self.net = net
        self.device, self.device_id = ort_device(net.choice)
        self.binding = net.session.io_binding()
        self.fixed = {}
        for k, a in fixed.items():
            try:
                v = ort.OrtValue.ortvalue_from_numpy(net._feed(k, a), self.device, self.device_id)
            except Exception as e:  # noqa: BLE001 - a build that cannot allocate there: host memory works
                log.warning("%s: cannot keep inputs on %s (%s); binding from host memory", net.line, self.device, e)
                self.device, self.device_id = "cpu", 0
                v = ort.OrtValue.ortvalue_from_numpy(net._feed(k, a), "cpu", 0)
            self.fixed[k] = v  # keep a reference: the binding does not own it
            self.binding.bind_ortvalue_input(net.in_names[k], v)
        self.free = [k for k in range(len(net.in_names)) if k not in fixed]
        for name in net.out_names:
            self.binding.bind_output(name, self.device, self.device_id)

    def __call__(self, *arrays: np.ndarray) -> list[np.ndarray]:
        net = self.net
        for k, a in zip(self.free, arrays, strict=True):
            self.binding.bind_cpu_input(net.in_names[k], net._feed(k, a))
        t0, c0 = time.perf_counter(), time.thread_time()
        net.session.run_with_iobinding(self.binding)
        out = self.binding.copy_outputs_to_cpu()
        net.seconds += time.perf_counter() - t0
        net.cpu_seconds += time.thread_time() - c0
        net.runs += 1
        return out
