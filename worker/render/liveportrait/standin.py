"""Stand-in networks with LivePortrait's exact signatures, for tests and for measuring our own
code where no weights exist.

Each graph has the real network's input/output shapes, dtypes, order and published tensor names,
real 5-D GridSample nodes at the requested opset (16 or 20), and
outputs that are known numpy functions of the inputs (`ref_F`, `ref_M`, ...). Their numbers mean
nothing as animation; their cost is not the real networks' cost.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from worker.render.liveportrait.networks import SPECS


def _onnx():
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    return onnx, TensorProto, helper, numpy_helper


FLOAT = 1  # TensorProto.FLOAT
RNG = np.random.default_rng(7)
W_F = (RNG.standard_normal((3, 512)) * 0.5).astype(np.float32)
B_F = (RNG.standard_normal(512) * 0.1).astype(np.float32)
W_M = {k: (RNG.standard_normal((3, n)) * s).astype(np.float32) for k, n, s in
       (("pitch", 66, 5.0), ("yaw", 66, 5.0), ("roll", 66, 5.0), ("t", 3, 0.2), ("exp", 63, 0.1),
        ("scale", 1, 0.1), ("kp", 63, 0.05))}  # fmt: skip
KP0 = (RNG.uniform(-0.6, 0.6, 63)).astype(np.float32)
W_S = (RNG.standard_normal((126, 65)) * 0.01).astype(np.float32)
W_EYE = (RNG.standard_normal((66, 63)) * 0.01).astype(np.float32)
W_LIP = (RNG.standard_normal((65, 63)) * 0.01).astype(np.float32)


def vi(name, shape, t=FLOAT):
    _, _, helper, _ = _onnx()
    return helper.make_tensor_value_info(name, t, shape)


def make_model(nodes, inputs, outputs, inits, opset):
    onnx, _, helper, numpy_helper = _onnx()
    g = helper.make_graph(nodes, "g", inputs, outputs, [numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def mean_node(inp, out, axes, keepdims, opset, inits):
    """ReduceMean at `opset` (axes an attribute before 18, an input from 18 on)."""
    _, _, helper, _ = _onnx()
    if opset < 18:
        return helper.make_node("ReduceMean", [inp], [out], axes=axes, keepdims=keepdims)
    inits[f"axes_{out}"] = np.array(axes, np.int64)
    return helper.make_node("ReduceMean", [inp, f"axes_{out}"], [out], keepdims=keepdims)


def identity_grid(d: int, h: int, w: int) -> np.ndarray:
    """(1, d, h, w, 3) normalised (x, y, z) voxel centres (align_corners=False): sampling with it
    returns the volume unchanged."""
    zs, ys, xs = ((np.arange(n) + 0.5) / n * 2 - 1 for n in (d, h, w))
    z, y, x = np.meshgrid(zs, ys, xs, indexing="ij")
    return np.stack([x, y, z], axis=-1)[None].astype(np.float32)


def model_F(opset=16):
    _, _, helper, _ = _onnx()
    nodes = [
        helper.make_node("AveragePool", ["img"], ["p"], kernel_shape=[4, 4], strides=[4, 4]),
        helper.make_node("Transpose", ["p"], ["pt"], perm=[0, 2, 3, 1]),
        helper.make_node("MatMul", ["pt", "wf"], ["mm"]),
        helper.make_node("Add", ["mm", "bf"], ["a"]),
        helper.make_node("Reshape", ["a", "shp"], ["r"]),
        helper.make_node("Transpose", ["r"], ["output"], perm=[0, 3, 4, 1, 2]),
    ]
    inits = {"wf": W_F, "bf": B_F, "shp": np.array([1, 64, 64, 32, 16], np.int64)}
    return make_model(nodes, [vi("img", [1, 3, 256, 256])], [vi("output", [1, 32, 16, 64, 64])], inits, opset)


def ref_F(img):
    p = img.reshape(1, 3, 64, 4, 64, 4).mean(axis=(3, 5))
    a = p.transpose(0, 2, 3, 1) @ W_F + B_F
    return a.reshape(1, 64, 64, 32, 16).transpose(0, 3, 4, 1, 2)


_M_OUT = (("pitch", [1, 66]), ("yaw", [1, 66]), ("roll", [1, 66]), ("t", [1, 3]), ("exp", [1, 63]),
          ("scale", [1, 1]), ("kp", [1, 21, 3]))  # fmt: skip


def model_M(opset=16):
    _, _, helper, _ = _onnx()
    inits: dict[str, np.ndarray] = {}
    nodes = [mean_node("img", "m", [2, 3], 0, opset, inits)]
    outs = []
    for k, shape in _M_OUT:
        inits[f"w_{k}"] = W_M[k]
        nodes.append(helper.make_node("MatMul", ["m", f"w_{k}"], [f"mm_{k}"]))
        if k == "kp":
            inits["kp0"] = KP0
            nodes.append(helper.make_node("Add", ["mm_kp", "kp0"], ["kp_flat"]))
            inits["kp_shape"] = np.array([1, 21, 3], np.int64)
            nodes.append(helper.make_node("Reshape", ["kp_flat", "kp_shape"], ["kp"]))
        elif k == "scale":
            inits["one"] = np.ones(1, np.float32)
            nodes.append(helper.make_node("Add", ["mm_scale", "one"], ["scale"]))
        else:
            nodes.append(helper.make_node("Identity", [f"mm_{k}"], [k]))
        outs.append(vi(k, shape))
    return make_model(nodes, [vi("img", [1, 3, 256, 256])], outs, inits, opset)


def ref_M(img):
    m = img.mean(axis=(2, 3))
    o = {k: m @ W_M[k] for k, _ in _M_OUT}
    o["kp"] = o["kp"] + KP0
    o["scale"] = o["scale"] + 1
    return [o[k] for k, _ in _M_OUT]


GRID = identity_grid(16, 64, 64)


def model_W(opset=16, size=512):
    _, _, helper, _ = _onnx()
    mode = "linear" if opset >= 20 else "bilinear"
    inits: dict[str, np.ndarray] = {}
    nodes = [
        helper.make_node("Sub", ["kp_driving", "kp_source"], ["dk"]),
        mean_node("dk", "dm", [1], 1, opset, inits),
        helper.make_node("Reshape", ["dm", "s5"], ["d5"]),
        helper.make_node("Add", ["grid0", "d5"], ["grid1"]),
        helper.make_node("GridSample", ["feature_3d", "grid1"], ["warped"], mode=mode, align_corners=0),
        helper.make_node("Mul", ["grid0", "zoom"], ["grid2"]),
        helper.make_node("GridSample", ["warped", "grid2"], ["warped2"], mode=mode, align_corners=0),
        mean_node("warped2", "flat", [2], 0, opset, inits),
        helper.make_node("Slice", ["flat", "c0", "c3", "ax1"], ["rgb"]),
        helper.make_node("Resize", ["rgb", "", "scales"], ["big"], mode="nearest"),
        helper.make_node("Sigmoid", ["big"], ["out"]),
    ]
    inits |= {
        "s5": np.array([1, 1, 1, 1, 3], np.int64),
        "grid0": GRID,
        "zoom": np.array(0.9, np.float32),
        "c0": np.array([0], np.int64),
        "c3": np.array([3], np.int64),
        "ax1": np.array([1], np.int64),
        "scales": np.array([1, 1, size / 64, size / 64], np.float32),
    }
    ins = [vi("feature_3d", [1, 32, 16, 64, 64]), vi("kp_driving", [1, 21, 3]), vi("kp_source", [1, 21, 3])]
    return make_model(nodes, ins, [vi("out", [1, 3, size, size])], inits, opset)


def mlp(n_in, n_out, w, opset=16):
    _, _, helper, _ = _onnx()
    nodes = [helper.make_node("MatMul", ["input", "w"], ["output"])]
    return make_model(nodes, [vi("input", [1, n_in])], [vi("output", [1, n_out])], {"w": w}, opset)


def build_models(root: Path, opset: int = 16, prefix: str = "liveportrait/") -> Path:
    """Write the six stand-in networks under `root`/`prefix` (the manifest's paths; the animal
    set's prefix is `liveportrait_animal/`)."""
    onnx, _, _, _ = _onnx()
    models = {
        "F": model_F(opset),
        "M": model_M(opset),
        "W": model_W(opset),
        "S": mlp(126, 65, W_S, opset),
        "eye": mlp(66, 63, W_EYE, opset),
        "lip": mlp(65, 63, W_LIP, opset),
    }
    for key, m in models.items():
        path = root.joinpath(*(prefix + SPECS[key].file.split("/", 1)[1]).split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(m, str(path))
    return root
