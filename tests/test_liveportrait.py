"""The liveportrait renderer end to end on the CPU provider, with small ONNX graphs built here.

No weights and no GPU exist on our machines, so these graphs stand in for the six networks: the
real networks' input/output shapes, dtypes, order and published tensor names, real 5-D
GridSample nodes at the real opsets (16 and 20), and outputs that are known
functions of the inputs. The real weights are exercised by tests/test_liveportrait_real.py.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from worker.errors import UserError
from worker.render.liveportrait import Driver, LivePortraitRenderer, crop, graph_prep, motion, providers
from worker.render.liveportrait.networks import SPECS, Network
from worker.render.liveportrait.standin import (
    FLOAT,
    W_LIP,
    W_S,
    build_models,
    make_model,
    model_F,
    model_M,
    model_W,
    ref_F,
    ref_M,
    vi,
)
from worker.track.canonical import load_canonical_face

RNG = np.random.default_rng(11)


def _session(model):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    return build_models(tmp_path_factory.mktemp("lpmodels"))


# ---------------------------------------------------------------- the stand-ins are what they say


def test_stand_in_graphs_compute_their_reference_functions():
    img = RNG.random((1, 3, 256, 256), dtype=np.float32)
    np.testing.assert_allclose(_session(model_F()).run(None, {"img": img})[0], ref_F(img), atol=1e-5)
    for got, want in zip(_session(model_M()).run(None, {"img": img}), ref_M(img), strict=True):
        np.testing.assert_allclose(got.reshape(want.shape), want, atol=1e-4)
    # W with equal keypoints samples the identity grid (then a 0.9 zoom): a real 5-D GridSample
    vol = RNG.random((1, 32, 16, 64, 64), dtype=np.float32)
    kp = RNG.random((1, 21, 3), dtype=np.float32)
    s = _session(model_W())
    out = s.run(None, {"feature_3d": vol, "kp_driving": kp, "kp_source": kp})[0]
    assert out.shape == (1, 3, 512, 512) and out.min() > 0 and out.max() < 1


# ---------------------------------------------------------------- graph transforms, numerically


def _gs_model(opset, align, padding, d=6, h=7, w=8, out=(5, 4, 3)):
    mode = "linear" if opset >= 20 else "bilinear"
    node = helper.make_node("GridSample", ["x", "g"], ["y"], mode=mode, align_corners=align, padding_mode=padding)
    ins = [vi("x", [2, 3, d, h, w]), vi("g", [2, *out, 3])]
    return make_model([node], ins, [vi("y", [2, 3, *out])], {}, opset)


@pytest.mark.parametrize("opset", [16, 20])
@pytest.mark.parametrize("align", [0, 1])
@pytest.mark.parametrize("padding", ["zeros", "border"])
def test_gridsample_rewrite_matches_the_original(opset, align, padding):
    """The gathers + trilinear weights equal ORT's own 5-D GridSample to 2e-6, coordinates
    beyond the volume included (batch 2, unequal sizes)."""
    m = _gs_model(opset, align, padding)
    x = RNG.standard_normal((2, 3, 6, 7, 8)).astype(np.float32)
    g = RNG.uniform(-1.3, 1.3, (2, 5, 4, 3, 3)).astype(np.float32)
    want = _session(m).run(None, {"x": x, "g": g})[0]
    rewritten, n = graph_prep.rewrite_gridsample_5d(onnx.ModelProto.FromString(m.SerializeToString()))
    assert n == 1 and not [nd for nd in rewritten.graph.node if nd.op_type == "GridSample"]
    got = _session(rewritten).run(None, {"x": x, "g": g})[0]
    np.testing.assert_allclose(got, want, atol=2e-6)


def test_gridsample_rewrite_leaves_4d_alone():
    node = helper.make_node("GridSample", ["x", "g"], ["y"], align_corners=0)
    m = make_model([node], [vi("x", [1, 2, 5, 5]), vi("g", [1, 3, 3, 2])], [vi("y", [1, 2, 3, 3])], {}, 16)
    _, n = graph_prep.rewrite_gridsample_5d(m)
    assert n == 0


def test_warp_graph_transforms_match(tmp_path):
    """W (two 5-D GridSamples, opset 16): the opset-20 upgrade is exact; the rewrite within
    1e-6; FP16 (volume, weights and activations; coordinates in FP32) within 2e-3 of the FP32
    output in [0, 1] (measured: ~4e-4)."""
    m16 = model_W(16)
    vol = RNG.random((1, 32, 16, 64, 64), dtype=np.float32)
    kd = RNG.uniform(-0.3, 0.3, (1, 21, 3)).astype(np.float32)
    ks = RNG.uniform(-0.3, 0.3, (1, 21, 3)).astype(np.float32)
    feeds = {"feature_3d": vol, "kp_driving": kd, "kp_source": ks}
    want = _session(m16).run(None, feeds)[0]

    def copy():
        return onnx.ModelProto.FromString(m16.SerializeToString())

    up = graph_prep.upgrade_opset(copy(), 20)
    assert graph_prep.opset_of(up) == 20
    modes = {a.s for nd in up.graph.node if nd.op_type == "GridSample" for a in nd.attribute if a.name == "mode"}
    assert modes == {b"linear"}
    np.testing.assert_allclose(_session(up).run(None, feeds)[0], want, atol=1e-7)
    rw = graph_prep.transform(copy(), graph_prep.Variant(rewrite=True))
    np.testing.assert_allclose(_session(rw).run(None, feeds)[0], want, atol=1e-6)
    half = graph_prep.transform(copy(), graph_prep.Variant(rewrite=True, fp16=True))
    # the keypoint -> sampling-coordinate path (here: the identity grid plus the keypoint shift)
    # stays FP32, and so do the rewritten GridSample's gathers and blend (half of the FP16 error on
    # the real architecture): this stand-in warp is all sampling, so its volume is never cast
    assert {i.data_type for i in half.graph.initializer if i.name.startswith("grid0")} == {TensorProto.FLOAT}
    assert any(nd.name.startswith(graph_prep.KP_PATH_PREFIX) for nd in half.graph.node)
    assert any(nd.name.startswith(graph_prep.GS_DATA_PREFIX) for nd in half.graph.node)
    assert not any(nd.op_type == "Cast" and nd.input[0] == "feature_3d" for nd in half.graph.node)
    assert half.graph.input[0].type.tensor_type.elem_type == FLOAT  # I/O stays FP32
    err = np.abs(_session(half).run(None, feeds)[0] - want).max()
    assert err < 2e-3, err
    native_half = graph_prep.transform(copy(), graph_prep.Variant(opset20=True, fp16=True))
    assert np.abs(_session(native_half).run(None, feeds)[0] - want).max() < 2e-3


def test_fp16_feature_extractor_within_tolerance():
    """F in FP16 vs FP32: within 1e-2 absolute on features of magnitude ~1 (measured ~2e-3)."""
    img = RNG.random((1, 3, 256, 256), dtype=np.float32)
    want = _session(model_F()).run(None, {"img": img})[0]
    half = graph_prep.to_fp16(model_F())
    got = _session(half).run(None, {"img": img})[0]
    assert got.dtype == np.float32
    assert np.abs(got - want).max() < 1e-2


def test_prepared_graph_is_cached_and_keyed(tmp_path):
    build_models(tmp_path)
    src = tmp_path / "liveportrait" / "warping_spade.onnx"
    v = graph_prep.Variant(rewrite=True, fp16=True)
    p1 = graph_prep.prepared_graph(src, v)
    assert p1.parent == src.parent / ".prepared" and f"t{graph_prep.TRANSFORM_VERSION}" in p1.name
    mtime = p1.stat().st_mtime_ns
    assert graph_prep.prepared_graph(src, v) == p1 and p1.stat().st_mtime_ns == mtime  # not rebuilt
    assert graph_prep.prepared_graph(src, graph_prep.Variant()) == src  # nothing to do: the source itself
    onnx.save(model_W(20), str(src))  # a different source -> a different key
    p2 = graph_prep.prepared_graph(src, v)
    assert p2 != p1 and p2.is_file()
    assert not list(p1.parent.glob("*.tmp"))


# ---------------------------------------------------------------- providers


class _FakeOrt:
    def __init__(self, providers, preload_error=None):
        self.providers, self.preload_error = providers, preload_error

    def get_available_providers(self):
        return self.providers

    def preload_dlls(self):
        if self.preload_error:
            raise OSError(self.preload_error)


def test_provider_choice_and_its_reasons():
    cpu = ["CPUExecutionProvider"]
    c = providers.choose("cuda", available=cpu, wheels=["onnxruntime", "onnxruntime-gpu"])
    assert c.device == "cpu" and "CPU-only 'onnxruntime' is installed beside 'onnxruntime-gpu'" in c.reason
    assert "requested cuda" in c.line() and "\n" not in c.line()
    c = providers.choose("cuda", available=cpu, wheels=["onnxruntime"])
    assert c.device == "cpu" and "install 'onnxruntime-gpu'" in c.reason
    fake = _FakeOrt(["CUDAExecutionProvider", "CPUExecutionProvider"], "libcudnn.so.9: cannot open shared object")
    c = providers.choose("cuda", ort=fake, wheels=["onnxruntime-gpu"])
    assert c.device == "cpu" and "CUDA/cuDNN" in c.reason and "libcudnn" in c.reason
    c = providers.choose(
        "auto", ort=_FakeOrt(["CUDAExecutionProvider", "CPUExecutionProvider"]), wheels=["onnxruntime-gpu"]
    )
    assert c.device == "cuda" and c.providers == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    c = providers.choose("auto", ort=_FakeOrt(["DmlExecutionProvider", "CPUExecutionProvider"]), wheels=[])
    assert c.device == "dml" and c.providers[0][0] == "DmlExecutionProvider"
    if not providers.sys.platform.startswith("win"):
        assert "Windows only" in providers.choose("dml", available=cpu, wheels=[]).reason
    with pytest.raises(UserError, match="render.device"):
        providers.choose("tpu")


def test_session_that_fell_back_is_named(models_dir, monkeypatch):
    """A session asked for CUDA that runs on the CPU says so (what ORT does when CUDA fails), and
    why: no NVIDIA GPU, or (with one) a CUDA/cuDNN mismatch."""
    from types import SimpleNamespace

    cuda = providers.ProviderChoice("cuda", ["CPUExecutionProvider"], "cuda")
    no_gpu = SimpleNamespace(found=False, names=(), reason="nvidia-smi not found (no NVIDIA driver)")
    monkeypatch.setattr(providers, "_NVIDIA", [no_gpu])
    net = Network(SPECS["S"], models_dir / SPECS["S"].file, cuda)
    assert net.line.startswith("stitching: CPUExecutionProvider, not CUDAExecutionProvider")
    assert "no NVIDIA GPU found (nvidia-smi not found" in net.line and "\n" not in net.line
    gpu = SimpleNamespace(found=True, names=("NVIDIA GeForce RTX 3060",), reason="nvidia-smi")
    monkeypatch.setattr(providers, "_NVIDIA", [gpu])
    line = Network(SPECS["S"], models_dir / SPECS["S"].file, cuda).line
    assert "CUDA/cuDNN version mismatch" in line and "RTX 3060" in line
    c = providers.choose("cuda", available=["CPUExecutionProvider"], wheels=["onnxruntime"])
    assert "install 'onnxruntime-gpu'" in c.reason and "NVIDIA GPU present: NVIDIA GeForce RTX 3060" in c.reason


def test_gpu_hint_on_this_machine():
    """The real nvidia-smi probe answers in one clause (here: no driver)."""
    hint = providers.nvidia_hint()
    assert hint.startswith(("no NVIDIA GPU found", "NVIDIA GPU present")) and "\n" not in hint


def test_cuda_requested_on_this_cpu_only_build_falls_back(models_dir):
    r = LivePortraitRenderer(size=256, models_dir=models_dir, unverified=True, device="cuda")
    assert r.choice.device == "cpu"
    lines = r.provider_lines()
    assert "requested cuda" in lines[0] and all("\n" not in ln for ln in lines)
    assert all(ln.split(": ")[1].startswith("CPUExecutionProvider") for ln in lines[1:])


# ---------------------------------------------------------------- networks: binding, bad files


def test_binding_by_published_names_and_io_binding_on_cpu_ortvalues(models_dir):
    cpu = providers.choose("cpu")
    w = Network(SPECS["W"], models_dir / SPECS["W"].file, cpu)
    assert w.in_names == ["feature_3d", "kp_driving", "kp_source"] and w.out_names == ["out"]
    m = Network(SPECS["M"], models_dir / SPECS["M"].file, cpu)
    assert m.out_names == ["pitch", "yaw", "roll", "t", "exp", "scale", "kp"]  # kp is 1x21x3 here, not 1x63
    vol = RNG.random((1, 32, 16, 64, 64), dtype=np.float32)
    kd, ks = (RNG.uniform(-0.2, 0.2, (21, 3)) for _ in range(2))
    want = w.run(vol, kd, ks)[0]
    bound = w.bind({0: vol})
    assert all(v.device_name() == "cpu" for v in bound.fixed.values())
    got = bound(kd, ks)[0]
    np.testing.assert_array_equal(got, want)
    got2 = bound(ks, kd)[0]  # rebinding the small inputs only
    np.testing.assert_array_equal(got2, w.run(vol, ks, kd)[0])
    assert w.runs == 4


def test_bad_weights_give_one_line(tmp_path, models_dir):
    cpu = providers.choose("cpu")
    src = models_dir / SPECS["W"].file
    data = src.read_bytes()
    bad = tmp_path / "warping_spade.onnx"
    cases = {
        "truncated": data[: len(data) // 3],
        "garbage": b"\x00not an onnx file" * 100,
        "empty": b"",
    }
    for what, blob in cases.items():
        bad.write_bytes(blob)
        with pytest.raises(UserError) as e:
            Network(SPECS["W"], bad, cpu)
        assert str(bad) in str(e.value) and "\n" not in str(e.value), what
        with pytest.raises(UserError) as e:  # the prepared path reads it with onnx first
            graph_prep.prepared_graph(bad, graph_prep.Variant(fp16=True), tmp_path / "c")
        assert str(bad) in str(e.value) and "\n" not in str(e.value), what
    # a valid graph that is not this network: expected and found, in one line
    with pytest.raises(UserError) as e:
        Network(SPECS["W"], models_dir / SPECS["S"].file, cpu)
    msg = str(e.value)
    assert "stitching.onnx" in msg and "feature_3d(any)" in msg and "found inputs" in msg and "\n" not in msg
    with pytest.raises(UserError, match="missing"):
        LivePortraitRenderer(models_dir=tmp_path / "nothing", device="cpu", unverified=True)
    # files that are not verified run only when asked for, and the refusal is one line
    with pytest.raises(UserError, match="unverified") as e:
        LivePortraitRenderer(models_dir=models_dir, device="cpu")
    assert str(models_dir) in str(e.value) and "\n" not in str(e.value)


# ---------------------------------------------------------------- the renderer end to end


def _face(centre=(128.0, 120.0), iod=40.0, roll_deg=0.0):
    """Canonical MediaPipe landmarks placed in a picture: (478, 3) pixels."""
    c = load_canonical_face()
    th = np.radians(roll_deg)
    rot = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    k = iod / 6.3
    p = c.copy() * k
    p[:, :2] = p[:, :2] @ rot.T + np.asarray(centre)
    return p.astype(np.float32)


def _character(size=256):
    yy, xx = np.mgrid[0:size, 0:size]
    rgba = np.zeros((size, size, 4), np.uint8)
    rgba[..., 0] = (xx * 255 // size).astype(np.uint8)
    rgba[..., 1] = (yy * 255 // size).astype(np.uint8)
    rgba[..., 2] = 90
    rgba[..., 3] = np.where((xx - size / 2) ** 2 + (yy - size / 2) ** 2 < (0.45 * size) ** 2, 255, 0)
    return rgba, _face((size / 2, size * 0.45), iod=size * 0.16)


def _driver_frame(shift=0.0, tint=0):
    yy, xx = np.mgrid[0:240, 0:320]
    f = np.zeros((240, 320, 3), np.uint8)
    f[..., 0] = np.clip(xx * 0.6 + shift * 3 + tint, 0, 255)
    f[..., 1] = np.clip(yy + tint, 0, 255)
    f[..., 2] = 60
    return f, _face((160 + shift, 110), iod=50, roll_deg=shift / 4)


@pytest.fixture()
def renderer(models_dir):
    r = LivePortraitRenderer(size=256, models_dir=models_dir, unverified=True, device="cpu")
    yield r
    r.close()


def test_prepare_arrays(renderer):
    rgba, lm = _character()
    a = renderer.prepare_picture(rgba, lm)
    assert a["f_s"].dtype == np.float16 and a["f_s"].shape == (1, 32, 16, 64, 64)
    M = a["crop_M"]
    inp = crop.to_network(crop.warp_crop(crop.flatten_alpha(rgba), M, 256))
    np.testing.assert_allclose(a["f_s"].astype(np.float32), ref_F(inp), atol=2e-3)  # FP16 storage
    src = motion.Motion.from_outputs(*ref_M(inp))
    np.testing.assert_allclose(a["x_s"], src.keypoints(), atol=1e-3)  # float32 session vs float64 here
    np.testing.assert_allclose(a["x_c"], src.kp, atol=1e-5)
    np.testing.assert_allclose(a["angles"], [src.pitch, src.yaw, src.roll], atol=1e-2)
    lip_in = motion.lip_input(src.keypoints(), float(a["lip_ratio"][0]), 0.0)
    np.testing.assert_allclose(a["lip_delta"].ravel(), (lip_in @ W_LIP).ravel(), atol=1e-5)
    # closed lips at rest are left alone
    closed = lm.copy()
    closed[14] = closed[13]
    assert not renderer.prepare_picture(rgba, closed)["lip_delta"].any()
    np.testing.assert_allclose(crop.compose(M, a["crop_inv"]), [[1, 0, 0], [0, 1, 0]], atol=1e-5)  # float32
    assert renderer.nets["F"].runs == 2


def test_render_end_to_end_runs_F_once_and_caches(renderer, tmp_path):
    rgba, lm = _character()
    arrays = renderer.prepare_picture(rgba, lm)
    # the character cache keeps these as .npy: render from memory-mapped copies
    for k, v in arrays.items():
        np.save(tmp_path / f"{k}.npy", v)
    loaded = {k: np.load(tmp_path / f"{k}.npy", mmap_mode="r") for k in arrays}
    W = renderer.nets["W"]
    frames = [_driver_frame(s, tint=s) for s in (0, 0, 8, 16, 8, 0)]
    outs = []
    for i, (f, flm) in enumerate(frames):
        outs.append(renderer.drive(loaded, Driver(f, flm, timestamp=i / 30)))
    for o in outs:
        assert o.shape == (256, 256, 4) and o.dtype == np.uint8
    assert renderer.nets["F"].runs == 1  # only prepare ran F
    assert renderer.nets["M"].runs == 1 + len(frames)
    # frame 1 repeats frame 0 (the neutral): held, W not run; moved frames render anew
    st = renderer.cache.stats()
    assert st["holds"] >= 1 and st["misses"] >= 3 and W.runs == st["misses"]
    assert np.array_equal(outs[0], outs[1])
    assert not np.array_equal(outs[0], outs[3])  # the driver moved: the face moved
    # outside the pasted box the picture is the character's own
    M_out = crop.compose(crop.scale_matrix(2.0), arrays["crop_M"].astype(np.float64))
    outside = crop.paste_inputs(rgba, M_out, 512)["pb_mask"][0, 0] == 0
    assert outside.any() and np.array_equal(outs[3][outside], rgba[outside])
    assert np.array_equal(outs[3][..., 3], rgba[..., 3])  # alpha is the character's
    s = renderer.stats()
    assert s["network_runs"]["appearance"] == 1
    line = renderer.status_line()
    assert line.startswith("liveportrait (UNVERIFIED files from ") and ") on cpu: ~" in line
    assert "too slow for live" in line
    assert set(s["own_ms"]) == set(s["own_cpu_ms"]) == {"crop", "motion", "paste"}
    ch = renderer._char
    fresh = {k: np.load(tmp_path / f"{k}.npy", mmap_mode="r") for k in arrays}
    renderer.drive(fresh, Driver(*frames[-1], timestamp=1.0))
    assert renderer._char is ch  # fresh copies of the same character: nothing rebuilt


def test_render_output_is_the_expected_function(models_dir):
    """No smoothing, no cache, no retargeting: the output equals the reference pipeline computed
    here by hand from the stand-ins' formulas (within 2 levels: FP16 f_s and rounding)."""
    r = LivePortraitRenderer(
        size=256, models_dir=models_dir, unverified=True, device="cpu", smoothing=False, cache_frames=0, hold=0.0,
        eye_retarget=False, lip_retarget=False, normalize_lip=False,
    )  # fmt: skip
    rgba, lm = _character()
    arrays = r.prepare_picture(rgba, lm)
    f0, l0 = _driver_frame(0)
    f1, l1 = _driver_frame(12, tint=20)
    r.drive(arrays, Driver(f0, l0, 0.0))
    out = r.drive(arrays, Driver(f1, l1, 0.1))

    def motion_of(frame, landmarks):
        inp = crop.to_network(
            crop.warp_crop(frame, crop.crop_matrix(landmarks, 256, crop.DRIVER_SCALE, crop.DRIVER_VY))
        )
        return motion.Motion.from_outputs(*ref_M(inp))

    src = motion.Motion.from_outputs(
        *ref_M(crop.to_network(crop.warp_crop(crop.flatten_alpha(rgba), arrays["crop_M"])))
    )
    x_s = src.keypoints()
    x_d = motion.relative_keypoints(src, motion_of(f1, l1), motion_of(f0, l0))
    x_d = motion.apply_stitching(x_d, motion.stitching_input(x_s, x_d) @ W_S)
    sess = _session(model_W())
    img = sess.run(None, {"feature_3d": arrays["f_s"].astype(np.float32), "kp_driving": x_d[None].astype(np.float32),
                          "kp_source": x_s[None].astype(np.float32)})[0]  # fmt: skip
    gen = np.clip(img[0].transpose(1, 2, 0) * 255 + 0.5, 0, 255).astype(np.uint8)
    M_out = crop.compose(crop.scale_matrix(2.0), arrays["crop_M"])
    want = crop.PasteBack(rgba, M_out, 512)(gen)
    assert np.abs(out.astype(int) - want.astype(int)).max() <= 2


