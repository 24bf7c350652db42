"""LivePortrait's keypoint maths and the crop transforms against values worked out by hand from
the published formulas (reference: ../shared/reference/liveportrait.md, "Math")."""

from __future__ import annotations

import math

import numpy as np
import pytest

from worker.render.liveportrait import crop, motion


def test_bins_to_degrees():
    # uniform logits: E[bin] = 32.5 -> 32.5 * 3 - 97.5 = 0
    assert motion.bins_to_degrees(np.zeros(66)) == pytest.approx(0.0)
    # a sharp peak at bin 40 -> 40 * 3 - 97.5 = 22.5; at bin 0 -> -97.5; at 65 -> 97.5
    for b, deg in ((40, 22.5), (0, -97.5), (65, 97.5)):
        z = np.full(66, -1e4)
        z[b] = 0
        assert motion.bins_to_degrees(z) == pytest.approx(deg)
    # two equal peaks at bins 10 and 12: E = 11 -> -64.5; batched over a leading axis
    z = np.full((2, 66), -1e4)
    z[0, [10, 12]] = 5.0
    z[1, 33] = 0.0
    np.testing.assert_allclose(motion.bins_to_degrees(z), [-64.5, 1.5])


def test_rotation_order_is_rz_ry_rx_transposed():
    # pitch 90 then yaw 90 (Rx first, then Ry): y -> z -> x.  kp @ R = (R_col @ kp)^T
    R = motion.rotation_matrix(90, 90, 0)
    np.testing.assert_allclose(np.array([0.0, 1.0, 0.0]) @ R, [1, 0, 0], atol=1e-12)
    # the other order (Ry first) would give y -> y -> z: not what we do
    assert not np.allclose(np.array([0.0, 1.0, 0.0]) @ R, [0, 0, 1])
    # roll 90 alone: x -> y (counter-clockwise in x-right/y-up, Rz = [[c,-s],[s,c]])
    np.testing.assert_allclose(np.array([1.0, 0, 0]) @ motion.rotation_matrix(0, 0, 90), [0, 1, 0], atol=1e-12)
    # yaw 90 alone: x -> -z (Ry = [[c,0,s],[0,1,0],[-s,0,c]])
    np.testing.assert_allclose(np.array([1.0, 0, 0]) @ motion.rotation_matrix(0, 90, 0), [0, 0, -1], atol=1e-12)
    # a general case against the product written out by hand
    p, y, r = np.radians([10.0, -20.0, 30.0])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    np.testing.assert_allclose(motion.rotation_matrix(10, -20, 30), (rz @ ry @ rx).T, atol=1e-12)


def test_keypoint_transform():
    kp = np.zeros((21, 3))
    kp[0] = [1.0, 2.0, 3.0]
    exp = np.zeros((21, 3))
    exp[0] = [0.5, 0.0, -1.0]
    # yaw 90: [1,2,3] @ R = (Ry [1,2,3])^T = (3, 2, -1); + exp = (3.5, 2, -2); * 2 = (7, 4, -4);
    # + t (0.1, 0.2, tz ignored) = (7.1, 4.2, -4)
    x = motion.transform_keypoints(kp, motion.rotation_matrix(0, 90, 0), exp, np.array([0.1, 0.2, 9.0]), 2.0)
    np.testing.assert_allclose(x[0], [7.1, 4.2, -4.0], atol=1e-12)
    np.testing.assert_allclose(x[1], [0.1, 0.2, 0.0], atol=1e-12)


def _motion(pitch=0.0, yaw=0.0, roll=0.0, t=(0, 0, 0), exp=0.0, scale=1.0, kp=None):
    kp = np.arange(63, dtype=float).reshape(21, 3) / 63 if kp is None else kp
    return motion.Motion(pitch, yaw, roll, np.array(t, float), np.full((21, 3), exp), scale, kp)


def test_relative_motion():
    src = _motion(yaw=0, t=(0.1, 0.0, 0.3), exp=0.01, scale=1.5)
    neutral = _motion(yaw=5, t=(0.0, 0.1, 0.2), exp=0.02, scale=2.0)
    # the driver at its neutral: the character's own keypoints, except tz which is zeroed
    x = motion.relative_keypoints(src, neutral, neutral)
    want = src.keypoints()
    np.testing.assert_allclose(x, want, atol=1e-12)
    # driver: yaw 5 -> 25 (relative +20), t +(0.2, -0.1), exp +0.03, scale 2 -> 3 (x1.5)
    drv = _motion(yaw=25, t=(0.2, 0.0, 0.9), exp=0.05, scale=3.0)
    x = motion.relative_keypoints(src, drv, neutral)
    # by hand: R_new = Ry(20)ᵀ·Ry(0)ᵀ... = rotation_matrix(0, 20, 0); exp 0.04; s 2.25;
    # t = (0.1 + 0.2, 0.0 - 0.1, z 0)
    R = motion.rotation_matrix(0, 20, 0)
    hand = 2.25 * (src.kp @ R + 0.04) + np.array([0.3, -0.1, 0.0])
    np.testing.assert_allclose(x, hand, atol=1e-12)
    # strengths: zero expression and zero head give the character's own keypoints
    np.testing.assert_allclose(motion.relative_keypoints(src, drv, neutral, 0.0, 0.0), src.keypoints(), atol=1e-12)
    # half head: yaw +10, scale x1.5**0.5, t half; expression 2: exp 0.01 + 0.06
    x = motion.relative_keypoints(src, drv, neutral, expression=2.0, head=0.5)
    hand = 1.5 * 1.5**0.5 * (src.kp @ motion.rotation_matrix(0, 10, 0) + 0.07) + np.array([0.2, -0.05, 0.0])
    np.testing.assert_allclose(x, hand, atol=1e-12)
    # a mask zeroes the expression change of masked keypoints
    mask = motion.region_mask(motion.EYE_KP)
    x = motion.relative_keypoints(src, drv, neutral, exp_mask=mask)
    hand = 2.25 * (src.kp @ R + np.where(mask > 0, 0.04, 0.01)) + np.array([0.3, -0.1, 0.0])
    np.testing.assert_allclose(x, hand, atol=1e-12)


