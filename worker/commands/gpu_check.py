"""`stream-animator gpu-check`: LivePortrait's full-size networks on this machine's best execution
provider (CUDA, DirectML, CoreML; else the CPU, said so): per-network ms, FP16 vs FP32 error on
the image, and frames per second with I/O binding (worker.render.liveportrait.gpu_check)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models", type=Path, help="folder holding liveportrait/*.onnx (default: the installed weights)")
    p.add_argument(
        "--build",
        action="store_true",
        help="no weights? build LivePortrait's full-size real architecture with random weights (once, into the "
        "user cache; needs the builder's own torch environment, made on first use) and check that",
    )
    p.add_argument("--device", default="auto", help="auto (the best GPU provider), cuda, dml, coreml or cpu")
    p.add_argument("--runs", type=int, help="timed runs per network (default 20 on a GPU, 2 on the CPU)")
    p.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads per session (default: all cores)")
    p.add_argument("--unverified", action="store_true", help="run files that are not verified (labelled as such)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _built_set() -> Path:
    """The full-size random-weight build in the user cache (made once by the builder tool)."""
    from worker.tools import liveportrait_graphs

    root = liveportrait_graphs.env_dir().parent / "liveportrait-arch-full"
    models = root / "published"
    record = root / "BUILD.json"
    stale = not record.is_file() or json.loads(record.read_text()).get("generator_logit_std") != (
        liveportrait_graphs.GEN_LOGIT_STD
    )  # a build from before the generator's output was tamed overstates FP16's error
    if not (models / "warping_spade.onnx").is_file() or stale:
        rc = liveportrait_graphs.main(["--size", "full", "--out", str(root), "--conventions", "published"])
        if rc != 0:
            from worker.errors import UserError

            raise UserError(f"gpu-check --build: the builder failed (exit {rc}); see its output above")
    # the renderer reads <models>/liveportrait/<network>.onnx
    link = root / "models" / "liveportrait"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(models, target_is_directory=True)
    (root / "models" / "BUILD.json").write_text((root / "BUILD.json").read_text())
    return root / "models"


def run(args: argparse.Namespace) -> int:
    from worker.render.liveportrait.gpu_check import run_check
    from worker.render.liveportrait.providers import choose
    from worker.render.liveportrait.weights import default_models_dir

    unverified = args.unverified
    if args.build:
        models, unverified = _built_set(), True  # random weights: labelled as such in the report
    else:
        models = args.models or default_models_dir()
    runs = args.runs or (20 if choose(args.device).gpu else 2)
    say = (lambda s: print(s, file=sys.stderr)) if args.json else print
    report = run_check(models, args.device, runs=runs, threads=args.threads, unverified=unverified, log=say)
    if args.json:
        print(json.dumps(report, indent=1))
    return 0
