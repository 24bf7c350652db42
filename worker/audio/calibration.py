"""A voice profile: per-vowel MFCC templates and the voice's loudness range.

The default profile ships in `data/default_voice.json` (measured on several espeak-ng voices by
`python -m worker.tools.make_default_profile`); `stream-animator calibrate-voice` measures the
user's own voice (one recording per vowel, optionally one of silence) and stores the result in
the config file under `voice.calibration`, as plain lists of numbers.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from worker.audio import limits
from worker.audio.features import HOP, N_MFCC, features, frames_ending_at_hops, voicing
from worker.audio.vad import VOICING_MIN, VoiceActivity
from worker.errors import UserError
from worker.retarget.mouth_signal import VOWELS

DEFAULT_PROFILE = Path(__file__).resolve().parent / "data" / "default_voice.json"
FORMAT = 1
TEMPLATES_PER_VOWEL = 4
LOUD_SHARE_DB = 12.0  # hops within this of a recording's loudest count as the held vowel
MAX_RECORDING_S = limits.RECORDING_S
PURE_TONE = 0.85  # tone_share above this: a sine, not a voice (held vowels: 0.22-0.53 on espeak-ng voices)
SILENCE_VOICED_MAX = 0.2  # a silence recording with more voice than this is speech (a quiet room: 0)
ALIKE = 7.0  # MFCC distance under which two vowels count as the same sound (espeak-ng: 11.7 and more apart;
# one vowel from five voices: 3.5-17)


@dataclass
class VoiceProfile:
    templates: dict[str, np.ndarray]  # vowel -> (k, N_MFCC)
    floor_db: float = -45.0  # level of the room (mouth shut below it)
    peak_db: float = -15.0  # level of the voice's loud vowels (mouth fully open)
    source: str = "default"

    def matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """All templates stacked (m, N_MFCC) and the vowel index of each row (m,)."""
        rows, owner = [], []
        for i, v in enumerate(VOWELS):
            t = self.templates[v]
            rows.append(t)
            owner.extend([i] * len(t))
        return np.concatenate(rows).astype(np.float32), np.array(owner)

    def to_config(self) -> dict:
        return {
            "format": FORMAT,
            "source": self.source,
            "floor_db": round(self.floor_db, 2),
            "peak_db": round(self.peak_db, 2),
            "vowels": {v: np.round(self.templates[v].astype(np.float64), 3).tolist() for v in VOWELS},
        }

    @classmethod
    def from_config(cls, d: object, where: str = "voice.calibration") -> VoiceProfile:
        if not isinstance(d, dict):
            raise UserError(f"{where}: must be a mapping (made by 'stream-animator calibrate-voice')")
        if d.get("format") != FORMAT:
            raise UserError(f"{where}.format: {d.get('format')!r} is not {FORMAT}; run calibrate-voice again")
        vowels = d.get("vowels")
        if not isinstance(vowels, dict):
            raise UserError(f"{where}.vowels: missing")
        templates = {}
        for v in VOWELS:
            try:
                t = np.asarray(vowels[v], np.float32)
            except (KeyError, TypeError, ValueError):
                raise UserError(f"{where}.vowels.{v}: missing or not a list of numbers") from None
            if t.ndim != 2 or t.shape[1] != N_MFCC or len(t) == 0 or not np.isfinite(t).all():
                raise UserError(f"{where}.vowels.{v}: expected rows of {N_MFCC} numbers")
            templates[v] = t
        try:
            floor, peak = float(d["floor_db"]), float(d["peak_db"])
        except (KeyError, TypeError, ValueError):
            raise UserError(f"{where}: floor_db and peak_db must be numbers") from None
        if not (-100 <= floor < peak <= 0):
            raise UserError(f"{where}: need -100 <= floor_db < peak_db <= 0, got {floor}, {peak}")
        return cls(templates, floor, peak, str(d.get("source", "calibrated")))


def default_profile() -> VoiceProfile:
    return VoiceProfile.from_config(json.loads(DEFAULT_PROFILE.read_text(encoding="utf-8")), str(DEFAULT_PROFILE))


def vowel_frames(samples: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    """MFCCs and levels of the held-vowel part of a recording (voiced and near its loudest)."""
    windows = frames_ending_at_hops(samples)
    level, mfcc = features(windows)
    periodic = voicing(windows) >= VOICING_MIN
    vad = VoiceActivity(2, hangover_ms=0)
    voiced = np.array([vad.is_voice(samples[i * HOP : (i + 1) * HOP], p) for i, p in enumerate(periodic)], bool)
    if not voiced.any():
        raise UserError(f"{where}: no voice found in the recording")
    top = float(np.percentile(level[voiced], 95))
    keep = voiced & (level > top - LOUD_SHARE_DB)
    if keep.sum() < 10:
        raise UserError(f"{where}: too little voice ({keep.sum() * 10} ms); hold the vowel for a second")
    return mfcc[keep], level[keep]


def tone_share(samples: np.ndarray) -> float:
    """Median share of a recording's power at its strongest frequency (+-3 bins of 4096): about 1.0
    for a pure tone, 0.2-0.55 for a held vowel (a voice has many harmonics)."""
    n = 4096
    win = np.hanning(n).astype(np.float32)
    shares = []
    for s in range(0, len(samples) - n + 1, n // 2):
        p = np.abs(np.fft.rfft(samples[s : s + n] * win)) ** 2
        total = float(p.sum())
        if total > 1e-6:
            k = int(np.argmax(p))
            shares.append(float(p[max(k - 3, 0) : k + 4].sum()) / total)
    return float(np.median(shares)) if shares else 0.0


def voiced_share(samples: np.ndarray) -> float:
    """Share of a recording's hops that the voice activity detector hears as voice."""
    windows = frames_ending_at_hops(samples)
    periodic = voicing(windows) >= VOICING_MIN
    vad = VoiceActivity(2, hangover_ms=0)
    n = len(periodic)
    return sum(vad.is_voice(samples[i * HOP : (i + 1) * HOP], bool(p)) for i, p in enumerate(periodic)) / max(n, 1)


