"""The liveportrait renderer on LivePortrait's REAL network architecture (reduced widths, seeded
random weights), built by worker/tools/liveportrait_graphs.py and committed under
tests/data/liveportrait_arch (BUILD.json names the versions; no torch is needed here).

Every export convention found in the wild binds to the right roles or is refused in one line;
the GridSample rewrite and the GPU graph set (FP16 + rewrite + paste-back) hold their error budgets
on the real operators; the renderer runs end to end on the real structure (render cache, switch
of characters). Floors sit just above what the small build measures (see each test).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from test_liveportrait import _character, _driver_frame

from worker.errors import UserError
from worker.render.liveportrait import Driver, LivePortraitRenderer, graph_prep
from worker.render.liveportrait.networks import SPECS, Network
from worker.render.liveportrait.providers import choose
from worker.tools.liveportrait_graphs import NAMES, derive, sha256

ARCH = Path(__file__).parent / "data" / "liveportrait_arch"
M_ROLES = ("pitch", "yaw", "roll", "t", "exp", "scale", "kp")
RNG = np.random.default_rng(3)
# the GPU graph set against FP32 on this small build: 0.0092 max / 0.00024 mean (every Conv in FP16;
# the keypoint path and the rewritten GridSample kept FP32; the spectral norm's weight maths folded
# in FP32). The bound is the budget, 3 grey levels. Before the fold and the generator's
# output tame (liveportrait_graphs.GEN_LOGIT_STD): 0.040 max, 0.00058 mean
FP16_MAX, FP16_MEAN = 0.012, 0.0003
# the rewrite against the native op: on the warped volumes it writes, float order alone (1.2e-7 and
# 3.9e-6 measured: ~1 ulp of the sampling position, up to 64, times neighbouring differences); on
# the image 6.8e-5 (opset-16 export: 8.2e-5), the generator amplifying it ~20x
REWRITE_VOLUME_MAX, REWRITE_IMAGE_MAX = 1e-5, 1e-4


def _models(root: Path, convention: str) -> Path:
    """A models folder (liveportrait/<net>.onnx) holding the committed set in `convention`."""
    d = root / convention / "liveportrait"
    d.mkdir(parents=True)
    shutil.copyfile(ARCH / "warping_spade.weights", d / "warping_spade.weights")
    for key, name in NAMES.items():
        src = ARCH / f"{name}.onnx"
        if convention == "opset16" and key == "W":
            src = ARCH / "warping_spade.opset16.onnx"
        if convention in ("published", "opset16"):
            shutil.copyfile(src, d / f"{name}.onnx")
        else:
            onnx.save(derive(onnx.load(str(src)), key, convention), str(d / f"{name}.onnx"))
    shutil.copyfile(ARCH / "BUILD.json", d / "BUILD.json")
    return d.parent


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("arch")
    return {c: _models(root, c) for c in ("published", "opset16", "reordered", "unnamed", "unnamed_reordered")}


@pytest.fixture(scope="module")
def inputs(sets):
    """A feature volume and keypoints from the small F and M themselves (realistic ranges)."""
    d = sets["published"] / "liveportrait"
    img = RNG.random((1, 3, 256, 256), dtype=np.float32)
    feat = ort.InferenceSession(str(d / "appearance_feature_extractor.onnx")).run(None, {"img": img})[0]
    kp = ort.InferenceSession(str(d / "motion_extractor.onnx")).run(["kp"], {"img": img})[0].reshape(1, 21, 3)
    kd = (kp + RNG.normal(0, 0.03, kp.shape)).astype(np.float32)
    return img, feat, kd, kp


def test_the_committed_build_is_what_its_record_says():
    info = json.loads((ARCH / "BUILD.json").read_text())
    assert info["size"] == "small" and "RANDOM" in info["what"]
    assert set(info["built_with"]) == {"torch", "onnx", "mimic-head"}
    for name, digest in info["files"].items():
        assert sha256(ARCH / name) == digest, name
    total = sum(p.stat().st_size for p in ARCH.iterdir())
    assert total < 6e6, total  # a few MB: both warps share one weights file
    ops = {n.op_type for n in onnx.load(str(ARCH / "warping_spade.onnx"), load_external_data=False).graph.node}
    assert {"GridSample", "Conv", "InstanceNormalization", "DepthToSpace", "Softmax"} <= ops
    m16 = onnx.load(str(ARCH / "warping_spade.opset16.onnx"), load_external_data=False)
    assert graph_prep.opset_of(m16) == 16 and sum(n.op_type == "GridSample" for n in m16.graph.node) == 2


def test_every_convention_binds_the_right_roles_or_is_refused(sets, inputs):
    img = inputs[0]
    cpu = choose("cpu")

    def net(conv, key):
        d = sets[conv]
        return Network(SPECS[key], d / SPECS[key].file, cpu, source=d / SPECS[key].file)

    want_m = net("published", "M").run(img)
    m = net("reordered", "M")  # kp listed first
    assert m.out_names == list(M_ROLES)  # bound by name, whatever order the file lists them in
    for role, got, want in zip(M_ROLES, m.run(img), want_m, strict=True):
        np.testing.assert_array_equal(got, want, err_msg=role)
    for conv in ("published", "opset16", "reordered"):
        assert net(conv, "W").in_names == ["feature_3d", "kp_driving", "kp_source"], conv
    # the reordered warp lists the source before the driving keypoints; bound by name regardless
    w_re = net("reordered", "W")
    assert [a.name for a in w_re.session.get_inputs()] == ["feature_3d", "kp_source", "kp_driving"]
    for conv in ("unnamed", "unnamed_reordered"):
        for key in ("F", "S", "eye", "lip"):  # one role per shape: bound by shape
            assert net(conv, key).in_names == ["input_0"]
        for key, pair in (("M", ("exp", "kp")), ("W", ("kp_driving", "kp_source"))):
            with pytest.raises(UserError) as e:
                net(conv, key)
            msg = str(e.value)
            assert "ambiguous" in msg and SPECS[key].file.split("/")[-1] in msg and "\n" not in msg
            assert all(p in msg for p in pair), msg


def _run(path, feeds: dict, outputs: list[str] | None = None) -> list[np.ndarray]:
    so = ort.SessionOptions()
    so.log_severity_level = 3
    model = str(path) if isinstance(path, Path) else path.SerializeToString()
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"]).run(outputs, feeds)


def _with_gridsample_outputs(path: Path):
    """The model with each GridSample's output (the warped volume) also a graph output."""
    model = onnx.load(str(path))
    names = [n.output[0] for n in model.graph.node if n.op_type == "GridSample"]
    model.graph.output.extend(onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None) for n in names)
    return model, names


