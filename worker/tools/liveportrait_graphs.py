"""LivePortrait's six networks on their REAL architecture, with seeded random weights, as ONNX.

A development tool (nothing in the worker imports it). The networks are built from LivePortrait's
own PyTorch module definitions and `models.yaml`, taken from the MIT package `mimic-head` (used as
a dependency, not copied), and exported the way the published files are:

    F   appearance_feature_extractor.onnx  img -> output
    M   motion_extractor.onnx              img -> pitch, yaw, roll, t, exp, scale, kp (kp [1, 63])
    W+G warping_spade.onnx                 feature_3d, kp_driving, kp_source -> out
    S   stitching.onnx, eye: stitching_eye.onnx, lip: stitching_lip.onnx    input -> output

in every convention found in the wild (`CONVENTIONS`): the published names and order at opset 20;
opset 16 with GridSample emitted on 5-D tensors; the reordered exports (a motion extractor listing
`kp` first, a warp in `warp_decode` order: source before driving), and the same without tensor
names. Two sizes: `full` (the published widths: file sizes match the published ones; for `bench`
and the GPU check) and `small` (the same operators and graph structure at reduced widths, for the
tests; `--pack` writes the layout committed under tests/data/liveportrait_arch, with BUILD.json
naming the versions that built it: 4.9 MB, both warps sharing one weights file).

torch is not part of any install (from PyPI it brings ~5 GB of CUDA libraries): run as

    python -m worker.tools.liveportrait_graphs --size small --out DIR

and the tool makes (once) and reuses its own environment in the user cache folder with the pinned
versions below (`ensure_env`), then re-runs itself there. The reordered and unnamed conventions are
graph edits (`derive`) that need only `onnx`, so tests can derive them from the committed set.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

# what built the committed small set; the cached environment installs exactly these
PINS = {
    "torch": "2.13.0",  # the CPU build pip finds on our machines' disk; elsewhere PyPI's (with CUDA libraries)
    "onnx": "1.19.1",
    "onnxscript": "0.7.2",  # torch.onnx needs it at import
    "numpy": "1.26.4",
    "pyyaml": "6.0.4",
    "mimic-head": "0.1.5",  # installed without its dependencies (a UI stack the modules do not use)
}
SEED = 20261207
# the spread (std) of the generator's output logits after `_tame`: the largest of the six shared
# portraits' own (logit of each pixel: 0.83-1.93, docs/performance.md), so the FP16 error is not understated
GEN_LOGIT_STD = 2.0
NAMES = {
    "F": "appearance_feature_extractor",
    "M": "motion_extractor",
    "W": "warping_spade",
    "S": "stitching",
    "eye": "stitching_eye",
    "lip": "stitching_lip",
}
M_OUTPUTS = ("pitch", "yaw", "roll", "t", "exp", "scale", "kp")
W_INPUTS = ("feature_3d", "kp_driving", "kp_source")
# convention -> how it differs from `published` (opset 20, published names and order)
CONVENTIONS = {
    "published": "the published names and order, opset 20 (5-D GridSample native)",
    "opset16": "opset 16 with GridSample emitted on 5-D tensors (mode bilinear)",
    "reordered": "motion outputs kp first; warp inputs source before driving (names kept)",
    "unnamed": "the published order with generic tensor names (same-shaped roles must be refused)",
    "unnamed_reordered": "the reordered lists with generic names (ambiguous: must be refused)",
}
# reduced widths: every module, operator and the tensor interface of the published graphs, except
# the channel counts inside (the feature volume keeps its 16 x 64 x 64 grid with 4 channels)
SMALL: dict[str, dict[str, Any]] = {
    "appearance_feature_extractor_params": {"block_expansion": 8, "max_features": 64, "reshape_channel": 4},
    "motion_extractor_params": {"dims": [8, 16, 24, 32]},
    "warping_module_params": {
        "block_expansion": 1,
        "max_features": 64,  # = the feature volume's channels x depth (4 x 16)
        "reshape_channel": 4,
        "dense_motion_params": {"block_expansion": 1, "max_features": 8, "compress": 1},
    },
    "spade_generator_params": {"block_expansion": 1, "max_features": 4, "out_channels": 4},
    "stitching_retargeting_module_params": {
        "stitching": {"hidden_sizes": [32, 32, 16]},
        "lip": {"hidden_sizes": [32, 32, 16]},
        "eye": {"hidden_sizes": [32, 32, 32, 32, 16]},
    },
}


# ---------------------------------------------------------------------------------- environment


def env_dir() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("stream-animator")) / "liveportrait-graphs-env"


def has_torch() -> bool:
    try:
        import mimic_head.modules.warping_network  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def ensure_env(log=print) -> Path:
    """The cached environment's python (made on first use: a venv with the pinned versions;
    mimic-head without its dependencies, which are a UI stack we do not need)."""
    d = env_dir()
    py = d / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    stamp = d / "pins.json"
    if py.is_file() and stamp.is_file() and json.loads(stamp.read_text()) == PINS:
        return py
    log(f"making the builder's environment in {d} (torch {PINS['torch']} CPU; once)")
    subprocess.run([sys.executable, "-m", "venv", str(d)], check=True)
    spec = [f"{k}=={v}" for k, v in PINS.items() if k != "mimic-head"]
    subprocess.run([str(py), "-m", "pip", "install", "-q", *spec], check=True)
    subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--no-deps", f"mimic-head=={PINS['mimic-head']}"], check=True
    )
    tmp = stamp.with_suffix(".tmp")
    tmp.write_text(json.dumps(PINS))
    os.replace(tmp, stamp)
    return py


# ---------------------------------------------------------------------------------- the networks


def _params(size: str) -> dict:
    import mimic_head
    import yaml

    cfg: dict[str, Any] = yaml.safe_load((Path(mimic_head.__file__).parent / "config" / "models.yaml").read_text())[
        "model_params"
    ]
    if size == "small":
        for k, over in SMALL.items():
            for kk, v in over.items():
                if isinstance(v, dict) and isinstance(cfg[k].get(kk), dict):
                    cfg[k][kk].update(v)
                else:
                    cfg[k][kk] = v
    return cfg


def build_modules(size: str) -> dict:
    """The six torch modules (eval mode, seeded random weights), wrapped to the published I/O."""
    import torch
    from mimic_head.modules.appearance_feature_extractor import AppearanceFeatureExtractor
    from mimic_head.modules.convnextv2 import ConvNeXtV2
    from mimic_head.modules.spade_generator import SPADEDecoder
    from mimic_head.modules.stitching_retargeting_network import StitchingRetargetingNetwork
    from mimic_head.modules.warping_network import WarpingNetwork

    torch.manual_seed(SEED)
    p = _params(size)
    me = dict(p["motion_extractor_params"])
    dims = me.pop("dims", None)
    me.pop("backbone", None)
    motion = ConvNeXtV2(dims=dims, **me) if dims else ConvNeXtV2(**me)  # convnextv2_tiny's depths

    class Motion(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.detector = motion

        def forward(self, img):
            d = self.detector(img)
            return tuple(d[k] for k in M_OUTPUTS)

    class WarpSpade(torch.nn.Module):  # LivePortrait's warp_decode: W, then G on its 'out'
        def __init__(self):
            super().__init__()
            self.warp = WarpingNetwork(**p["warping_module_params"])
            self.spade = SPADEDecoder(**p["spade_generator_params"])

        def forward(self, feature_3d, kp_driving, kp_source):
            return self.spade(self.warp(feature_3d, kp_driving, kp_source)["out"])

    s = p["stitching_retargeting_module_params"]
    mods = {
        "F": AppearanceFeatureExtractor(**p["appearance_feature_extractor_params"]),
        "M": Motion(),
        "W": WarpSpade(),
        "S": StitchingRetargetingNetwork(**s["stitching"]),
        "eye": StitchingRetargetingNetwork(**s["eye"]),
        "lip": StitchingRetargetingNetwork(**s["lip"]),
    }
    mods = {k: m.eval() for k, m in mods.items()}  # before taming: it runs W (batch norms, spectral norms)
    _tame(mods)
    return mods


def _tame(mods: dict) -> None:
    """Random weights, but outputs in the ranges the renderer meets with the real ones: keypoint
    heads small (the canonical keypoints and expression are within about +-0.5), scale near 1,
    stitching deltas small, the generator's picture a portrait's spread of tones rather than
    saturated noise. Only the last layers change; the graph does not."""
    import torch

    with torch.no_grad():
        det = mods["M"].detector
        for head, gain, bias in (
            ("fc_kp", 0.3, None),
            ("fc_exp", 0.02, 0.0),
            ("fc_t", 0.02, 0.0),
            ("fc_scale", 0.01, 1.5),
        ):
            lin = getattr(det, head)
            lin.weight.mul_(gain)
            if bias is not None:
                lin.bias.fill_(bias)
        for k in ("S", "eye", "lip"):
            last = [m for m in mods[k].modules() if isinstance(m, torch.nn.Linear)][-1]
            last.weight.mul_(0.01)
            last.bias.zero_()
        # the generator's output: random weights draw a near-binary picture (logits of std 8.6-9.6,
        # up to +-99: a third of the pixels saturated), where LivePortrait's draws a portrait. The
        # last convolution is scaled so the logits have the spread of a real portrait's (GEN_LOGIT_STD);
        # FP16's error on the image grows with that spread, so a saturated picture would overstate it
        conv = mods["W"].spade.conv_img
        conv = conv[0] if isinstance(conv, torch.nn.Sequential) else conv
        seen: list = []
        hook = conv.register_forward_hook(lambda _m, _i, out: seen.append(out))
        mods["W"](*example_inputs("W", mods))
        hook.remove()
        gain = GEN_LOGIT_STD / float(seen[0].std())
        conv.weight.mul_(gain)
        conv.bias.mul_(gain)


def example_inputs(key: str, mods: dict) -> tuple:
    import torch

    g = torch.Generator().manual_seed(SEED + 1)
    img = torch.rand(1, 3, 256, 256, generator=g)
    if key in ("F", "M"):
        return (img,)
    if key == "W":
        with torch.no_grad():
            feat = mods["F"](img)
        kp = torch.rand(1, 21, 3, generator=g) - 0.5
        return (feat, kp + 0.02 * torch.randn(1, 21, 3, generator=g), kp)
    n = {"S": 126, "eye": 66, "lip": 65}[key]
    return (torch.rand(1, n, generator=g),)


def _io_names(key: str) -> tuple[list[str], list[str]]:
    if key == "F":
        return ["img"], ["output"]
    if key == "M":
        return ["img"], list(M_OUTPUTS)
    if key == "W":
        return list(W_INPUTS), ["out"]
    return ["input"], ["output"]


def _grid_sampler_5d(g, inp, grid, mode, padding, align_corners):
    """The opset-16 symbolic for 5-D grids that torch refuses: GridSample on 5-D tensors, as the
    published opset-16 files carry it (ONNX Runtime's CPU provider runs it)."""
    from torch.onnx import symbolic_helper as sh

    modes = {0: "bilinear", 1: "nearest", 2: "bicubic"}
    pads = {0: "zeros", 1: "border", 2: "reflection"}
    return g.op(
        "GridSample",
        inp,
        grid,
        align_corners_i=int(sh._maybe_get_const(align_corners, "b")),
        mode_s=modes[sh._maybe_get_const(mode, "i")],
        padding_mode_s=pads[sh._maybe_get_const(padding, "i")],
    )


def export(mods: dict, out: Path, opset: int, only: tuple[str, ...] = tuple(NAMES), log=print) -> list[Path]:
    """The six graphs at `opset` (TorchScript exporter: it keeps the published node layout)."""
    import onnx
    import torch

    out.mkdir(parents=True, exist_ok=True)
    if opset < 20:
        torch.onnx.register_custom_op_symbolic("::grid_sampler", _grid_sampler_5d, opset)
    files = []
    for key in only:
        mod = mods[key]
        path = out / f"{NAMES[key]}.onnx"
        t0 = time.perf_counter()
        ins, outs = _io_names(key)
        tmp = path.with_suffix(".tmp.onnx")
        with torch.no_grad():
            torch.onnx.export(
                mod, example_inputs(key, mods), str(tmp), opset_version=opset, input_names=ins, output_names=outs,
                do_constant_folding=True, dynamo=False,
            )  # fmt: skip
        m = onnx.load(str(tmp))
        onnx.checker.check_model(m)
        onnx.save(m, str(tmp))
        os.replace(tmp, path)
        files.append(path)
        log(f"  {path.name}: {path.stat().st_size / 1e6:.2f} MB, opset {opset}, {time.perf_counter() - t0:.1f} s")
    return files


# ---------------------------------------------------------------------------------- conventions


def _permute(items, order: Iterable[int]) -> None:
    keep = [type(items[0])() for _ in range(len(items))]
    for k, i in enumerate(order):
        keep[k].CopyFrom(items[i])
    del items[:]
    items.extend(keep)


def _rename(model, old: str, new: str) -> None:
    g = model.graph
    for vi in list(g.input) + list(g.output):
        if vi.name == old:
            vi.name = new
    for node in g.node:
        for seq in (node.input, node.output):
            for i, n in enumerate(seq):
                if n == old:
                    seq[i] = new


def derive(model, key: str, convention: str):
    """A copy of `published` graph `model` (network `key`) in `convention` (reordered / unnamed
    / unnamed_reordered): the listing order of inputs or outputs and their names change, the
    computation does not."""
    import onnx

    m = onnx.ModelProto()
    m.CopyFrom(model)
    if convention in ("reordered", "unnamed_reordered"):
        if key == "M":  # FasterLivePortrait's TensorRT engines: kp first
            names = [o.name for o in m.graph.output]
            _permute(m.graph.output, [names.index("kp")] + [i for i, n in enumerate(names) if n != "kp"])
        if key == "W":  # LivePortrait's warp_decode(feature_3d, kp_source, kp_driving)
            _permute(m.graph.input, [0, 2, 1])
    if convention.startswith("unnamed"):
        for i, vi in enumerate(list(m.graph.input)):
            _rename(m, vi.name, f"input_{i}")
        for i, vi in enumerate(list(m.graph.output)):
            _rename(m, vi.name, f"output_{i}")
    onnx.checker.check_model(m)
    return m


def write_conventions(published: Path, root: Path, log=print) -> None:
    import onnx

    for conv in ("reordered", "unnamed", "unnamed_reordered"):
        d = root / conv
        d.mkdir(parents=True, exist_ok=True)
        for key, name in NAMES.items():
            tmp = d / f"{name}.tmp.onnx"
            onnx.save(derive(onnx.load(str(published / f"{name}.onnx")), key, conv), str(tmp))
            os.replace(tmp, d / f"{name}.onnx")
        log(f"  {conv}/: {CONVENTIONS[conv]}")


def pack_for_tests(root: Path, dest: Path, log=print) -> None:
    """The committed layout of a `small` build: the six published graphs, the opset-16 warp as
    `warping_spade.opset16.onnx`, and ONE weights file both warps point into (they hold the same
    weights: stored once, the set stays about 5 MB). Tests derive the other conventions."""
    import shutil

    dest.mkdir(parents=True, exist_ok=True)
    for name in NAMES.values():
        shutil.copyfile(root / "published" / f"{name}.onnx", dest / f"{name}.onnx")
    shutil.copyfile(root / "opset16" / "warping_spade.onnx", dest / "warping_spade.opset16.onnx")
    share_weights([dest / "warping_spade.onnx", dest / "warping_spade.opset16.onnx"], dest / "warping_spade.weights")
    info = json.loads((root / "BUILD.json").read_text())
    info["files"] = {p.name: sha256(p) for p in sorted(dest.iterdir()) if p.suffix in (".onnx", ".weights")}
    info["layout"] = "flat: published graphs, warping_spade.opset16.onnx, shared warping_spade.weights"
    tmp = dest / "BUILD.json.tmp"
    tmp.write_text(json.dumps(info, indent=1) + "\n")
    os.replace(tmp, dest / "BUILD.json")
    log(f"packed for the tests into {dest}: {sum(p.stat().st_size for p in dest.iterdir()) / 1e6:.1f} MB")


def share_weights(models: list[Path], weights: Path, min_bytes: int = 1024) -> None:
    """Move the initializers of `models` (>= `min_bytes`) into one external-data file beside
    them, each distinct tensor stored once (ONNX external data: location, offset, length)."""
    import onnx
    from onnx import TensorProto, numpy_helper

    blob = bytearray()
    where: dict[tuple, tuple[int, int]] = {}
    loaded = []
    for path in models:
        m = onnx.load(str(path))
        for t in m.graph.initializer:
            arr = numpy_helper.to_array(t)
            if arr.nbytes < min_bytes:
                continue
            raw = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes()
            key = (hashlib.sha256(raw).hexdigest(), t.data_type, tuple(t.dims))
            if key not in where:
                blob += b"\0" * ((-len(blob)) % 64)
                where[key] = (len(blob), len(raw))
                blob += raw
            off, n = where[key]
            dims, dtype, name = list(t.dims), t.data_type, t.name
            t.Clear()
            t.name, t.data_type = name, dtype
            t.dims.extend(dims)
            t.data_location = TensorProto.EXTERNAL
            for k, v in (("location", weights.name), ("offset", str(off)), ("length", str(n))):
                e = t.external_data.add()
                e.key, e.value = k, v
        loaded.append((path, m))
    tmp = weights.with_suffix(".tmp")
    tmp.write_bytes(bytes(blob))
    os.replace(tmp, weights)
    for path, m in loaded:
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(m.SerializeToString())
        os.replace(tmp, path)
        onnx.checker.check_model(str(path))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(size: str, root: Path, conventions: tuple[str, ...] = tuple(CONVENTIONS), log=print) -> dict:
    """Build `size` into root/<convention>/ and write root/BUILD.json (versions, seed, hashes)."""
    import onnx
    import torch

    t0 = time.perf_counter()
    log(f"building LivePortrait's real architecture ({size}, random weights, seed {SEED}) into {root}")
    mods = build_modules(size)
    files: list[Path] = []
    if "published" in conventions or any(c in conventions for c in ("reordered", "unnamed", "unnamed_reordered")):
        log("published/: " + CONVENTIONS["published"])
        files += export(mods, root / "published", 20, log=log)
    if "opset16" in conventions:
        log("opset16/: " + CONVENTIONS["opset16"])
        files += export(mods, root / "opset16", 16, only=("W",), log=log)
    derived = tuple(c for c in conventions if c in ("reordered", "unnamed", "unnamed_reordered"))
    if derived:
        write_conventions(root / "published", root, log)
    from importlib.metadata import version

    info = {
        "what": "LivePortrait's real network architectures with seeded RANDOM weights (not LivePortrait's weights)",
        "size": size,
        "seed": SEED,
        "generator_logit_std": GEN_LOGIT_STD,
        "built_with": {"torch": torch.__version__, "onnx": onnx.__version__, "mimic-head": version("mimic-head")},
        "widths": SMALL if size == "small" else "models.yaml as published",
        "conventions": {c: CONVENTIONS[c] for c in conventions},
        "files": {str(p.relative_to(root)): sha256(p) for p in sorted(root.rglob("*.onnx"))},
    }
    tmp = root / "BUILD.json.tmp"
    tmp.write_text(json.dumps(info, indent=1) + "\n")
    os.replace(tmp, root / "BUILD.json")
    log(f"done in {time.perf_counter() - t0:.0f} s")
    return info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m worker.tools.liveportrait_graphs", description=__doc__.split("\n")[0])
    ap.add_argument("--size", choices=("small", "full"), default="small")
    ap.add_argument("--out", type=Path, required=True, help="folder: <convention>/<network>.onnx and BUILD.json")
    ap.add_argument("--conventions", default=",".join(CONVENTIONS), help=f"comma list of {', '.join(CONVENTIONS)}")
    ap.add_argument("--pack", type=Path, help="also write the tests' committed layout (small) into this folder")
    a = ap.parse_args(argv)
    conv = tuple(c.strip() for c in a.conventions.split(",") if c.strip())
    bad = [c for c in conv if c not in CONVENTIONS]
    if bad:
        print(f"--conventions: unknown {', '.join(bad)} (choose from {', '.join(CONVENTIONS)})", file=sys.stderr)
        return 2
    if not has_torch():
        py = ensure_env()
        repo = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ, PYTHONPATH=repo + os.pathsep + os.environ.get("PYTHONPATH", ""))
        return subprocess.run(
            [str(py), "-m", "worker.tools.liveportrait_graphs", *(argv or sys.argv[1:])], env=env
        ).returncode
    build(a.size, a.out.resolve(), conv)
    if a.pack:
        pack_for_tests(a.out.resolve(), a.pack.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