def _check_recordings(recordings: dict[str, np.ndarray], silence: np.ndarray | None, names: dict[str, str]) -> None:
    """Refuse recordings that cannot be what they claim: one recording given for two vowels, a pure
    tone instead of a voice, a voice where the quiet room should be."""
    seen: dict[bytes, str] = {}
    for v in VOWELS:
        digest = hashlib.sha256(np.ascontiguousarray(recordings[v], np.float32).tobytes()).digest()
        if digest in seen:
            raise UserError(f"{names[v]}: the same recording as for vowel {seen[digest]}; record each vowel on its own")
        seen[digest] = v
    for v in VOWELS:
        if tone_share(recordings[v]) > PURE_TONE:
            raise UserError(f"{names[v]}: a pure tone (one frequency), not a voice holding {v}")
    if silence is not None:
        share = voiced_share(silence)
        if share > SILENCE_VOICED_MAX:
            raise UserError(
                f"{names['silence']}: {share:.0%} of it is voice; the silence recording is the quiet room, say nothing"
            )


def calibrate(
    recordings: dict[str, np.ndarray],
    silence: np.ndarray | None = None,
    source: str = "calibrated",
    names: dict[str, str] | None = None,
    warnings: list[str] | None = None,
) -> VoiceProfile:
    """A profile from one recording per vowel (16 kHz mono) and, optionally, one of the quiet room.

    `names` label the recordings in messages (file names; default "vowel A" ... "silence");
    `warnings` collects what is suspicious but possible (two vowels that sound alike).
    """
    missing = [v for v in VOWELS if v not in recordings]
    if missing:
        raise UserError(f"calibration: missing recordings for vowel(s) {', '.join(missing)}")
    names = {**{v: f"vowel {v}" for v in VOWELS}, "silence": "silence", **(names or {})}
    _check_recordings(recordings, silence, names)
    templates, peaks = {}, []
    for v in VOWELS:
        m, lv = vowel_frames(recordings[v], names[v])
        chunks = np.array_split(m, TEMPLATES_PER_VOWEL)  # in time order: the vowel's drift as it is held
        templates[v] = np.stack([c.mean(0) for c in chunks if len(c)])
        peaks.append(float(np.percentile(lv, 90)))
    alike = [
        (a, b)
        for i, a in enumerate(VOWELS)
        for b in VOWELS[i + 1 :]
        if np.linalg.norm(templates[a].mean(0) - templates[b].mean(0)) < ALIKE
    ]
    pairs = ", ".join(f"{a}/{b}" for a, b in alike)
    if len(alike) >= 3:
        raise UserError(
            f"calibration: the vowels sound alike ({pairs}): the recordings seem to hold one vowel; "
            "record each vowel as its prompt says"
        )
    if alike and warnings is not None:
        warnings.append(f"vowels {pairs} sound almost the same; the mouth will not tell them apart")
    peak = float(np.max(peaks))
    if silence is not None and len(silence) > 1600:
        lv, _ = features(frames_ending_at_hops(silence))
        floor = min(float(np.percentile(lv, 90)) + 6.0, peak - 12.0)
    else:
        floor = peak - 30.0
    return VoiceProfile(templates, max(floor, -90.0), peak, source)
