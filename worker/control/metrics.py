"""Process metrics for status replies: CPU and memory (psutil), GPU (NVML, when present)."""

from __future__ import annotations

import logging
import threading

import psutil

log = logging.getLogger(__name__)


class ProcessMetrics:
    """Cheap to call once a second. GPU fields appear only when NVML finds an NVIDIA GPU."""

    def __init__(self, gpu_index: int = 0):
        self._proc = psutil.Process()
        self._proc.cpu_percent(None)  # the first call only starts the measurement interval
        self._lock = threading.Lock()
        self._nvml = None
        self._gpu = None
        try:
            import pynvml  # from nvidia-ml-py; optional

            pynvml.nvmlInit()
            self._gpu = pynvml.nvmlDeviceGetHandleByIndex(gpu_index)
            self._nvml = pynvml
        except Exception as e:  # not installed, no driver, no GPU: no GPU fields
            log.debug("no NVML GPU metrics: %s", e)

    def snapshot(self) -> dict:
        with self._lock:
            mem = self._proc.memory_info()
            out: dict = {
                "cpu_percent": round(self._proc.cpu_percent(None), 1),
                "cpu_count": psutil.cpu_count() or 1,
                "rss_mb": round(mem.rss / 2**20, 1),
                "threads": self._proc.num_threads(),
                "system_memory_percent": psutil.virtual_memory().percent,
            }
            if self._nvml is not None:
                try:
                    util = self._nvml.nvmlDeviceGetUtilizationRates(self._gpu)
                    gmem = self._nvml.nvmlDeviceGetMemoryInfo(self._gpu)
                    out.update(
                        gpu_percent=util.gpu,
                        gpu_memory_used_mb=round(gmem.used / 2**20, 1),
                        gpu_memory_total_mb=round(gmem.total / 2**20, 1),
                    )
                except Exception as e:
                    log.debug("NVML query failed: %s", e)
            return out
