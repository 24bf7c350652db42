"""Which graphics adapter this machine has, and which ONNX Runtime build to install for it.

All ONNX Runtime builds provide the same `onnxruntime` module, so exactly one may be installed:
with two side by side, whichever pip wrote last wins and the GPU is silently unused (the most
common "GPU not used" report). The choice per OS and vendor (`choose_runtime`, a pure function):

    NVIDIA (Windows, Linux)          -> onnxruntime-gpu[cuda,cudnn]  (CUDA; the extras bring the
                                        CUDA/cuDNN runtime wheels, no system CUDA needed)
    AMD or Intel on Windows          -> onnxruntime-directml         (DirectML, any DirectX 12 GPU)
    macOS (Apple silicon or Intel)   -> onnxruntime                  (the standard build has CoreML)
    anything else                    -> onnxruntime                  (CPU)

Standard library only (the installer runs before anything is installed).
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass

GPU_CHOICES = ("auto", "cuda", "dml", "coreml", "cpu")
# runtime -> (pip requirement, distribution name, the execution provider that proves it works)
RUNTIMES = {
    "cuda": ("onnxruntime-gpu[cuda,cudnn]", "onnxruntime-gpu", "CUDAExecutionProvider"),
    "dml": ("onnxruntime-directml", "onnxruntime-directml", "DmlExecutionProvider"),
    "coreml": ("onnxruntime", "onnxruntime", "CoreMLExecutionProvider"),
    "cpu": ("onnxruntime", "onnxruntime", "CPUExecutionProvider"),
}
ALL_BUILDS = ("onnxruntime", "onnxruntime-gpu", "onnxruntime-directml")
GPU_PACKAGE = RUNTIMES["cuda"][0]
CPU_PACKAGE = RUNTIMES["cpu"][0]


@dataclass(frozen=True)
class GpuInfo:
    """What `detect_gpu` found. `names` are NVIDIA GPUs; `adapters` every display adapter seen."""

    names: tuple[str, ...] = ()
    driver: str = ""
    reason: str = ""  # why no NVIDIA GPU was found, or where it was found
    adapters: tuple[str, ...] = ()

    @property
    def found(self) -> bool:
        return bool(self.names)


@dataclass(frozen=True)
class RuntimeChoice:
    runtime: str  # a key of RUNTIMES
    why: str

    @property
    def package(self) -> str:
        return RUNTIMES[self.runtime][0]

    @property
    def dist(self) -> str:
        return RUNTIMES[self.runtime][1]

    @property
    def provider(self) -> str:
        return RUNTIMES[self.runtime][2]


class ChoiceError(ValueError):
    """An explicit --gpu that cannot work on this OS (one line)."""


def vendor_of(adapter: str) -> str:
    """'nvidia', 'amd', 'intel', 'apple' or '' for an adapter name as the OS reports it."""
    name = adapter.lower()
    if "nvidia" in name or "geforce" in name or "quadro" in name or "tesla" in name:
        return "nvidia"
    if "amd" in name or "radeon" in name or "ati " in name:
        return "amd"
    if "intel" in name or "arc(tm)" in name:
        return "intel"
    if "apple" in name:
        return "apple"
    return ""


def _os_kind(plat: str) -> str:
    return "windows" if plat.startswith("win") else "macos" if plat == "darwin" else "linux"


def choose_runtime(choice: str, gpu: GpuInfo, plat: str = sys.platform) -> RuntimeChoice:
    """The ONNX Runtime build for `--gpu choice` on OS `plat` with what `detect_gpu` found, and why."""
    if choice not in GPU_CHOICES:
        raise ChoiceError(f"--gpu must be one of {', '.join(GPU_CHOICES)}, not {choice!r}")
    kind = _os_kind(plat)
    if choice == "cuda" and kind == "macos":
        raise ChoiceError("--gpu cuda: CUDA is not available on macOS; use --gpu coreml (the default there)")
    if choice == "dml" and kind != "windows":
        raise ChoiceError("--gpu dml: DirectML exists only on Windows")
    if choice == "coreml" and kind != "macos":
        raise ChoiceError("--gpu coreml: CoreML exists only on macOS")
    if choice != "auto":
        note = "" if choice != "cuda" or gpu.found else " (warning: no NVIDIA GPU was detected)"
        return RuntimeChoice(choice, f"asked for with --gpu {choice}{note}")
    if kind == "macos":
        return RuntimeChoice("coreml", "macOS: the standard build runs on the GPU/Neural Engine through CoreML")
    if gpu.found:
        return RuntimeChoice("cuda", f"NVIDIA GPU {gpu.names[0]} (driver {gpu.driver})")
    other = [a for a in gpu.adapters if vendor_of(a) in ("amd", "intel")]
    if kind == "windows" and other:
        return RuntimeChoice("dml", f"{other[0]}: DirectML runs on AMD and Intel GPUs under Windows")
    if other:
        return RuntimeChoice("cpu", f"{other[0]}: no accelerated ONNX Runtime build for it on Linux, using the CPU")
    return RuntimeChoice("cpu", f"no GPU to use ({gpu.reason or 'none found'})")


def builds_to_remove(runtime: str, installed: list[str] | tuple[str, ...]) -> list[str]:
    """The installed ONNX Runtime builds that must go before `runtime`'s build is installed."""
    keep = RUNTIMES[runtime][1]
    return [d for d in installed if d != keep and d in ALL_BUILDS]


def runtime_package(runtime: str) -> str:
    return RUNTIMES[runtime][0]


# ---------------------------------------------------------------- detection (talks to the OS)


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


def windows_adapters(timeout: float = 20.0) -> tuple[str, ...]:
    """Display adapter names on Windows (PowerShell's CIM query; empty when it cannot be asked)."""
    cmd = [
        "powershell",
        "-NoProfile",
        "-NonInteractive",
        "-Command",
        "Get-CimInstance Win32_VideoController | ForEach-Object { $_.Name }",
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return ()
    return tuple(x.strip() for x in proc.stdout.splitlines() if x.strip()) if proc.returncode == 0 else ()


def _nvidia(search_path: str | None, timeout: float) -> GpuInfo:
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


def detect_gpu(search_path: str | None = None, timeout: float = 15.0) -> GpuInfo:
    """NVIDIA GPUs via `nvidia-smi` (found on `search_path`, default PATH); other adapters on Windows."""
    if sys.platform == "darwin":
        chip = "Apple silicon" if platform.machine() == "arm64" else "Intel Mac"
        return GpuInfo(reason="macOS has no CUDA", adapters=(chip,))
    found = _nvidia(search_path, timeout)
    if found.found or search_path is not None or os.name != "nt":
        return found
    return GpuInfo(reason=found.reason, adapters=windows_adapters())