def test_relative_rotation_composes_with_the_source():
    # R_new = (R_d · R_d0ᵀ) · R_s: with d0 = yaw 30, d = yaw 30 + pitch 0 -> identity relative
    src = _motion(pitch=10)
    x = motion.relative_keypoints(src, _motion(yaw=30), _motion(yaw=30))
    np.testing.assert_allclose(x, src.keypoints(), atol=1e-12)
    # d = roll 90, d0 = 0, s = yaw 90: kp @ (Rrel · Rs); x axis -> Rrel: (0,1,0) -> Rs: (0,1,0)
    src = _motion(yaw=90, kp=np.tile([1.0, 0.0, 0.0], (21, 1)))
    x = motion.relative_keypoints(src, _motion(roll=90), _motion())
    np.testing.assert_allclose(x[0], [0.0, 1.0, 0.0], atol=1e-12)


def test_stitching_and_retargeting_deltas():
    x_d = np.zeros((21, 3))
    delta = np.zeros(65)
    delta[:63] = np.arange(63) * 0.01
    delta[63:] = [0.5, -0.25]
    out = motion.apply_stitching(x_d, delta)
    # keypoint 1: (0.03, 0.04, 0.05) + (0.5, -0.25, 0)
    np.testing.assert_allclose(out[1], [0.53, -0.21, 0.05], atol=1e-12)
    np.testing.assert_allclose(out[:, 2], np.arange(21) * 0.03 + 0.02, atol=1e-12)
    np.testing.assert_allclose(motion.apply_delta(x_d, delta[:63])[20], [0.60, 0.61, 0.62], atol=1e-12)
    x_s = np.ones((21, 3))
    s_in = motion.stitching_input(x_s, out)
    assert s_in.shape == (1, 126) and s_in.dtype == np.float32
    np.testing.assert_array_equal(s_in[0, :63], 1.0)
    np.testing.assert_allclose(s_in[0, 63 + 3 : 63 + 6], out[1], atol=1e-6)
    e = motion.eye_input(x_s, 0.3, 0.31, 0.1)
    np.testing.assert_allclose(e[0, 63:], [0.3, 0.31, 0.1], atol=1e-7)
    lip = motion.lip_input(x_s, 0.05, 0.4)
    assert lip.shape == (1, 65)
    np.testing.assert_allclose(lip[0, 63:], [0.05, 0.4], atol=1e-7)
    # expression multiplier: x_s + (x_d - x_s) * m
    np.testing.assert_allclose(motion.apply_multiplier(x_s, x_s + 0.2, 1.5), x_s + 0.3)


def test_motion_vector_round_trip():
    m = _motion(pitch=3, yaw=-4, roll=5, t=(0.1, 0.2, 0.3), exp=0.02, scale=1.7)
    back = m.from_vector(m.vector())
    for f in ("pitch", "yaw", "roll", "scale"):
        assert getattr(back, f) == pytest.approx(getattr(m, f))
    np.testing.assert_allclose(back.exp, m.exp)
    np.testing.assert_allclose(back.t, m.t)


def _landmarks(eye=(100.0, 100.0), lip=(100.0, 150.0), extent=((60, 70), (140, 170))):
    p = np.zeros((478, 3))
    (x0, y0), (x1, y1) = extent
    p[:, 0] = np.linspace(x0, x1, 478)
    p[:, 1] = np.linspace(y0, y1, 478)
    p[468, :2] = (eye[0] - 15, eye[1])
    p[473, :2] = (eye[0] + 15, eye[1])
    p[14, :2] = lip
    return p


