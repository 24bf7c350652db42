"""The voice's mouth mixed into the retargeted expression (`lipsync`: off | assist | always).

A `MouthSignal` (openness and A/I/U/E/O weights) becomes a mouth expression on the character:
a vertical opening (mostly the jaw and lower lip, a little of the upper lip) and a width change
(spread for I/E, rounded for U/O), in the same canonical units as the driver's expression
residual. `assist` uses it while the face is lost or the tracked mouth is unreliable and eases
back to tracking afterwards; `always` drives the mouth from the voice while the camera drives
everything else.
"""

from __future__ import annotations

import math

import numpy as np

from worker.retarget import geometry
from worker.retarget.mouth_signal import VOWELS, MouthSignal
from worker.track import landmark_ids

LIPSYNC_MODES = ("off", "assist", "always")
# vowel -> (inner-lip gap at full openness, inter-ocular units; width change, share of the mouth width):
# a person's mouth saying it, as the camera sees one. Both the voice and the camera then draw it through
# `rounded` (the same extra rounding), so the same vowel gets the same shape from either.
VOWEL_SHAPES = {"A": (0.38, 0.0), "I": (0.16, 0.25), "U": (0.15, -0.33), "E": (0.22, 0.18), "O": (0.28, -0.25)}
UNCLEAR_SHAPE = (0.18, 0.0)  # voice heard but no clear vowel
# Lips pulled in (O, U) are drawn narrower again by `round_gain` times the narrowing beyond ROUND_DEAD
# (a share of the mouth's own width): measured on the re-tracked output (worker.tools.vowel_shapes) a
# drawn narrowing shows at about half its size, and O / U drawn at a person's -0.25 / -0.3 read as a
# smaller A. The dead zone leaves alone the narrowing an opening jaw brings by itself (d3's open mouth
# is 0.82-0.87 of her neutral width; d12's O 0.68-0.74).
ROUND_DEAD = 0.15
ROUND_GAIN = 2.0  # `RetargetOptions.round_gain`'s default


def rounded(share: float, gain: float = ROUND_GAIN) -> float:
    """The width change (share of the mouth width) drawn for a mouth whose own change is `share`."""
    return share + gain * min(0.0, share + ROUND_DEAD)


# The extra rounding also shapes the opening: a narrowed A is a rectangle (every lip point opened alike,
# the corners pulled in), which MediaPipe reads as an A with its corners past the drawn ones (s12's O:
# 0.82 of A's width, h/w 0.54 under A's 0.59). A round mouth opens most in the middle and less towards
# the corners, like an ellipse's height across it, sqrt(1 - u^2) (u across the lip line, its corners at
# +-1), and the lip pulled in at the corners goes up and down in the middle. So by `OVAL_FULL` of extra
# narrowing (a share of the mouth width; the voice's O 0.2, U 0.36, d12's O 0.22-0.34) the lips'
# vertical motion tapers to that ellipse and the middle opens by `OVAL_LIFT` of the mouth's width more,
# in full once the lips part by `OVAL_OPEN` in the middle (the voice's U): pursed lips that meet stay
# shut (d3 puckers her closed lips to 0.9 of their width: lifted, they read 0.13 open, mouth r on
# d3 x s9 0.983 -> 0.970).
OVAL_FULL = 0.2
OVAL_LIFT = 0.1
OVAL_OPEN = 0.15

UPPER_SHARE = 0.2  # of the opening taken by the upper lip rising (the jaw takes the rest)
MIN_CONFIDENCE = 0.5  # tracked mouths below this face confidence count as unreliable
TO_VOICE_S, TO_TRACKING_S = 0.08, 0.35  # assist: quick hand-over to the voice, slow ease back


def shape_of(signal: MouthSignal, round_gain: float = 0.0) -> tuple[float, float]:
    """(gap, width) the signal asks for: openness times the vowel-weighted shape, each vowel's width
    drawn `rounded` by `round_gain` (0: the person's mouth). Rounded per vowel, before the mix, so an
    O heard at 0.7 is 0.7 of a drawn O (rounding the mixed share would lose it in the dead zone)."""
    w = np.asarray(signal.weights, np.float64)
    shapes = np.array([(g, rounded(s, round_gain)) for g, s in (VOWEL_SHAPES[v] for v in VOWELS)])
    mix = w @ shapes + (1.0 - float(w.sum())) * np.array(UNCLEAR_SHAPE)
    return float(signal.openness * mix[0]), float(signal.openness * mix[1])


