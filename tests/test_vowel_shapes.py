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


# The camera path (`camera_vowel_shapes`): a real driver's A-, O/U- and I/E-shaped frames (d12, a man
# talking: picked by his own lips, width over his neutral width <= 0.85 rounded, >= 1.15 spread), each
# held, drawn and re-tracked. Measured 2026-12-07, output width over the output's A (the driver's own:
# O/U 0.82, I/E 1.49): bundled toon O/U 0.89, I/E 1.37; s12 O/U 0.68, I/E 1.40 (s42 0.80, 1.48). Before
# the lips were pulled in further (`RetargetOptions.round_gain`): toon O/U 0.96, s42 0.90 (re-tracked, a
# drawn narrowing shows at about half its size, so the driver's O read as an A on the toon). With the
# upper teeth painted from mid openings (mouth r on s12 0.955-0.966 -> 0.978-0.984): toon O/U 0.89, I/E
# 1.38; s12 O/U 0.72, I/E 1.32 (its spread mouth's corners re-tracked a little further in); with the
# dark-socket lid merged too, s12 O/U 0.70, I/E 1.29 (its A re-tracked 0.673 -> 0.688 wide).
# Floors just past those.
CAMERA = {"toon": (0.93, 1.3), "s12": (0.74, 1.27)}  # (O/U at most, I/E at least) this share of A's width
# Voice and camera agree on s12: camera O/U 0.68 of A, the voice's O and U 0.74 and 0.59 (mean 0.67). On
# the toon they do not with this driver: the voice's held O/U (0.59/0.56 of A) is rounder than a talking
# man's (d12's O/U is 0.82 of his A; d6's pouts, 0.35 of her widest open mouth, give 0.34 on the toon:
# `python -m worker.tools.vowel_shapes --camera d6`).
AGREE = 0.1


@pytest.fixture(scope="module")
def camera(testdata):
    from worker.tools.fidelity import track_driver
    from worker.tools.vowel_shapes import camera_vowel_shapes

    clip = testdata / "footage" / "driving" / "d12.mp4"
    tracked = track_driver(clip)
    chars = {"toon": DEMO_CHARACTER, "s12": testdata / "footage" / "portraits" / "s12.jpg"}
    return {k: {s.label: s for s in camera_vowel_shapes(p, clip, tracked=tracked)} for k, p in chars.items()}


@pytest.fixture(scope="module")
def voice_shapes(testdata):
    return {"s12": {s.vowel: s for s in vowel_shapes(testdata / "footage" / "portraits" / "s12.jpg")}}


@pytest.mark.parametrize("character", sorted(CAMERA))
def test_camera_vowels_round_and_spread_like_the_voice(camera, voice_shapes, character):
    from worker.tools.vowel_shapes import format_camera

    got = camera[character]
    table = format_camera(list(got.values()))
    assert set(got) == {"A", "O/U", "I/E"}, table
    a = got["A"].output.width
    round_max, spread_min = CAMERA[character]
    # the driver's picked frames are what they are named (his O/U narrower than his A, I/E wider)
    assert got["O/U"].driver.width < 0.9 * got["A"].driver.width < got["I/E"].driver.width, table
    assert got["O/U"].output.width <= round_max * a, table
    assert got["I/E"].output.width >= spread_min * a, table
    # and the same shapes as the voice's: on s12, O/U within AGREE of the voice's O and U (mean)
    if character in voice_shapes:
        v = voice_shapes[character]
        voice_round = (v["O"].width + v["U"].width) * 0.5 / v["A"].width
        assert abs(got["O/U"].output.width / a - voice_round) <= AGREE, (voice_round, table)
