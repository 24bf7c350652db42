"""The one place that picks ONNX Runtime execution providers for every LivePortrait session.

`choose(device)` turns `--device auto|cuda|dml|coreml|cpu` into a provider list and a reason;
`describe_session` says in one line where a network actually runs (a session silently falls back
to the CPU when, say, CUDA's libraries do not load: we compare what was asked with what it got).
The usual reasons a GPU is not used, which we name: the CPU-only `onnxruntime` wheel installed
beside `onnxruntime-gpu` (they share one import name and the last installed wins), a CUDA/cuDNN
that does not match the build, no such device, or a build without that provider.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from importlib import metadata

from worker.errors import UserError
from worker.render.registry import LP_DEVICE

log = logging.getLogger(__name__)

DEVICES = LP_DEVICE.choices  # declared once, in the renderer registry
PROVIDER = {
    "cuda": "CUDAExecutionProvider",
    "dml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
GPU_DEVICES = ("cuda", "dml", "coreml")
_WHEEL = {"cuda": "onnxruntime-gpu", "dml": "onnxruntime-directml", "coreml": "onnxruntime"}


@dataclass
class ProviderChoice:
    device: str  # what runs: cuda | dml | coreml | cpu
    providers: list  # for InferenceSession(providers=...)
    requested: str  # what was asked for
    reason: str = ""  # why `device` differs from `requested` (or why auto chose it)
    notes: list[str] = field(default_factory=list)

    @property
    def gpu(self) -> bool:
        return self.device in GPU_DEVICES

    def line(self) -> str:
        s = f"liveportrait device: {self.device}"
        if self.requested not in ("auto", self.device) or self.reason:
            s += f" (requested {self.requested}: {self.reason})" if self.reason else f" (requested {self.requested})"
        return s


def _installed(dist: str) -> bool:
    try:
        metadata.version(dist)
        return True
    except metadata.PackageNotFoundError:
        return False


def ort_wheels() -> list[str]:
    """The onnxruntime distributions installed in this environment."""
    names = ("onnxruntime", "onnxruntime-gpu", "onnxruntime-directml", "onnxruntime-silicon", "onnxruntime-openvino")
    return [n for n in names if _installed(n)]


def _why_missing(device: str, available: list[str], wheels: list[str]) -> str:
    """One clause saying why `device`'s provider is not in `available`."""
    if device == "dml" and sys.platform != "win32":
        return "DirectML exists on Windows only"
    if device == "coreml" and sys.platform != "darwin":
        return "CoreML exists on macOS only"
    want = _WHEEL[device]
    if want in wheels and "onnxruntime" in wheels and want != "onnxruntime":
        return (
            f"the CPU-only 'onnxruntime' is installed beside '{want}' and shadows it "
            f"(fix: pip uninstall -y onnxruntime {want} && pip install {want})"
        )
    if want not in wheels:
        gpu = nvidia_hint() if device == "cuda" else ""
        extra = f"; {gpu}" if gpu else ""
        return f"this onnxruntime build has no {PROVIDER[device]} (install '{want}'){extra}"
    return f"{PROVIDER[device]} is not in this build's providers ({', '.join(available)})"


def _preload_cuda(ort) -> str | None:
    """Load the NVIDIA runtime wheels' CUDA/cuDNN libraries; None, or why that failed."""
    preload = getattr(ort, "preload_dlls", None)
    if preload is None:
        return None
    try:
        preload()
    except Exception as e:  # noqa: BLE001 - any failure here means CUDA will not load
        return f"CUDA/cuDNN libraries did not load ({type(e).__name__}: {e}); a CUDA/cuDNN mismatch with this build?"
    return None


def choose(device: str = "auto", ort=None, available: list[str] | None = None, wheels: list[str] | None = None):
    """Providers for `device`; a requested GPU that is missing falls back to the CPU with a reason.

    `ort`, `available` and `wheels` default to the real onnxruntime; tests pass their own to see
    the fallback messages of other installs.
    """
    if device not in DEVICES:
        raise UserError(f"render.device: unknown device {device!r} (choose from {', '.join(DEVICES)})")
    if ort is None:
        try:
            import onnxruntime
        except ImportError as e:
            raise UserError(f"onnxruntime cannot be imported ({e}); reinstall (python3 installer/install.py)") from e
        ort = onnxruntime
    available = list(ort.get_available_providers()) if available is None else list(available)
    wheels = ort_wheels() if wheels is None else list(wheels)
    cpu = [PROVIDER["cpu"]]
    order = GPU_DEVICES if device == "auto" else (device,) if device != "cpu" else ()
    reasons = []
    for dev in order:
        prov = PROVIDER[dev]
        if prov not in available:
            if device != "auto":
                reasons.append(_why_missing(dev, available, wheels))
            continue
        if dev == "cuda":
            why = _preload_cuda(ort)
            if why:
                reasons.append(why)
                continue
        opts = {}
        if dev == "dml":
            opts = {"device_id": 0}
        providers = [(prov, opts), PROVIDER["cpu"]] if opts else [prov, PROVIDER["cpu"]]
        return ProviderChoice(dev, providers, device, "; ".join(reasons))
    if device == "auto":
        reason = "; ".join(reasons) or "no GPU provider in this onnxruntime build"
    elif device == "cpu":
        reason = ""
    else:
        reason = "; ".join(reasons) + "; running on the CPU"
    return ProviderChoice("cpu", cpu, device, reason)


_NVIDIA: list = []  # memo of installer/gpu_detect.detect_gpu() (runs nvidia-smi once)


def nvidia_hint() -> str:
    """'no NVIDIA GPU found (...)' or 'NVIDIA GPU present: <name>' (nvidia-smi, asked once)."""
    if not _NVIDIA:
        try:
            from worker.render.liveportrait.weights import installer_module

            _NVIDIA.append(installer_module("gpu_detect").detect_gpu(timeout=5.0))
        except Exception as e:  # noqa: BLE001 - a hint only; never fail over it
            log.debug("gpu detection failed: %s", e)
            _NVIDIA.append(None)
    info = _NVIDIA[0]
    if info is None:
        return ""
    if info.found:
        return f"NVIDIA GPU present: {info.names[0]}"
    return f"no NVIDIA GPU found ({info.reason})" if info.reason else "no NVIDIA GPU found"


def describe_session(net: str, session, choice: ProviderChoice) -> str:
    """'warping_spade: CUDAExecutionProvider' or, when the session fell back, why."""
    got = list(session.get_providers())
    main = got[0] if got else "?"
    wanted = PROVIDER[choice.device]
    if main == wanted:
        return f"{net}: {main}"
    hint = ""
    if choice.device == "cuda":
        gpu = nvidia_hint()
        if gpu.startswith("no NVIDIA"):
            hint = f" (CUDA provider failed to initialise: {gpu})"
        else:
            hint = " (CUDA provider failed to initialise: a CUDA/cuDNN version mismatch with this onnxruntime-gpu"
            hint += f"; {gpu})" if gpu else ")"
    elif choice.device in ("dml", "coreml"):
        hint = " (no usable device for this provider)"
    return f"{net}: {main}, not {wanted}{hint}"


def ort_device(choice: ProviderChoice) -> tuple[str, int]:
    """The OrtValue device for I/O binding on `choice` ('cuda', 'dml' or 'cpu'; CoreML binds on the CPU)."""
    if choice.device == "cuda":
        return "cuda", 0
    if choice.device == "dml":
        return "dml", 0
    return "cpu", 0