class VoiceMouth:
    """Per character: which points a voice mouth moves, and the assist blend over time."""

    def __init__(self, char_lm: np.ndarray, round_gain: float = ROUND_GAIN) -> None:
        self.round_gain = round_gain
        lm = np.asarray(char_lm, np.float64)
        centre, roll, iod = geometry.canonical_frame(lm)
        canon = (lm - centre) @ geometry.rot_z(-roll).T / iod
        corners = canon[list(landmark_ids.MOUTH_CORNERS), :2]
        self.mid = corners.mean(0)
        half = max(float(np.linalg.norm(corners[1] - corners[0])) * 0.5, 0.05)
        d = np.linalg.norm(canon[:, :2] - self.mid, axis=1) / half
        # the region the voice owns: lips fully, cheeks and chin fading out
        self.region = np.exp(-(np.maximum(d - 1.0, 0.0) ** 2) / 0.5)
        self.region[468:] = 0.0  # irises
        self.dx = (canon[:, 0] - self.mid[0]) * np.exp(-(np.maximum(d - 1.0, 0.0) ** 2) / 0.25)
        self.jaw = np.array(landmark_ids.jaw_weights(len(lm)))
        self.width = 2.0 * half  # canonical units
        # the lip lines (inner, outer): their points, each across its line (corners at -1, 1), the
        # corners, and whether a point is on the lower lip
        self.lip_lines = []
        for up, lo in (
            (landmark_ids.LIPS_INNER_UPPER, landmark_ids.LIPS_INNER_LOWER),
            (landmark_ids.LIPS_OUTER_UPPER, landmark_ids.LIPS_OUTER_LOWER),
        ):
            ids = np.array(up[1:-1] + lo[1:-1])
            c = canon[[up[0], up[-1]], 0]
            u = (canon[ids, 0] - c.mean()) / max(abs(c[1] - c[0]) * 0.5, 1e-3)
            lower = np.arange(len(ids)) >= len(up) - 2
            self.lip_lines.append((ids, u * np.sign(c[1] - c[0]), up[0], up[-1], lower))
        self.upper = np.zeros(len(lm))
        upper_outer = [185, 40, 39, 37, 0, 267, 269, 270, 409]
        self.upper[list(landmark_ids.INNER_UPPER)] = 1.0
        self.upper[upper_outer] = 0.85
        self.upper[[164, 393, 167, 165, 391, 322, 92]] = 0.3  # below the nose
        self.weight = 0.0
        self._t: float | None = None

    def expression(self, signal: MouthSignal) -> np.ndarray:
        """(N, 3) canonical expression of the voice mouth alone."""
        gap, width = shape_of(signal, self.round_gain)
        e = np.zeros((len(self.jaw), 3))
        e[:, 1] = self.jaw * gap * (1.0 - UPPER_SHARE) - self.upper * gap * UPPER_SHARE
        e[:, 0] = self.dx * width
        self.oval(e, width - shape_of(signal)[1], gap)
        return e

    def oval(self, expr: np.ndarray, extra: float, parted: float) -> None:
        """Shape the opening of a mouth drawn `extra` narrower than a person's (a share of the mouth's
        width, <= 0) round: the lips' vertical motion tapers towards the corners and the middle opens
        more (`OVAL_FULL`, `OVAL_LIFT`), as far as the person's lips part (`parted`, inter-ocular
        units, `OVAL_OPEN`). `expr`: canonical expression, changed in place."""
        k = min(max(-extra / OVAL_FULL, 0.0), 1.0)
        if k <= 0.0:
            return
        lift = k * min(max(parted / OVAL_OPEN, 0.0), 1.0) * OVAL_LIFT * self.width
        for ids, u, c0, c1, lower in self.lip_lines:
            # taper each point's motion apart from the corners' (a line between them): the corners
            # keep theirs, wherever the driver's mouth moved them
            base = expr[c0, 1] * (1.0 - u) * 0.5 + expr[c1, 1] * (1.0 + u) * 0.5
            ell = np.sqrt(np.maximum(1.0 - u**2, 0.0))
            # the lower lip drops and the upper rises as they do when the mouth opens (UPPER_SHARE)
            share = np.where(lower, 1.0 - UPPER_SHARE, -UPPER_SHARE)
            expr[ids, 1] = base + (expr[ids, 1] - base) * (1.0 - k * (1.0 - ell)) + share * ell * lift

    def blend(self, mode: str, reliable: bool, t: float) -> float:
        """How much of the mouth the voice drives now (0 tracking .. 1 voice)."""
        if mode == "always":
            self.weight = 1.0
        elif mode == "assist":
            target = 0.0 if reliable else 1.0
            dt = 0.0 if self._t is None else min(max(t - self._t, 0.0), 0.5)
            tau = TO_VOICE_S if target > self.weight else TO_TRACKING_S
            self.weight += (target - self.weight) * (1.0 - math.exp(-dt / tau)) if dt > 0 else 0.0
            if self._t is None:
                self.weight = target
        else:
            self.weight = 0.0
        self._t = t
        return self.weight

    def mix(self, expr: np.ndarray, signal: MouthSignal | None, mode: str, reliable: bool, t: float) -> float:
        """Blend the voice mouth into `expr` (N, 3, canonical units) in place; returns the voice share."""
        if signal is None or mode == "off":
            self.weight, self._t = 0.0, t
            return 0.0
        v = self.blend(mode, reliable, t)
        if v > 0.0:
            keep = 1.0 - v * self.region
            expr *= keep[:, None]
            expr += v * self.expression(signal)
        return v


def tracked_mouth_reliable(face, have: bool) -> bool:
    """A tracked mouth worth trusting: a face found, confident, and not easing towards neutral."""
    return bool(have and face.found and face.confidence >= MIN_CONFIDENCE and face.lost_blend < 0.5)
