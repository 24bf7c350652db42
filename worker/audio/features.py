"""Per-hop audio features: level (dBFS) and MFCCs, the same code live (one hop) and offline (all hops).

16 kHz mono float32 in -1..1. A hop is 10 ms (160 samples); each hop is described by the 32 ms
window (512 samples) that ends at it (live: nothing after the hop exists yet). MFCCs leave out
c0 (the level) so that vowel matching does not depend on how loud one speaks.
"""

from __future__ import annotations

import numpy as np

RATE = 16000
HOP = 160  # 10 ms
WIN = 512  # 32 ms
N_MELS = 26
N_MFCC = 12  # c1..c12
FMIN, FMAX = 80.0, 7600.0
PRE_EMPHASIS = 0.97
FLOOR_DB = -100.0


def _mel(f: np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + f / 700.0)


def _mel_inv(m: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


def _filterbank() -> np.ndarray:
    """(N_MELS, WIN//2+1) triangular mel filters."""
    edges = _mel_inv(np.linspace(_mel(np.array(FMIN)), _mel(np.array(FMAX)), N_MELS + 2))
    freqs = np.fft.rfftfreq(WIN, 1.0 / RATE)
    fb = np.zeros((N_MELS, len(freqs)))
    for i in range(N_MELS):
        lo, mid, hi = edges[i], edges[i + 1], edges[i + 2]
        fb[i] = np.clip(np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)), 0.0, None)
    return fb.astype(np.float32)


def _dct() -> np.ndarray:
    """(N_MFCC, N_MELS) orthonormal DCT-II rows 1..N_MFCC."""
    n = np.arange(N_MELS)
    k = np.arange(1, N_MFCC + 1)[:, None]
    return (np.sqrt(2.0 / N_MELS) * np.cos(np.pi * k * (2 * n + 1) / (2 * N_MELS))).astype(np.float32)


FILTERBANK = _filterbank()
DCT = _dct()
WINDOW = np.hanning(WIN).astype(np.float32)


def frames_ending_at_hops(samples: np.ndarray, offset: int = 0) -> np.ndarray:
    """(n_hops, WIN) windows, window i ending at sample (i+1)*HOP + offset (zero-padded at the edges)."""
    x = np.asarray(samples, np.float32)
    n = len(x) // HOP
    pad = np.concatenate([np.zeros(WIN, np.float32), x, np.zeros(max(offset, 0) + WIN, np.float32)])
    ends = (np.arange(1, n + 1) * HOP + offset + WIN).astype(np.int64)
    idx = ends[:, None] - WIN + np.arange(WIN)[None, :]
    return pad[idx]


def features(windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Level in dBFS (n,) and MFCCs (n, N_MFCC) of windows (n, WIN)."""
    w = np.atleast_2d(np.asarray(windows, np.float32))
    rms = np.sqrt(np.mean(w[:, -WIN // 2 :] ** 2, axis=1) + 1e-12)  # level of the newest 16 ms: quick onsets
    level = np.maximum(20.0 * np.log10(rms), FLOOR_DB).astype(np.float32)
    emph = np.concatenate([w[:, :1], w[:, 1:] - PRE_EMPHASIS * w[:, :-1]], axis=1)
    spec = np.abs(np.fft.rfft(emph * WINDOW, axis=1)) ** 2
    mel = np.log(spec @ FILTERBANK.T + 1e-8)
    return level, (mel @ DCT.T).astype(np.float32)


_LAGS = np.arange(RATE // 400, RATE // 70 + 1)  # pitch periods of 70..400 Hz
_LAG_NORM = (WIN / (WIN - _LAGS)).astype(np.float32)


def voicing(windows: np.ndarray) -> np.ndarray:
    """(n,) 0..1 periodicity of each window: the autocorrelation peak within human pitch periods.

    A vowel is periodic (0.5-0.95); fans, hiss and white noise are not (below ~0.25), which
    WebRTC's VAD alone, deciding mostly on energy, does not tell apart in its first seconds.
    """
    w = np.atleast_2d(np.asarray(windows, np.float32))
    x = (w - w.mean(1, keepdims=True)) * WINDOW
    f = np.fft.rfft(x, 2 * WIN, axis=1)
    ac = np.fft.irfft(f.real**2 + f.imag**2, axis=1)[:, : _LAGS[-1] + 1]
    r = ac[:, _LAGS] / (ac[:, :1] + 1e-9) * _LAG_NORM
    return np.clip(r.max(1), 0.0, 1.0).astype(np.float32)
