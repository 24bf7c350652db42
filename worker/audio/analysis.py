"""Voice -> `MouthSignal`: level, noise gate, voice activity, vowel matching, attack/release.

One hop at a time (`MouthAnalyzer.push`, live) or a whole clip (`analyze`, `analyze_stream`, offline: the
same chain fed `lookahead_ms` early, so the mouth starts opening as the sound starts instead of
one analysis window later, as a speaker's lips do). Both produce a `MouthTrack`, a (n, 8) float32
array (time, openness, A, I, U, E, O, voiced) that is saved as `.npy` and memory-mapped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from worker.audio.calibration import VoiceProfile, default_profile
from worker.audio.features import HOP, RATE, WIN, features, voicing
from worker.audio.vad import VOICING_MIN, VoiceActivity
from worker.errors import UserError
from worker.retarget.mouth_signal import VOWELS, MouthSignal

HOP_S = HOP / RATE
TRACK_COLUMNS = ("t", "openness", *VOWELS, "voiced")
CHUNK_HOPS = 1000  # offline analysis works through this many hops (10 s) at a time: ~50 MB of work arrays


@dataclass
class VoiceSettings:
    gain_db: float = 0.0  # added to the input level (a quiet mic: raise it)
    gate_db: float = -50.0  # below this level (after gain) the mouth stays shut
    attack_ms: float = 20.0  # time constant of the mouth opening
    release_ms: float = 70.0  # time constant of the mouth closing
    vad: int = 2  # WebRTC VAD aggressiveness 0..3, -1 = off (the gate alone decides)
    hangover_ms: float = 150.0  # voice counts as on this long after the VAD last heard it
    vowel_smooth_ms: float = 40.0  # time constant of the vowel weights
    sharpness: float = 3.0  # how decisively the nearest vowel wins

    def validate(self, where: str = "voice") -> None:
        for name, lo, hi in (
            ("gain_db", -30, 40),
            ("gate_db", -100, 0),
            ("attack_ms", 0, 500),
            ("release_ms", 0, 2000),
            ("hangover_ms", 0, 2000),
            ("vowel_smooth_ms", 0, 500),
            ("sharpness", 0.1, 20),
        ):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and not isinstance(v, bool) and lo <= v <= hi):
                raise UserError(f"{where}.{name}: {v!r} is out of range ({lo}..{hi})")
        if self.vad not in (-1, 0, 1, 2, 3):
            raise UserError(f"{where}.vad: {self.vad!r} must be -1 (off) or 0..3")

    def as_dict(self) -> dict:
        return asdict(self)


def _coef(ms: float) -> float:
    """Per-hop smoothing factor of a first-order filter with time constant `ms`."""
    return 1.0 if ms <= 0 else 1.0 - math.exp(-HOP_S * 1000.0 / ms)


class MouthAnalyzer:
    def __init__(self, settings: VoiceSettings | None = None, profile: VoiceProfile | None = None) -> None:
        self.settings = settings or VoiceSettings()
        self.settings.validate()
        self.profile = profile or default_profile()
        self._templates, self._owner = self.profile.matrix()
        # distance scale: the templates' typical distance to their nearest other-vowel template
        d = np.linalg.norm(self._templates[:, None] - self._templates[None], axis=-1)
        d[self._owner[:, None] == self._owner[None]] = np.inf
        self._scale = float(np.median(d.min(1))) / max(self.settings.sharpness, 1e-3)
        self._vad = VoiceActivity(self.settings.vad, self.settings.hangover_ms)
        self._buf = np.zeros(WIN, np.float32)
        self.reset()

    def reset(self) -> None:
        self._open = 0.0
        self._w = np.zeros(len(VOWELS), np.float32)
        self._vad.reset()
        self._buf[:] = 0.0
        self.muted = False
        self.level_db = -120.0

    # -- the chain, one hop ------------------------------------------------------------------------
    def vowel_weights(self, mfcc: np.ndarray) -> np.ndarray:
        """(n, 5) soft nearest-vowel shares for MFCC rows (n, N_MFCC); each row sums to 1."""
        m = np.atleast_2d(mfcc)
        d = np.linalg.norm(m[:, None, :] - self._templates[None], axis=-1)  # (n, templates)
        best = np.full((len(m), len(VOWELS)), np.inf, np.float32)
        for i in range(len(VOWELS)):
            best[:, i] = d[:, self._owner == i].min(1)
        z = -(best - best.min(1, keepdims=True)) / self._scale
        e = np.exp(z)
        return (e / e.sum(1, keepdims=True)).astype(np.float32)

    def _target(self, level: float, voiced: bool) -> float:
        s, p = self.settings, self.profile
        lv = level + s.gain_db
        if self.muted or not voiced or lv < s.gate_db or lv < p.floor_db:
            return 0.0
        return float(np.clip((lv - p.floor_db) / max(p.peak_db - p.floor_db, 1.0), 0.0, 1.0))

    def _step(self, level: float, weights: np.ndarray, voiced: bool, t: float) -> MouthSignal:
        s = self.settings
        target = self._target(level, voiced)
        k = _coef(s.attack_ms if target > self._open else s.release_ms)
        self._open += (target - self._open) * k
        if target > 0:  # the shape follows only while there is voice to hear it in
            self._w += (weights - self._w) * _coef(s.vowel_smooth_ms)
        elif self._open < 0.02:
            self._w *= 0.0
        return MouthSignal(self._open, self._w.copy(), bool(target > 0), t)

    def push(self, hop: np.ndarray, t: float) -> MouthSignal:
        """Analyse one live hop (HOP samples) heard at time `t`."""
        hop = np.asarray(hop, np.float32)
        self._buf[:-HOP] = self._buf[HOP:]
        self._buf[-HOP:] = hop
        level, mfcc = features(self._buf[None])
        self.level_db = float(level[0]) + self.settings.gain_db  # for the live status
        voiced = self._vad.is_voice(hop, bool(voicing(self._buf[None])[0] >= VOICING_MIN))
        return self._step(float(level[0]), self.vowel_weights(mfcc)[0], voiced, t)

    # -- offline -----------------------------------------------------------------------------------
    def analyze(self, samples: np.ndarray, lookahead_ms: float = 20.0) -> np.ndarray:
        """The mouth track (n_hops, 8) of a whole clip; row i is the mouth at time (i+1)*HOP_S."""
        return self.analyze_stream([np.asarray(samples, np.float32)], lookahead_ms)

    def analyze_stream(
        self, chunks: Iterable[np.ndarray], lookahead_ms: float = 20.0, on_samples: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """`analyze` over a clip that arrives in pieces (e.g. decoded as it is read): only the
        newest window and look-ahead are kept, so memory is the track's (32 bytes a hop) whatever
        the length. `on_samples(n)` is told how many samples each piece had (for progress)."""
        self.reset()
        ahead = int(round(lookahead_ms * RATE / 1000.0))
        buf = np.zeros(WIN, np.float32)  # samples from global index `base` on (zeros before the clip)
        base, total, done = -WIN, 0, 0  # done = hops analysed so far
        rows: list[np.ndarray] = []
        pending: list[np.ndarray] = []
        pending_n = 0

        def run(hops_upto: int) -> None:
            nonlocal buf, base, done
            while done < hops_upto:
                k = min(hops_upto - done, CHUNK_HOPS)
                ends = (np.arange(done + 1, done + k + 1) * HOP + ahead - base).astype(np.int64)
                windows = sliding_window_view(buf, WIN)[ends - WIN]
                level, mfcc = features(windows)
                periodic = voicing(windows) >= VOICING_MIN
                weights = self.vowel_weights(mfcc)
                out = np.zeros((k, len(TRACK_COLUMNS)), np.float32)
                for j in range(k):
                    i = done + j
                    lo = i * HOP + ahead - base
                    voiced = self._vad.is_voice(buf[lo : lo + HOP], bool(periodic[j]))
                    sig = self._step(float(level[j]), weights[j], voiced, (i + 1) * HOP_S)
                    out[j, 0], out[j, 1] = sig.timestamp, sig.openness
                    out[j, 2:7], out[j, 7] = sig.weights, sig.voiced
                rows.append(out)
                done += k
            keep = (done + 1) * HOP + ahead - WIN - base  # the next window's first sample
            buf, base = buf[keep:], base + keep

        for chunk in chunks:
            c = np.asarray(chunk, np.float32).reshape(-1)
            pending.append(c)
            pending_n += len(c)
            total += len(c)
            if on_samples is not None:
                on_samples(len(c))
            if pending_n >= CHUNK_HOPS * HOP:
                buf, pending, pending_n = np.concatenate([buf, *pending]), [], 0
                run(max(min((total - ahead) // HOP, total // HOP), done))
        buf = np.concatenate([buf, *pending, np.zeros(ahead + WIN, np.float32)])  # zeros after the end
        run(total // HOP)
        return np.concatenate(rows) if rows else np.zeros((0, len(TRACK_COLUMNS)), np.float32)


def signal_at(track: np.ndarray, t: float) -> MouthSignal:
    """The mouth at time `t` (seconds) of an offline track: the latest hop at or before `t`."""
    i = int(math.floor(t / HOP_S + 1e-6)) - 1
    if i < 0 or len(track) == 0:
        return MouthSignal(timestamp=t)
    row = track[min(i, len(track) - 1)]
    return MouthSignal(float(row[1]), np.array(row[2:7]), bool(row[7] > 0.5), t)


def save_track(track: np.ndarray, path: str | Path) -> Path:
    """Write a track as `.npy` atomically; `load_track` memory-maps it back."""
    import os

    p = Path(path)
    tmp = p.with_name(p.name + ".tmp.npy")
    np.save(tmp, np.ascontiguousarray(track, np.float32))
    os.replace(tmp, p)
    return p


def load_track(path: str | Path) -> np.ndarray:
    t = np.load(path, mmap_mode="r", allow_pickle=False)
    if t.ndim != 2 or t.shape[1] != len(TRACK_COLUMNS):
        raise UserError(f"{path}: not a mouth track ({len(TRACK_COLUMNS)} columns expected)")
    return t
