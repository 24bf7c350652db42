"""Vowel shapes as a viewer sees them: the voice mouth rendered, then re-tracked (worker.tools.vowel_shapes)."""

from __future__ import annotations

import pytest

from worker.paths import DEMO_CHARACTER
from worker.tools.vowel_shapes import format_shapes, vowel_shapes

# measured 2026-12-07 on the bundled character (re-tracked inner lips, inter-ocular units):
# width A 1.01, I 1.25, U 0.56, E 1.14, O 0.59 (before: A 0.98, U 0.80, O 0.82);
# height / width A 0.54, I 0.25, U 0.49, E 0.26, O 0.73.
# Floors just past those (ratios to A, so a change of the character's drawing scale does not matter).
NARROW = {"U": 0.6, "O": 0.62}  # width at most this share of A's
SPREAD = {"I": 1.18, "E": 1.08}  # width at least this share of A's


@pytest.fixture(scope="module")
def shapes():
    return {s.vowel: s for s in vowel_shapes(DEMO_CHARACTER)}


def test_rounded_vowels_are_narrower_than_a(shapes):
    table = format_shapes(list(shapes.values()))
    a = shapes["A"]
    for v, share in NARROW.items():
        assert shapes[v].width <= share * a.width, table
    # O taller than wide as A is not; U is a small round opening, about as round as A in height / width
    assert shapes["O"].roundness >= 1.25 * a.roundness, table
    assert shapes["U"].roundness >= 0.85 * a.roundness, table


def test_spread_vowels_are_wider_than_a_and_flatter(shapes):
    table = format_shapes(list(shapes.values()))
    a = shapes["A"]
    for v, share in SPREAD.items():
        assert shapes[v].width >= share * a.width, table
        assert shapes[v].roundness < 0.7 * a.roundness, table


def test_every_vowel_opens_the_mouth(shapes):
    rest = shapes["rest"]
    assert all(shapes[v].height > rest.height + 0.1 for v in "AIUEO"), format_shapes(list(shapes.values()))