def test_strength_zero_and_lost_face_give_the_character_at_rest(models_dir):
    r = LivePortraitRenderer(size=256, models_dir=models_dir, unverified=True, device="cpu", smoothing=False,
                             expression_strength=0.0, head_strength=0.0)  # fmt: skip
    rgba, lm = _character()
    arrays = r.prepare_picture(rgba, lm)
    ch = r._character(arrays)
    rest = r.driving_keypoints(ch, None)
    f0, l0 = _driver_frame(0)
    r.drive(arrays, Driver(f0, l0, 0.0))
    f1, l1 = _driver_frame(20, tint=30)
    raw = r._driver_vector(Driver(f1, l1, 0.1))
    # zero strengths: the driver's motion does not reach the keypoints (retargeting included)
    np.testing.assert_allclose(r.driving_keypoints(ch, raw), rest, atol=1e-6)  # float32 nets
    r2 = LivePortraitRenderer(size=256, models_dir=models_dir, unverified=True, device="cpu", smoothing=False)
    arrays2 = r2.prepare_picture(rgba, lm)
    r2.drive(arrays2, Driver(f0, l0, 0.0))
    moved = r2.drive(arrays2, Driver(f1, l1, 0.1))
    lost = r2.drive(arrays2, Driver(None, None, 0.2, found=False, lost_blend=1.0))
    at_rest = r2.drive(arrays2, Driver(f0, l0, 0.3))  # the neutral frame again
    assert not np.array_equal(moved, at_rest)
    assert np.abs(lost.astype(int) - at_rest.astype(int)).max() <= 1