def test_rewrite_and_the_gpu_graph_set_hold_their_budgets(sets, inputs, tmp_path):
    """The rewrite (8 gathers per 5-D GridSample) against the native op, on the warped volumes it
    writes and on the image; the GPU graph set (FP16 with the keypoint path and the rewritten
    GridSample in FP32) against FP32, on the image in [0, 1] and on the pasted frame in grey levels.
    Bounds: see REWRITE_* and FP16_*."""
    _, feat, kd, ks = inputs
    feeds = {"feature_3d": feat, "kp_driving": kd, "kp_source": ks}
    w = sets["published"] / SPECS["W"].file
    native, vols = _with_gridsample_outputs(w)
    ref, *ref_vols = _run(native, feeds)
    assert len(vols) == 2
    rewritten = graph_prep.transform(native, graph_prep.Variant(rewrite=True))
    assert not any(n.op_type == "GridSample" for n in rewritten.graph.node)
    img, *got_vols = _run(rewritten, feeds, ["out", *vols])
    for name, a, b in zip(vols, got_vols, ref_vols, strict=True):
        assert np.abs(a - b).max() < REWRITE_VOLUME_MAX, name
    assert np.abs(img - ref).max() < REWRITE_IMAGE_MAX
    # the opset-16 export (the one GPUs need rewritten most) against the native opset-20 op
    rw = _run(
        graph_prep.prepared_graph(sets["opset16"] / SPECS["W"].file, graph_prep.Variant(rewrite=True), tmp_path), feeds
    )[0]
    assert np.abs(rw - ref).max() < REWRITE_IMAGE_MAX
    gpu_set = graph_prep.prepared_graph(w, graph_prep.Variant(rewrite=True, fp16=True), tmp_path / "gpu")
    nodes = onnx.load(str(gpu_set)).graph.node
    marked = [n for n in nodes if n.name.startswith(graph_prep.KP_PATH_PREFIX)]
    assert len(marked) >= 50  # sparse motions, deformation, identity grids
    blend = [n for n in nodes if n.name.startswith(graph_prep.GS_DATA_PREFIX)]
    assert len(blend) == 2 * 26  # per GridSample: 2 transposes, reshape, 8 gathers, 8 muls, 7 adds (FP32)
    err = np.abs(_run(gpu_set, feeds)[0] - ref)
    assert err.max() < FP16_MAX and err.mean() < FP16_MEAN, (err.max(), err.mean())
    # ... and the finished frame with the paste-back appended (what a GPU hands over), in grey levels
    size = 256
    axis = (np.arange(size, dtype=np.float32) + 0.5) / size * 2 - 1
    gx, gy = np.meshgrid(axis, axis)
    paste = {
        "pb_grid": np.stack([gx, gy], -1)[None],
        "pb_mask": np.ones((1, 1, size, size), np.float32),
        "pb_keep": np.zeros((1, 3, size, size), np.float32),
        "pb_alpha": np.full((1, 1, size, size), 255, np.uint8),
    }
    frames = [
        _run(
            graph_prep.prepared_graph(w, graph_prep.Variant(rewrite=True, fp16=half, paste=size), tmp_path),
            feeds | paste,
        )[0]
        for half in (False, True)
    ]
    assert frames[0].shape == (1, size, size, 4)
    assert np.abs(frames[1].astype(int) - frames[0].astype(int)).max() <= round(FP16_MAX * 255)


