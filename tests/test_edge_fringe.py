"""Edge fringe (worker.tools.edge_fringe): the instrument, and ceilings on the bundled characters."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from worker.tools.edge_fringe import edge_fringe


def _disk(rim: tuple[int, int, int] | None) -> np.ndarray:
    img = np.zeros((200, 200, 4), np.uint8)
    cv2.circle(img, (100, 100), 70, (150, 90, 60, 255), -1)
    if rim is not None:
        cv2.circle(img, (100, 100), 69, (*rim, 255), 2)
    return img


def test_a_clean_edge_scores_zero_and_a_light_rim_its_colour():
    clean = edge_fringe(_disk(None))
    assert clean.pixels > 300 and clean.distance < 1.0
    light = edge_fringe(_disk((230, 230, 230)))
    assert light.distance > 100 and light.lightness > 80
    dark = edge_fringe(_disk((20, 20, 20)))
    assert dark.lightness < -40


# measured 2026-12-07 (levels, RGB distance of the outer ring against the figure inside; lightness):
# the toon's own cut-out keeps a light rim of its old background (70.8, +33: visible over a dark
# scene, README); the photo cut out by our matte 24.7, +3.7. Ceilings just above.
CEILINGS = {"astronaut_toon.png": 74.0, "astronaut.png": 27.0}


@pytest.mark.parametrize("name", sorted(CEILINGS))
def test_bundled_characters_fringe_does_not_grow(name):
    from worker.characters.preprocess import preprocess_image
    from worker.paths import SAMPLE_CHARACTERS_DIR

    f = edge_fringe(preprocess_image(SAMPLE_CHARACTERS_DIR / name).image)
    assert f.distance <= CEILINGS[name], f