def test_calibrate_makes_the_next_frame_neutral(renderer):
    rgba, lm = _character()
    arrays = renderer.prepare_picture(rgba, lm)
    ch = renderer._character(arrays)
    f0, l0 = _driver_frame(0)
    f1, l1 = _driver_frame(15, tint=25)
    renderer.drive(arrays, Driver(f0, l0, 0.0))
    renderer.calibrate()
    renderer.drive(arrays, Driver(f1, l1, 0.1))  # now the neutral
    again = renderer.driving_keypoints(ch, renderer._last)
    np.testing.assert_allclose(again, renderer.driving_keypoints(ch, renderer._last), atol=0)
    neutral_v = np.concatenate([renderer.neutral.vector(), renderer.neutral_ratios])
    np.testing.assert_allclose(renderer._last, neutral_v, atol=1e-9)


def test_mirror_flips_the_driver_crop():
    f, lm = _driver_frame(10)
    M = crop.crop_matrix(lm, 256, crop.DRIVER_SCALE, crop.DRIVER_VY)
    a = crop.warp_crop(f, crop.compose(crop.mirror_matrix(256), M))
    b = crop.warp_crop(f, M)[:, ::-1]
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 1.0


def test_render_cache_lru_and_hold():
    from worker.render.liveportrait.render_cache import RenderCache

    c = RenderCache(capacity=2, step=0.01, hold=0.001)
    x = np.zeros((21, 3))
    frames = {}
    for i, off in enumerate((0.0, 0.05, 0.1)):
        f, k = c.lookup(x + off)
        assert f is None
        frames[off] = np.full(4, i, np.uint8)
        c.store(k, x + off, frames[off])
    f, _ = c.lookup(x + 0.1 + 0.0005)  # within the hold threshold of the last frame
    assert f is frames[0.1] and c.holds == 1
    f, _ = c.lookup(x + 0.05 + 0.002)  # same quantisation cell as 0.05: an LRU hit
    assert f is frames[0.05] and c.hits == 1
    f, _ = c.lookup(x + 0.0)  # evicted (capacity 2)
    assert f is None
    assert c.stats() == {"frames": 6, "holds": 1, "hits": 1, "misses": 4, "hit_rate": round(2 / 6, 4)}
    c.clear()
    assert c.lookup(x + 0.1)[0] is None