def test_crop_matrix_by_hand():
    # upright face: eye centre (100, 100), lip (100, 150): axes are the image's, no rotation.
    # landmarks span x 60..140, y 70..170 -> side = max(80, 100) * 2 = 200;
    # centre = (100, 120) shifted up by 0.1 * 200 = (100, 100); k = 256 / 200
    lm = _landmarks()
    M = crop.crop_matrix(lm, 256, scale=2.0, vy_ratio=-0.1)
    k = 256 / 200
    np.testing.assert_allclose(M, [[k, 0, 128 - k * 100], [0, k, 128 - k * 100]], atol=1e-9)
    np.testing.assert_allclose(crop.apply_matrix(M, [[100, 100]]), [[128, 128]], atol=1e-9)
    # the same face rolled by 90 degrees (lip to the left of the eyes): the crop turns it upright
    rot = np.array([[0.0, -1.0], [1.0, 0.0]])  # image (x, y) -> (-y, x)
    lm2 = lm.copy()
    lm2[:, :2] = lm[:, :2] @ rot.T + [300, 0]
    M2 = crop.crop_matrix(lm2, 256, scale=2.0, vy_ratio=-0.1)
    np.testing.assert_allclose(
        crop.apply_matrix(M2, lm2[[468, 473, 14]]), crop.apply_matrix(M, lm[[468, 473, 14]]), atol=1e-9
    )


def test_crop_inverse_and_compose():
    lm = _landmarks(eye=(220, 140), lip=(235, 190), extent=((160, 90), (290, 230)))
    M = crop.crop_matrix(lm, 256)
    inv = crop.invert(M)
    pts = np.random.default_rng(1).uniform(0, 400, (50, 2))
    np.testing.assert_allclose(crop.apply_matrix(inv, crop.apply_matrix(M, pts)), pts, atol=1e-9)
    np.testing.assert_allclose(crop.compose(M, inv), [[1, 0, 0], [0, 1, 0]], atol=1e-12)
    mir = crop.mirror_matrix(256)
    np.testing.assert_allclose(crop.apply_matrix(mir, [[10, 20]]), [[246, 20]])
    np.testing.assert_allclose(
        crop.apply_matrix(crop.compose(crop.scale_matrix(2), M), pts), 2 * crop.apply_matrix(M, pts)
    )


def test_crop_paste_back_round_trip():
    """Crop a picture at the generator's 512² and paste that crop back: the picture again.
    Smooth channels (red, green) within 3 levels; the blue channel is per-pixel noise, which two
    bilinear resamplings blur (mean error < 1 level)."""
    rng = np.random.default_rng(3)
    h = w = 384
    yy, xx = np.mgrid[0:h, 0:w]
    rgba = np.zeros((h, w, 4), np.uint8)
    rgba[..., 0] = (127 + 100 * np.sin(xx / 9.0)).astype(np.uint8)
    rgba[..., 1] = (127 + 100 * np.cos(yy / 13.0)).astype(np.uint8)
    rgba[..., 2] = rng.integers(0, 30, (h, w))
    rgba[..., 3] = 255
    lm = _landmarks(eye=(190, 170), lip=(200, 215), extent=((150, 120), (235, 250)))
    M512 = crop.compose(crop.scale_matrix(2.0), crop.crop_matrix(lm, 256))
    gen = crop.warp_crop(rgba[..., :3], M512, 512)
    paste = crop.PasteBack(rgba, M512, 512)
    out = paste(gen)
    assert out.shape == rgba.shape and np.array_equal(out[..., 3], rgba[..., 3])
    d = np.abs(out.astype(int) - rgba.astype(int))[..., :3]
    assert d[..., :2].max() <= 3 and d.mean() < 1.0, (d[..., :2].max(), d.mean())
    # a black crop pasted: inside the mask's core the picture is black, outside untouched
    black = paste(np.zeros_like(gen))
    core = crop.apply_matrix(crop.invert(M512), [[256, 256]])[0].astype(int)
    assert (black[core[1], core[0], :3] == 0).all()
    assert np.array_equal(black[0, 0], rgba[0, 0])
    m = crop.feather_mask(512)
    assert m[256, 256] == 1.0 and m[0, 0] < 0.01 and m.min() >= 0


def test_flatten_alpha_bleeds_the_edge_colours():
    """A cut-out's transparent surroundings become its own edge colour, not a flat grey, and the
    opaque part is unchanged."""
    h = w = 200
    yy, xx = np.mgrid[0:h, 0:w]
    rgba = np.zeros((h, w, 4), np.uint8)
    rgba[..., :3] = (255, 0, 255)  # garbage under alpha 0 must not leak
    inside = (xx - 100) ** 2 + (yy - 100) ** 2 < 60**2
    rgba[inside, :3] = np.where(xx[inside, None] < 100, [200, 40, 30], [30, 60, 210])
    rgba[inside, 3] = 255
    out = crop.flatten_alpha(rgba)
    np.testing.assert_array_equal(out[inside], rgba[inside, :3])
    assert np.abs(out[100, 30].astype(int) - [200, 40, 30]).max() < 30  # left of the disc: its left colour
    assert np.abs(out[100, 170].astype(int) - [30, 60, 210]).max() < 30
    assert np.abs(out[0, 0].astype(int) - [255, 0, 255]).max() > 50  # nothing from under alpha 0
    opaque = rgba.copy()
    opaque[..., 3] = 255
    assert np.array_equal(crop.flatten_alpha(opaque), opaque[..., :3])