def test_weight_maths_are_computed_once_in_fp32(sets, inputs):
    """LivePortrait's generator keeps a spectral norm on its convolutions; torch's export leaves
    it as nodes (sigma = u.W.v and W / sigma, on each frame). Folded once in FP32: the same image
    bit for bit, no node left that depends on weights alone, nothing swollen (identity grids stay
    nodes), and none of it in the GPU graph set, where FP16 would round sigma."""
    _, feat, kd, ks = inputs
    feeds = {"feature_3d": feat, "kp_driving": kd, "kp_source": ks}
    w = sets["published"] / SPECS["W"].file
    model = graph_prep.load_model(w)
    sn = [n for n in model.graph.node if n.op_type == "MatMul" and n.name.startswith("/spade/")]
    # u.(W.v): two MatMuls per spectral-normed convolution (17 here: at these widths up_1's shortcut
    # is the identity; 18 at full size)
    assert len(sn) == 2 * 17
    before = sum(onnx.numpy_helper.to_array(i).nbytes for i in model.graph.initializer)
    folded, n = graph_prep.fold_weight_maths(graph_prep.load_model(w))
    assert n >= len(sn)
    after = sum(onnx.numpy_helper.to_array(i).nbytes for i in folded.graph.initializer)
    assert after <= before
    assert not _weight_only_nodes(folded)
    assert np.array_equal(_run(folded, feeds)[0], _run(model, feeds)[0])
    gpu_set = graph_prep.transform(graph_prep.load_model(w), graph_prep.Variant(rewrite=True, fp16=True))
    assert not _weight_only_nodes(gpu_set)


def _weight_only_nodes(model) -> list[str]:
    """Nodes other than Constant and the identity-grid makers whose inputs are all weights."""
    inits = {i.name for i in model.graph.initializer}
    live = {i.name for i in model.graph.input if i.name not in inits}
    found = []
    for node in model.graph.node:
        if any(i in live for i in node.input if i) or node.op_type in ("Tile", "Expand", "ConstantOfShape", "Range"):
            live.update(node.output)
        elif node.op_type != "Constant" and not node.op_type.startswith("Cast"):
            found.append(node.name)
    return found


def test_renderer_end_to_end_on_the_real_structure(sets):
    """prepare, frames, the render cache and a switch of characters, on the real graphs (opset 16,
    paste-back on the device; FP32: the FP16 set is held to its budget above)."""
    r = LivePortraitRenderer(
        size=256, models_dir=sets["opset16"], device="cpu", precision="fp32", unverified=True, smoothing=False
    )
    try:
        assert r.weights.startswith("real architecture, RANDOM weights")
        assert "pb_grid" in r.nets["W"].in_names and r.nets["F"].out_shapes[0] == [1, 4, 16, 64, 64]
        rgba, lm = _character()
        a = r.prepare_picture(rgba, lm)
        assert a["f_s"].shape == (1, 4, 16, 64, 64) and np.isfinite(a["x_s"]).all()
        f0, l0 = _driver_frame(0)
        f1, l1 = _driver_frame(12)
        first = r.drive(a, Driver(f0, l0, 0.0))
        moved = r.drive(a, Driver(f1, l1, 0.1))
        again = r.drive(a, Driver(f1, l1, 0.2))  # the same pose: from the render cache
        assert first.shape == (256, 256, 4) and first.dtype == np.uint8
        assert np.abs(moved.astype(int) - first.astype(int)).max() > 0  # the driver moved it
        c = r.cache.stats()
        assert np.array_equal(again, moved) and c["hits"] + c["holds"] >= 1, c
        # another character: its own arrays, the cache starts again, the W+G runs for it
        rgba2 = np.ascontiguousarray(rgba[::-1, ::-1])
        lm2 = lm.copy()
        lm2[:, :2] = 255 - lm2[:, :2]
        b = r.prepare_picture(rgba2, lm2)
        runs = r.nets["W"].runs
        other = r.drive(b, Driver(f1, l1, 0.3))
        assert r.nets["W"].runs == runs + 1 and not np.array_equal(other, moved)
        assert r.nets["F"].runs == 2  # once per character
        assert r.status_line().startswith("liveportrait (real architecture, RANDOM weights")
    finally:
        r.close()
