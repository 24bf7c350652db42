"""Graph preparation, once per graph and provider family, cached beside the weights.

The transforms of an ONNX graph, each proven numerically in tests/test_liveportrait.py and
tests/test_liveportrait_arch.py (LivePortrait's real architecture):

* `upgrade_opset`: move the graph to opset 20 (ONNX's version converter; GridSample's `bilinear`
  becomes `linear`): ONNX Runtime's CUDA provider has a volumetric GridSample kernel only for
  opsets 20 and 22.
* `rewrite_gridsample_5d`: each 5-D GridSample becomes plain ops (Shape, Floor, Gather, Mul,
  Add, Transpose): 8 corner gathers from the volume and trilinear weights. Providers without a
  5-D GridSample (DirectML, CoreML, older CUDA builds, TensorRT < 11.2) then run the whole warp
  on the GPU instead of bouncing to the CPU.
* `fold_weight_maths` (before FP16): nodes that depend on weights alone are computed once in FP32
  (LivePortrait's generator exported by torch keeps its spectral norm as such nodes; in FP16 they
  would round sigma and scale every generator weight by the error, on each frame).
* `to_fp16`: everything in FP16 except ops that need FP32 (GridSample and its rewrite whole:
  coordinates AND the trilinear blend of the gathered corners; resizes, ranges) and the keypoint ->
  sampling-coordinate path of the warp (`mark_keypoint_path`: sparse motions and the deformation;
  measured on LivePortrait's real architecture, that path in FP16 alone puts the image 16 grey
  levels off; the rewritten blend in FP16 costs 0.044 of the 0.084 left on the small build, at no
  Conv cost); graph inputs and outputs stay FP32, casts sit at the borders.

`prepared_graph(path, Variant(...))` applies what a provider needs, keyed by the source's SHA-256
and `TRANSFORM_VERSION`, written atomically next to the weights (`.prepared/`).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from worker.errors import UserError

if TYPE_CHECKING:
    from onnx import NodeProto, TensorProto  # onnx itself is imported where a graph is built

log = logging.getLogger(__name__)

TRANSFORM_VERSION = 4  # 2: the keypoint path stays FP32; 3: the rewritten GridSample's blend too;
# 4: weight-only nodes folded in FP32 before FP16 (`fold_weight_maths`)
CACHE_DIR = ".prepared"
# ops kept in FP32 inside an FP16 graph: coordinate maths and ops without good FP16 kernels
KEEP_FP32_OPS = frozenset(
    {"GridSample", "Resize", "Upsample", "Range", "CumSum", "TopK", "NonMaxSuppression", "RoiAlign"}
)
KEEP_FP32_PREFIX = "gs5d_c_"  # the rewrite's coordinate nodes are named with this prefix
# ... and its data nodes (gathers of the volume, trilinear blend) with this one; both stay FP32 like
# the native GridSample: memory-bound, no Conv, and the blend in FP16 doubles the image's error
GS_DATA_PREFIX = "gs5d_d_"
KP_PATH_PREFIX = "kp32_"  # nodes of the keypoint -> sampling-coordinate path (`mark_keypoint_path`)
# graph inputs holding keypoints (the published W+G names); their path to GridSample stays FP32
KEYPOINT_INPUTS = ("kp_driving", "kp_source")


@dataclass(frozen=True)
class Variant:
    """What to do to one graph: `opset20`, `rewrite` (5-D GridSample -> gathers), `fp16`."""

    opset20: bool = False
    rewrite: bool = False
    fp16: bool = False
    paste: int = 0  # W+G only: append the paste-back into a `paste`² RGBA picture (0: no)

    @property
    def tag(self) -> str:
        parts = [n for n, on in (("op20", self.opset20), ("gather", self.rewrite), ("fp16", self.fp16)) if on]
        if self.paste:
            parts.append(f"paste{self.paste}")
        return "-".join(parts) or "orig"

    @property
    def identity(self) -> bool:
        return not (self.opset20 or self.rewrite or self.fp16 or self.paste)


def _onnx():
    try:
        import onnx
    except ImportError as e:  # a broken install; pyproject lists it
        raise UserError("the 'onnx' package is missing; reinstall (python3 installer/install.py)") from e
    return onnx


def opset_of(model) -> int:
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            return int(o.version)
    return 0


# ------------------------------------------------------------------ opset upgrade


def upgrade_opset(model, target: int = 20):
    """The model at opset `target` (no-op if already there or above)."""
    _onnx()
    if opset_of(model) >= target:
        return model
    from onnx import version_converter

    return version_converter.convert_version(model, target)


# ------------------------------------------------------------------ 5-D GridSample rewrite


def _rank(name: str, ranks: dict[str, int]) -> int | None:
    return ranks.get(name)


def _tensor_ranks(model) -> dict[str, int]:
    onnx = _onnx()
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - inference is best effort; unknown ranks are skipped
        inferred = model
    ranks = {}
    g = inferred.graph
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        t = vi.type.tensor_type
        if t.HasField("shape"):
            ranks[vi.name] = len(t.shape.dim)
    for init in g.initializer:
        ranks[init.name] = len(init.dims)
    return ranks


class _Builder:
    """Emits nodes and constants for one rewritten GridSample, all names prefixed."""

    def __init__(self, prefix: str):
        from onnx import helper

        self.h = helper
        self.prefix = prefix
        self.nodes: list[NodeProto] = []
        self.inits: list[TensorProto] = []
        self.n = 0

    def name(self, s: str) -> str:
        self.n += 1
        return f"{self.prefix}{s}_{self.n}"

    def const(self, value, dtype) -> str:
        from onnx import numpy_helper

        nm = self.name("k")
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), nm))
        return nm

    def op(self, op_type: str, inputs: list[str], coord: bool = True, out: str | None = None, **attrs) -> str:
        out = out or self.name(op_type.lower())
        node_name = (KEEP_FP32_PREFIX if coord else GS_DATA_PREFIX) + self.name(op_type)
        self.nodes.append(self.h.make_node(op_type, inputs, [out], name=node_name, **attrs))
        return out


def _rewrite_one(node, b: _Builder):
    """Nodes computing `node` (a 5-D GridSample, linear, zeros or border padding) from gathers."""
    from onnx import TensorProto

    attrs = {a.name: a for a in node.attribute}
    align = bool(attrs["align_corners"].i) if "align_corners" in attrs else False
    padding = attrs["padding_mode"].s.decode() if "padding_mode" in attrs else "zeros"
    X, G = node.input[0], node.input[1]
    Y = node.output[0]
    f32, i64 = np.float32, np.int64
    shape = b.op("Shape", [X])
    dim = {
        k: b.op("Gather", [shape, b.const(i, i64)], axis=0) for k, i in zip("NCDHW", range(5), strict=True)
    }  # scalars
    g = b.op("Cast", [G], to=TensorProto.FLOAT)
    one, zero_f = b.const(1.0, f32), b.const(0.0, f32)
    weights, indices, sizes = {}, {}, {}
    for axis, comp, size_key in (("x", 0, "W"), ("y", 1, "H"), ("z", 2, "D")):
        size_i = dim[size_key]
        size_f = b.op("Cast", [size_i], to=TensorProto.FLOAT)
        c = b.op("Gather", [g, b.const(comp, i64)], axis=4)  # N x Do x Ho x Wo
        c1 = b.op("Add", [c, one])
        if align:  # -1 -> 0, +1 -> size-1
            pos = b.op("Mul", [c1, b.op("Mul", [b.const(0.5, f32), b.op("Sub", [size_f, one])])])
        else:  # -1 -> -0.5, +1 -> size-0.5
            pos = b.op("Mul", [b.op("Sub", [b.op("Mul", [c1, size_f]), one]), b.const(0.5, f32)])
        if padding == "border":
            pos = b.op("Min", [b.op("Max", [pos, zero_f]), b.op("Sub", [size_f, one])])
        p0 = b.op("Floor", [pos])
        w1 = b.op("Sub", [pos, p0])
        w0 = b.op("Sub", [one, w1])
        i0 = b.op("Cast", [p0], to=TensorProto.INT64)
        i1 = b.op("Add", [i0, b.const(1, i64)])
        last = b.op("Sub", [size_i, b.const(1, i64)])
        for k, (ik, wk) in enumerate(((i0, w0), (i1, w1))):
            inside = b.op(
                "And",
                [b.op("GreaterOrEqual", [ik, b.const(0, i64)]), b.op("Less", [ik, size_i])],
            )
            weights[axis, k] = b.op("Mul", [wk, b.op("Cast", [inside], to=TensorProto.FLOAT)])
            indices[axis, k] = b.op("Max", [b.op("Min", [ik, last]), b.const(0, i64)])
        sizes[axis] = size_i
    # the volume as rows: (N*D*H*W) x C
    xt = b.op("Transpose", [X], coord=False, perm=[0, 2, 3, 4, 1])
    cols = b.op("Unsqueeze", [dim["C"], b.const([0], i64)])
    rows = b.op("Reshape", [xt, b.op("Concat", [b.const([-1], i64), cols], axis=0)], coord=False)
    # batch offsets n * D*H*W, shaped N x 1 x 1 x 1
    dhw = b.op("Mul", [b.op("Mul", [dim["D"], dim["H"]]), dim["W"]])
    n_range = b.op("Range", [b.const(0, i64), dim["N"], b.const(1, i64)])
    n_off = b.op("Reshape", [b.op("Mul", [n_range, dhw]), b.const([-1, 1, 1, 1], i64)])
    acc = None
    for kz in (0, 1):
        for ky in (0, 1):
            zy = b.op("Mul", [b.op("Add", [b.op("Mul", [indices["z", kz], sizes["y"]]), indices["y", ky]]), sizes["x"]])
            wzy = b.op("Mul", [weights["z", kz], weights["y", ky]])
            for kx in (0, 1):
                lin = b.op("Add", [b.op("Add", [zy, indices["x", kx]]), n_off])
                w = b.op("Unsqueeze", [b.op("Mul", [wzy, weights["x", kx]]), b.const([-1], i64)])
                val = b.op("Gather", [rows, lin], coord=False, axis=0)  # N x Do x Ho x Wo x C
                term = b.op("Mul", [val, w], coord=False)
                acc = term if acc is None else b.op("Add", [acc, term], coord=False)
    assert acc is not None  # the loops above add eight terms
    b.op("Transpose", [acc], coord=False, out=Y, perm=[0, 4, 1, 2, 3])


def rewrite_gridsample_5d(model) -> tuple[object, int]:
    """(model with every 5-D linear GridSample rewritten into gathers, how many were rewritten)."""
    if opset_of(model) < 13:
        raise ValueError(f"opset {opset_of(model)} is below 13; the GridSample rewrite needs 13+")
    ranks = _tensor_ranks(model)
    g = model.graph
    new_nodes, count = [], 0
    for node in g.node:
        if node.op_type != "GridSample" or node.domain not in ("", "ai.onnx"):
            new_nodes.append(node)
            continue
        rank = _rank(node.input[0], ranks) or _rank(node.input[1], ranks)
        attrs = {a.name: a for a in node.attribute}
        mode = attrs["mode"].s.decode() if "mode" in attrs else "bilinear"
        padding = attrs["padding_mode"].s.decode() if "padding_mode" in attrs else "zeros"
        if rank != 5 or mode not in ("linear", "bilinear") or padding not in ("zeros", "border"):
            if rank == 5:
                log.warning("GridSample %s (mode %s, padding %s) left as is", node.name, mode, padding)
            elif rank is None:
                log.warning("GridSample %s: shape inference gave no rank; left as is", node.name or node.output[0])
            new_nodes.append(node)
            continue
        b = _Builder(f"gs{count}_")
        _rewrite_one(node, b)
        new_nodes.extend(b.nodes)
        g.initializer.extend(b.inits)
        count += 1
    del g.node[:]
    g.node.extend(new_nodes)
    del g.value_info[:]
    return model, count


# ------------------------------------------------------------------ weight maths, folded in FP32

# never folded: ops whose value is not a function of their inputs, and ops that only make a big
# tensor out of a small one (identity grids: folding them would swell the file for nothing)
_NOT_FOLDABLE = frozenset(
    {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial"}
    | {"Tile", "Expand", "ConstantOfShape", "Range"}
)


def fold_weight_maths(model) -> tuple[object, int]:
    """Compute once, in FP32, every node that depends on weights alone, and keep its result as an
    initializer. Some exports keep a spectral norm as nodes (sigma = u.W.v, then W / sigma on each
    frame: LivePortrait's SPADE generator, 18 convolutions, and a reshaped copy of each weight: why
    such a W+G file is 526 MB where the published one is 402 MB). Converted to FP16 those nodes
    would compute sigma in half precision and scale every generator weight by its error, and ONNX
    Runtime cannot fold FP16 MatMul on the CPU, so they would run per frame. Returns (model, nodes
    folded)."""
    onnx = _onnx()
    import onnxruntime as ort
    from onnx import helper, numpy_helper

    g = model.graph
    inits = {i.name for i in g.initializer}
    live = {i.name for i in g.input if i.name not in inits}
    fold, consts = [], []
    for node in g.node:
        dynamic = node.op_type in _NOT_FOLDABLE or any(
            a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute
        )
        if dynamic or any(i in live for i in node.input if i):
            live.update(node.output)
        elif node.op_type == "Constant":
            consts.append(node)
        else:
            fold.append(node)
    if not fold:
        return model, 0
    made = {o for n in fold for o in n.output}
    needed = {i for n in g.node if n not in fold for i in n.input} | {o.name for o in g.output}
    wanted = [o for o in made if o in needed]
    types = _elem_types(model)
    sub = helper.make_model(
        helper.make_graph(
            consts + fold,
            "weight_maths",
            [],
            [helper.make_tensor_value_info(o, types.get(o, onnx.TensorProto.FLOAT), None) for o in wanted],
            [i for i in g.initializer if any(i.name in n.input for n in fold)],
        ),
        opset_imports=model.opset_import,
        ir_version=model.ir_version,
    )
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    values = ort.InferenceSession(sub.SerializeToString(), opts, providers=["CPUExecutionProvider"]).run(wanted, {})
    keep_nodes = [n for n in g.node if n not in fold]
    del g.node[:]
    g.node.extend(keep_nodes)
    used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
    kept = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(kept)
    g.initializer.extend(numpy_helper.from_array(np.asarray(v), name) for name, v in zip(wanted, values, strict=True))
    return model, len(fold)


# ------------------------------------------------------------------ FP16


def _elem_types(model) -> dict[str, int]:
    onnx = _onnx()
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001
        inferred = model
    g = inferred.graph
    types = {vi.name: vi.type.tensor_type.elem_type for vi in list(g.input) + list(g.output) + list(g.value_info)}
    for init in g.initializer:
        types[init.name] = init.data_type
    return types


def _keep_fp32(node) -> bool:
    return node.op_type in KEEP_FP32_OPS or node.name.startswith((KEEP_FP32_PREFIX, GS_DATA_PREFIX, KP_PATH_PREFIX))


def mark_keypoint_path(model) -> int:
    """Name-mark (KP_PATH_PREFIX) the nodes on a path from a keypoint input to a GridSample's grid
    that passes through no Conv: the dense-motion maths that turns keypoints into sampling
    coordinates (LivePortrait's sparse motions and deformation; ~50 cheap nodes). The learned
    parts (Conv and what follows it alone) stay FP16. Returns how many nodes were marked."""
    g = model.graph
    names = {i.name for i in g.input}
    starts = {n for n in KEYPOINT_INPUTS if n in names}
    if not starts:
        return 0
    conv = ("Conv", "ConvTranspose")
    # forward from the keypoints, stopping at convolutions
    fwd: set[int] = set()
    live = set(starts)
    for k, node in enumerate(g.node):  # ONNX graphs are topologically sorted
        if node.op_type not in conv and any(i in live for i in node.input):
            fwd.add(k)
            live.update(node.output)
    # backward from the GridSample grids, stopping at convolutions
    producer = {o: k for k, node in enumerate(g.node) for o in node.output}
    need = {node.input[1] for node in g.node if node.op_type == "GridSample" and len(node.input) > 1}
    back: set[int] = set()
    for k in range(len(g.node) - 1, -1, -1):
        node = g.node[k]
        if node.op_type in conv or not any(o in need for o in node.output):
            continue
        back.add(k)
        need.update(i for i in node.input if i in producer)
    path = fwd | back
    for k in path:
        node = g.node[k]
        node.name = KP_PATH_PREFIX + (node.name or f"{node.op_type}_{k}")
    return len(path)


def to_fp16(model):
    """FP16 weights and activations except `KEEP_FP32_OPS` / rewrite coordinate nodes; the graph's
    inputs and outputs stay FP32 (a Cast after each input and before each output)."""
    onnx = _onnx()
    from onnx import TensorProto, helper, numpy_helper

    FLOAT, HALF = TensorProto.FLOAT, TensorProto.FLOAT16
    types = _elem_types(model)
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    domain: dict[str, str] = {i.name: "f" for i in g.input}
    casts: dict[tuple[str, str], str] = {}
    half_inits: dict[str, str] = {}
    used_f32_inits: set[str] = set()
    out_nodes = []

    def is_float(name: str) -> bool:
        return types.get(name) == FLOAT

    for node in g.node:
        half = not _keep_fp32(node)
        want = "h" if half else "f"
        for k, name in enumerate(node.input):
            if not name or not is_float(name):
                continue
            if name in inits:
                if half:
                    if name not in half_inits:
                        half_inits[name] = name + "__fp16"
                        arr = numpy_helper.to_array(inits[name]).astype(np.float16)
                        g.initializer.append(numpy_helper.from_array(arr, half_inits[name]))
                    node.input[k] = half_inits[name]
                else:
                    used_f32_inits.add(name)
                continue
            have = domain.get(name, "f")
            if have == want:
                continue
            key = (name, want)
            if key not in casts:
                casts[key] = f"{name}__to_{want}"
                to = HALF if half else FLOAT
                out_nodes.append(helper.make_node("Cast", [name], [casts[key]], name=f"cast_{name}_{want}", to=to))
            node.input[k] = casts[key]
        if half:
            if node.op_type == "ConstantOfShape" and not any(a.name == "value" for a in node.attribute):
                # the default value is a float32 zero: make it an FP16 zero like the rest
                node.attribute.append(helper.make_attribute("value", numpy_helper.from_array(np.zeros(1, np.float16))))
            for a in node.attribute:
                if a.name == "dtype" and a.type == onnx.AttributeProto.INT and a.i == FLOAT:
                    a.i = HALF  # RandomNormal, EyeLike, ...: produce FP16 inside the FP16 region
                if node.op_type == "Cast" and a.name == "to" and a.i == FLOAT:
                    a.i = HALF
                elif a.name == "value" and a.type == onnx.AttributeProto.TENSOR and a.t.data_type == FLOAT:
                    a.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(a.t).astype(np.float16), a.t.name))
        for name in node.output:
            if is_float(name) or (node.op_type in ("Constant", "ConstantOfShape") and half):
                domain[name] = want
        out_nodes.append(node)
    # initializers now only used in FP16 are dropped in their FP32 form
    keep = [i for i in g.initializer if i.name not in half_inits or i.name in used_f32_inits]
    del g.initializer[:]
    g.initializer.extend(keep)
    # graph outputs produced in FP16 get a Cast back to FP32 under their own name
    for out in g.output:
        if domain.get(out.name) == "h":
            inner = out.name + "__fp16"
            for n in out_nodes:
                for k, nm in enumerate(n.input):
                    if nm == out.name:
                        n.input[k] = inner
                for k, nm in enumerate(n.output):
                    if nm == out.name:
                        n.output[k] = inner
            out_nodes.append(helper.make_node("Cast", [inner], [out.name], name=f"cast_out_{out.name}", to=FLOAT))
    del g.node[:]
    g.node.extend(out_nodes)
    del g.value_info[:]
    return model


# ------------------------------------------------------------------ cached preparation


def _sha256(path: Path, memo_dir: Path) -> str:
    """SHA-256 of `path`, remembered by size and mtime (hashing 400 MB each start is wasteful)."""
    import hashlib

    memo_file = memo_dir / "hashes.json"
    st = path.stat()
    try:
        memo = json.loads(memo_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        memo = {}
    rec = memo.get(path.name)
    if isinstance(rec, dict) and rec.get("size") == st.st_size and rec.get("mtime_ns") == st.st_mtime_ns:
        return str(rec["sha256"])
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    memo[path.name] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": h.hexdigest()}
    _atomic_write(memo_file, json.dumps(memo, indent=1).encode())
    return h.hexdigest()


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_model(path: Path):
    """The ONNX model in `path`, or a one-line UserError naming the file."""
    onnx = _onnx()
    try:
        model = onnx.load(str(path))
    except FileNotFoundError:
        raise UserError(f"{path}: file not found (run: stream-animator models --download)") from None
    except Exception as e:  # noqa: BLE001 - protobuf raises several types for damaged files
        raise UserError(f"{path}: not a readable ONNX model (truncated or damaged?): {type(e).__name__}") from None
    if not model.graph.node or not model.graph.input or not model.graph.output or not opset_of(model):
        raise UserError(f"{path}: not a readable ONNX model (empty, truncated or damaged?)")
    return model


def transform(model, variant: Variant):
    """Apply `variant` to an in-memory model (the order matters: rewrite before FP16)."""
    if variant.opset20:
        model = upgrade_opset(model, 20)
    if variant.fp16:  # before the rewrite: the path ends at the GridSample nodes it replaces
        n = mark_keypoint_path(model)
        if n:
            log.info("keeping %d keypoint -> sampling-coordinate node(s) in FP32", n)
    if variant.rewrite:
        model, n = rewrite_gridsample_5d(model)
        left = sum(1 for nd in model.graph.node if nd.op_type == "GridSample")
        log.info("rewrote %d 5-D GridSample node(s) into gathers (%d GridSample left)", n, left)
        if left and not n:
            log.warning("no GridSample was rewritten (ranks unknown to shape inference?): the warp may run on the CPU")
    if variant.fp16:
        model, n = fold_weight_maths(model)
        if n:
            log.info("computed %d weight-only node(s) once in FP32 (a spectral norm kept as nodes)", n)
        model = to_fp16(model)
    if variant.paste:
        model = append_paste_back(model, variant.paste)
    return model


# ------------------------------------------------------------------ paste-back on the device

PASTE_INPUTS = ("pb_grid", "pb_mask", "pb_keep", "pb_alpha")
GEN_SIZE_KEY = "stream_animator.generator_size"


def append_paste_back(model, size: int):
    """W+G followed by the paste-back into the character's picture, so a GPU does it too.

    New inputs (bound once per character): `pb_grid` (1, size, size, 2) float, where each output
    pixel samples the generated image (GridSample, align_corners=0); `pb_mask` (1, 1, size,
    size) float, the generated image's weight; `pb_keep` (1, 3, size, size) float, the picture's
    RGB in [0, 1] times (1 - mask); `pb_alpha` (1, 1, size, size) uint8, the picture's alpha.
    The output becomes the finished frame: (1, size, size, 4) uint8 straight RGBA.
    """
    from onnx import TensorProto, helper, numpy_helper

    g = model.graph
    if len(g.output) != 1:
        raise ValueError(f"expected one output (the generated image), found {len(g.output)}")
    gen = g.output[0].name
    dims = [d.dim_value for d in g.output[0].type.tensor_type.shape.dim]
    side = dims[-1] if len(dims) == 4 and dims[-1] > 0 else 512  # the generator's side (512: LivePortrait)
    helper.set_model_props(model, {**{p.key: p.value for p in model.metadata_props}, GEN_SIZE_KEY: str(side)})
    op = opset_of(model)
    mode = "linear" if op >= 20 else "bilinear"
    f = TensorProto.FLOAT
    g.input.extend(
        [
            helper.make_tensor_value_info("pb_grid", f, [1, size, size, 2]),
            helper.make_tensor_value_info("pb_mask", f, [1, 1, size, size]),
            helper.make_tensor_value_info("pb_keep", f, [1, 3, size, size]),
            helper.make_tensor_value_info("pb_alpha", TensorProto.UINT8, [1, 1, size, size]),
        ]
    )
    g.initializer.extend(
        [
            numpy_helper.from_array(np.array(255.0, np.float32), "pb_255"),
            numpy_helper.from_array(np.array(0.5, np.float32), "pb_half"),
            numpy_helper.from_array(np.array(0.0, np.float32), "pb_lo"),
            numpy_helper.from_array(np.array(255.0, np.float32), "pb_hi"),
        ]
    )

    def node(op_type, ins, out, **kw):
        g.node.append(helper.make_node(op_type, ins, [out], name=f"pb_{out}", **kw))

    node("Clip", [gen, "pb_lo_01", "pb_hi_01"], "pb_gen")
    g.initializer.extend(
        [
            numpy_helper.from_array(np.array(0.0, np.float32), "pb_lo_01"),
            numpy_helper.from_array(np.array(1.0, np.float32), "pb_hi_01"),
        ]
    )
    node("GridSample", ["pb_gen", "pb_grid"], "pb_warped", mode=mode, align_corners=0, padding_mode="zeros")
    node("Mul", ["pb_warped", "pb_mask"], "pb_fg")
    node("Add", ["pb_fg", "pb_keep"], "pb_rgb01")
    node("Mul", ["pb_rgb01", "pb_255"], "pb_rgb255")
    node("Add", ["pb_rgb255", "pb_half"], "pb_rounded")
    node("Clip", ["pb_rounded", "pb_lo", "pb_hi"], "pb_clipped")
    node("Cast", ["pb_clipped"], "pb_rgb8", to=TensorProto.UINT8)
    node("Concat", ["pb_rgb8", "pb_alpha"], "pb_rgba", axis=1)
    node("Transpose", ["pb_rgba"], "pb_frame", perm=[0, 2, 3, 1])
    del g.output[:]
    g.output.append(helper.make_tensor_value_info("pb_frame", TensorProto.UINT8, [1, size, size, 4]))
    return model


def prepared_graph(path: Path, variant: Variant, cache_dir: Path | None = None) -> Path:
    """The graph at `path` with `variant` applied: built once, then read from the cache."""
    path = Path(path)
    if variant.identity:
        return path
    cache = Path(cache_dir) if cache_dir is not None else path.parent / CACHE_DIR
    if not path.is_file():
        raise UserError(f"{path}: file not found (run: stream-animator models --download)")
    digest = _sha256(path, cache)
    target = cache / f"{path.stem}.{digest[:16]}.t{TRANSFORM_VERSION}.{variant.tag}.onnx"
    if target.is_file():
        return target
    from tqdm import tqdm

    with tqdm(total=3, desc=f"preparing {path.name} ({variant.tag})", unit="step", leave=False) as bar:
        model = load_model(path)
        bar.update(1)
        try:
            model = transform(model, variant)
        except UserError:
            raise
        except Exception as e:  # noqa: BLE001 - a graph we cannot transform is a bad weights file
            raise UserError(f"{path}: cannot prepare the graph ({variant.tag}): {type(e).__name__}: {e}") from None
        bar.update(1)
        _atomic_write(target, model.SerializeToString())
        bar.update(1)
    log.info("prepared %s -> %s", path, target)
    return target
