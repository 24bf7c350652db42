"""Find out whether this machine has an NVIDIA GPU, and which ONNX Runtime build to install.

Only NVIDIA/CUDA is chosen automatically: it is the one accelerator the LivePortrait renderer is
built for. Everything else (no driver, macOS, an AMD card) gets the CPU build, which always works.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass

# The CUDA build. Its extras pull the NVIDIA CUDA/cuDNN runtime wheels, so no system CUDA install
# is needed; the worker calls onnxruntime.preload_dlls() to load them.
GPU_PACKAGE = "onnxruntime-gpu[cuda,cudnn]"
CPU_PACKAGE = "onnxruntime"
GPU_CHOICES = ("auto", "cuda", "cpu")


@dataclass(frozen=True)
class GpuInfo:
    """What `detect_gpu` found. `names` is empty when there is no usable NVIDIA GPU."""

    names: tuple[str, ...] = ()
    driver: str = ""
    reason: str = ""  # why none was found, or where it was found

    @property
    def found(self) -> bool:
        return bool(self.names)


def _nvidia_smi_candidates(search_path: str | None) -> list[str]:
    found = shutil.which("nvidia-smi", path=search_path)
    candidates = [found] if found else []
    if search_path is None and os.name == "nt":
        # The driver installs it here; older drivers did not add it to PATH.
        system_root = os.environ.get("SystemRoot", r"C:\Windows")
        program_files = os.environ.get("ProgramFiles", r"C:\Program Files")
        candidates += [
            os.path.join(system_root, "System32", "nvidia-smi.exe"),
            os.path.join(program_files, "NVIDIA Corporation", "NVSMI", "nvidia-smi.exe"),
        ]
    return [c for c in candidates if os.path.isfile(c)]


def detect_gpu(search_path: str | None = None, timeout: float = 15.0) -> GpuInfo:
    """Look for an NVIDIA GPU by asking `nvidia-smi` (found on `search_path`, default PATH)."""
    if sys.platform == "darwin":
        return GpuInfo(reason="macOS has no CUDA")
    machine = platform.machine().lower()
    if machine not in ("x86_64", "amd64", "aarch64", "arm64"):
        return GpuInfo(reason=f"no CUDA packages for {machine}")
    candidates = _nvidia_smi_candidates(search_path)
    if not candidates:
        return GpuInfo(reason="nvidia-smi not found (no NVIDIA driver)")
    smi = candidates[0]
    try:
        proc = subprocess.run(
            [smi, "--query-gpu=name,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return GpuInfo(reason=f"{smi} did not answer: {exc}")
    if proc.returncode != 0:
        first = (proc.stderr or proc.stdout).strip().splitlines()[:1]
        return GpuInfo(reason=f"{smi} failed: {first[0] if first else 'exit ' + str(proc.returncode)}")
    names: list[str] = []
    driver = ""
    for line in proc.stdout.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 2 and parts[0]:
            names.append(parts[0])
            driver = driver or parts[1]
    if not names:
        return GpuInfo(reason=f"{smi} lists no GPU")
    return GpuInfo(names=tuple(names), driver=driver, reason=smi)


def choose_runtime(choice: str, gpu: GpuInfo) -> str:
    """'cuda' or 'cpu' for `--gpu auto|cuda|cpu` given what was detected."""
    if choice not in GPU_CHOICES:
        raise ValueError(f"--gpu must be one of {', '.join(GPU_CHOICES)}, not {choice!r}")
    if choice == "auto":
        return "cuda" if gpu.found else "cpu"
    return choice


def runtime_package(runtime: str) -> str:
    return GPU_PACKAGE if runtime == "cuda" else CPU_PACKAGE