def test_driver_from_face_state_and_cutout(renderer):
    from types import SimpleNamespace

    from worker.track.face_state import FaceState

    rgba, lm = _character()
    cut = SimpleNamespace(image=rgba, landmarks=lm, kind="human")  # what the characters package hands over
    arrays = renderer.prepare(cut)
    f, flm = _driver_frame(0)
    face = FaceState(found=True, timestamp=1.5, landmarks=flm, lost_blend=0.0)
    d = Driver.from_face(f, face)
    assert d.timestamp == 1.5 and d.found and d.landmarks is flm
    out = renderer.drive(SimpleNamespace(arrays=arrays), d)
    assert out.shape == (256, 256, 4)
    with pytest.raises(UserError, match="not made by"):
        renderer.drive({"image": rgba}, d)
    from worker.retarget.pose import TargetPose

    with pytest.raises(UserError, match="not from a TargetPose"):
        renderer.drive(arrays, TargetPose(landmarks=flm))


def test_fp16_constant_of_shape_default_value():
    """ConstantOfShape without a value makes float32 zeros: inside the FP16 region it must make
    FP16 zeros, else the graph does not load."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("ConstantOfShape", ["s"], ["z"]),
        helper.make_node("Add", ["x", "z"], ["y0"]),
        helper.make_node("Mul", ["y0", "k"], ["y"]),
    ]
    m = make_model(nodes, [vi("x", [2, 3])], [vi("y", [2, 3])], {"k": np.full((2, 3), 2.0, np.float32)}, 17)
    x = RNG.random((2, 3), dtype=np.float32)
    got = _session(graph_prep.to_fp16(m)).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, 2 * x, atol=2e-3)


def test_a_graph_that_fails_in_fp16_runs_in_fp32(models_dir, monkeypatch, caplog):
    """If our FP16 pass ever makes a graph ONNX Runtime refuses, that network runs in FP32."""
    from worker.render.liveportrait.renderer import load_networks

    def broken_fp16(model):  # FP16 weights without the casts: a type mismatch on load
        for init in model.graph.initializer:
            if init.data_type == FLOAT:
                init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name))
        return model

    monkeypatch.setattr(graph_prep, "to_fp16", broken_fp16)
    cpu = providers.choose("cpu")
    nets = load_networks(models_dir, cpu, precision="fp16")
    assert nets["S"].path == models_dir / SPECS["S"].file  # the FP32 source, not the broken copy
    assert "running liveportrait/stitching.onnx in FP32" in caplog.text
    out = nets["S"].run(np.ones((1, 126), np.float32))[0]
    np.testing.assert_allclose(out, np.ones((1, 126)) @ W_S, atol=1e-4)


def test_bgr_driver_frames_give_the_same_motion(renderer):
    rgba, lm = _character()
    renderer.prepare_picture(rgba, lm)
    f, flm = _driver_frame(6, tint=10)
    rgb = renderer._driver_vector(Driver(f, flm, 0.0))
    bgr = renderer._driver_vector(Driver(np.ascontiguousarray(f[..., ::-1]), flm, 0.0, bgr=True))
    np.testing.assert_array_equal(rgb, bgr)


def test_motion_smoother_cuts_jitter_and_follows_moves():
    """On a still driver with motion-extractor-like noise the smoothed motion jitters far less
    (measured here: pose x0.18, steady expression x0.18, lids/lips x0.38 of the raw second-
    difference RMS); a 30-degree turn in 0.5 s is followed within one frame, a 3-frame blink
    keeps its depth (0.0498 of 0.05)."""
    from worker.render.liveportrait.smoothing import MotionSmoother

    rng = np.random.default_rng(5)
    n, fps = 120, 30.0
    noise = np.concatenate([rng.normal(0, 0.5, (n, 3)), rng.normal(0, 0.003, (n, 4)),
                            rng.normal(0, 0.004, (n, 63)), rng.normal(0, 0.01, (n, 3))], axis=1)  # fmt: skip
    sm = MotionSmoother()
    out = np.array([sm(noise[i], i / fps) for i in range(n)])

    def jitter(x):
        return np.sqrt((np.diff(x, 2, axis=0) ** 2).mean(axis=0))

    ratio = jitter(out[20:]) / jitter(noise[20:])
    fast = np.zeros(63, bool)
    fast[np.repeat(np.isin(np.arange(21), motion.EYE_KP + motion.LIP_KP), 3)] = True
    assert ratio[:3].mean() < 0.21, ratio[:3]
    assert ratio[7:70][~fast].mean() < 0.21 and ratio[7:70][fast].mean() < 0.42, ratio[7:70]
    # a turn: yaw 0 -> 30 degrees over 0.5 s
    sm.reset()
    t = np.arange(60) / fps
    yaw = np.clip((t - 0.5) / 0.5, 0, 1) * 30.0
    v = np.zeros((60, 73))
    v[:, 1] = yaw
    ys = np.array([sm(v[i], t[i])[1] for i in range(60)])
    lag = min(range(8), key=lambda s: np.abs(ys[15 + s : 30 + s] - yaw[15:30]).mean())
    assert lag <= 1, ys
    # a blink on a lid keypoint's exp: 0.05 deep for 3 frames
    sm.reset()
    k = 7 + 3 * motion.EYE_KP[0] + 1
    v = np.zeros((30, 73))
    v[10:13, k] = -0.05
    ks = np.array([sm(v[i], i / fps)[k] for i in range(30)])
    assert ks.min() < -0.045, ks.min()


def test_idle_life_while_the_face_is_lost(models_dir):
    """Face lost for good (lost_blend 1): with idle life the character sways between two moments,
    without it it holds the neutral."""

    def run(idle):
        r = LivePortraitRenderer(
            size=256, models_dir=models_dir, unverified=True, device="cpu", idle=idle, cache_frames=0, hold=0.0
        )
        rgba, lm = _character()
        arrays = r.prepare_picture(rgba, lm)
        f, flm = _driver_frame(0)
        r.drive(arrays, Driver(f, flm, 0.0))
        return [r.drive(arrays, Driver(None, None, t, found=False, lost_blend=1.0)) for t in (5.0, 9.0)]

    a, b = run(True)
    assert np.abs(a.astype(int) - b.astype(int)).max() > 0
    c, d = run(False)
    assert np.array_equal(c, d)


def test_paste_back_on_the_device_matches_opencv(models_dir):
    """W+G with the paste-back appended (what a GPU runs) against OpenCV's paste on the host:
    within 2 levels (bilinear in float vs OpenCV's fixed point), same alpha, same elsewhere."""
    outs = []
    for device_paste in (True, False):
        r = LivePortraitRenderer(
            size=256, models_dir=models_dir, unverified=True, device="cpu", device_paste=device_paste
        )
        assert ("pb_grid" in r.nets["W"].in_names) is device_paste
        rgba, lm = _character()
        arrays = r.prepare_picture(rgba, lm)
        f0, l0 = _driver_frame(0)
        f1, l1 = _driver_frame(10, tint=15)
        r.drive(arrays, Driver(f0, l0, 0.0))
        outs.append(r.drive(arrays, Driver(f1, l1, 0.1)))
        if device_paste:
            assert r.own_ms()["paste"] < 2.0  # nothing left to do on the host but a reshape (~0.05 ms)
    a, b = (o.astype(int) for o in outs)
    assert np.array_equal(a[..., 3], b[..., 3])
    assert np.abs(a - b).max() <= 2, np.abs(a - b).max()


@pytest.mark.parametrize("opset", [16, 20])
def test_the_gpu_configuration_end_to_end_on_the_cpu(opset, tmp_path):
    """What a GPU provider runs (W+G with gathers instead of 5-D GridSample, FP16, paste-back
    appended; F, S, eye, lip in FP16; M in FP32), here on the CPU provider, from graphs at
    opset 16 and 20: the same frames as the plain FP32 configuration within 3 levels (measured 1)."""
    models_dir = build_models(tmp_path, opset=opset)

    def frames(**opts):
        r = LivePortraitRenderer(
            size=256, models_dir=models_dir, unverified=True, device="cpu", smoothing=False, **opts
        )
        rgba, lm = _character()
        arrays = r.prepare_picture(rgba, lm)
        out = [r.drive(arrays, Driver(*_driver_frame(s, tint=s), timestamp=s / 30)) for s in (0, 6, 12)]
        return r, out

    gpu_like, a = frames(precision="fp16", grid_sample="rewrite")
    assert "fp16" in gpu_like.nets["W"].path.name and "gather" in gpu_like.nets["W"].path.name
    assert gpu_like.nets["M"].path.name == "motion_extractor.onnx"  # M stays the FP32 original
    _, b = frames(precision="fp32", grid_sample="native", device_paste=False)
    for x, y in zip(a, b, strict=True):
        assert np.abs(x.astype(int) - y.astype(int)).max() <= 3


def test_gpu_check_runs_both_graph_sets_with_io_binding_and_says_no_gpu(models_dir):
    """`stream-animator gpu-check`'s code on the CPU provider (no GPU here), on the stand-ins:
    both sets time every network through the renderer's own path and the FP16 set's error is
    measured against FP32 on the image."""
    from worker.render.liveportrait.gpu_check import run_check

    lines: list[str] = []
    rep = run_check(models_dir, device="cpu", runs=1, threads=1, unverified=True, log=lines.append)
    assert rep["device"] == "cpu" and not rep["gpu"] and "NO GPU" in rep["note"] and "NO GPU" in lines[0]
    assert rep["weights"].startswith("UNVERIFIED files from")
    assert set(rep["sets"]) == {"fp32", "fp16"}
    for s in rep["sets"].values():
        assert set(s["ms"]) == {"appearance", "motion", "warp+generator", "stitching", "eye", "lip"}
        assert all(v > 0 for v in s["ms"].values()) and s["fps"] > 0
        assert all("CPUExecutionProvider" in w for w in s["where"])
    e = rep["sets"]["fp16"]["error_vs_fp32"]
    assert 0 <= e["max"] < 6e-3 and e["grey_levels_max"] == round(e["max"] * 255, 2)  # stand-ins, F in FP16 too: 3.1e-3
    assert any(ln.startswith("fp16 vs fp32 on the image: max") for ln in lines)
