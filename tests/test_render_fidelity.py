"""Fidelity on real footage: track -> retarget -> render, then MediaPipe again on the output.

A subsample of the full table: each driver once (whole clips), each character once.
`python -m worker.tools.fidelity` prints all 16 pairs against the project's TARGETS.

Not every target is met yet (see `fidelity.TARGETS` and the table): what this test enforces
are FLOORS just under today's measured levels, so that a regression fails here, while the
printed table keeps the distance to the targets visible.
"""

from __future__ import annotations

import pytest

from worker.tools import fidelity

PAIRS = (("d0", "s42"), ("d3", "s12"), ("d9", "s10"), ("d12", "s9"), ("d12", "s12"))
# measured 2026-11-22 (second session) on these pairs: mouth r 0.97-0.995, eye r 0.83-0.98, roll r 0.91-0.98,
# yaw r 0.93-0.99, gain 0.94-1.21, jitter 0.41-1.79 (the gain target itself is enforced). Jitter on d9xs10 rose from
# 1.55 once lids were drawn exactly (MediaPipe's eye corners on that painting follow the lids: see `fidelity`).
# Texture jitter (optical flow in the face, output / driver: the judged jitter since the decision on the
# earlier targets), measured on these pairs 2026-12-03: 0.52, 0.43, 0.77, 0.22; ceilings just above
# (d9 x s10's also under the target of 0.8).
# The shut lid blended into a dark socket (2026-12-07, second pass) raised d0xs42 0.535 -> 0.542 and d9xs10
# 0.783 -> 0.795 (the broader evened-out lid moves with every blink); ceilings just above, d9xs10's at the target.
# d12xs12 (the one frontal pair short of the per-eye target, kept from getting worse): 0.209 (2026-12-07).
# d0xs42 0.544 -> 0.551 with s42's tongue in its lips' tones (it showed a muzzle's pink; the colour alone
# 0.553, with the tongue's dark floor 0.551: 2026-12-07, main and this side by side): ceiling 0.56.
TEXTURE_CEILINGS = {
    ("d0", "s42"): 0.56,
    ("d3", "s12"): 0.45,
    # 0.799 with the eyes' corners pinned, 0.802 with their lids turned, 0.789 with the head eased into its
    # yaw limits (`retargeter.YAW_KNEE`; 2026-12-07)
    ("d9", "s10"): 0.795,
    ("d12", "s9"): 0.24,
    ("d12", "s12"): 0.23,
}
# Each eye on its own (closure r, gain against the driver's same eye; `fidelity.eye_each`), measured
# 2026-12-07 on these pairs as (left r/gain, right r/gain), before -> after the eyes' neutral taken from
# open frames and the shut lid's lash line: d0xs42 0.96/0.91, 0.96/1.08 -> 0.96/0.91, 0.97/1.10; d3xs12
# 0.89/0.67, 0.70/0.51 -> 0.96/0.95, 0.90/0.80; d9xs10 0.95/0.80, 0.79/0.46 -> 0.97/0.92, 0.89/0.86; d12xs9
# 0.86/1.09, 0.78/1.32 -> 0.85/1.01, 0.80/1.41 (after: with the mouth and edge work merged). Floors just under
# (r - 0.03, gain - 0.08). The targets (r >= 0.9, gain 0.8-1.25 on portraits within 15 degrees of frontal:
# s12, s42) are met on d0xs42; d3xs12's right eye is just short (0.896/0.797). Then the shut lid blended
# into a dark socket (main and this, one after the other on the same machine): d0xs42 0.965/0.902,
# 0.969/1.096 -> 0.967/0.944, 0.960/1.198; d3xs12 0.965/0.931, 0.896/0.781 -> 0.980/1.046, 0.936/0.875
# (both eyes now meet the target); d9xs10 0.970/0.899, 0.895/0.826 -> 0.972/0.891, 0.951/0.982; d12xs9
# 0.852/1.015, 0.805/1.414 -> 0.858/1.129, 0.799/1.400. Floors just under (r - 0.03, gain - 0.08).
# Each eye's corners pinned where the pose puts them (`meshwarp.eyes.EyeRig.pin_corners`; the coarse warp
# grid drew the near eye of a turned head 8 % wide): d0xs42 0.961/0.975, 0.951/1.167; d3xs12 0.979/1.060,
# 0.939/0.870; d9xs10 0.968/0.870, 0.959/0.991; d12xs9 0.826/1.032, 0.851/1.448; d12xs12 0.889/0.824,
# 0.819/1.180 (2026-12-07, fourth pass, the full table on the merged tree). Floors r - 0.03, gain - 0.08.
# Each eye's open lids turned with the head (`EyeRig.turn_scale`: the lid patch kept a turned eye's height
# while the pinned corners narrowed or widened it), the full table side by side on the merged tree
# (2026-12-07, fifth pass): d0xs42 0.959/0.974, 0.955/1.157; d3xs12 0.979/1.046, 0.951/0.861; d9xs10
# 0.970/0.873, 0.967/0.981; d12xs9 0.833/1.125, 0.885/1.346; d12xs12 0.876/0.836, 0.850/1.168. Floors r - 0.03,
# gain - 0.08.
# Each eye measured on the face turned back to frontal and the output read twice (`fidelity.eye_apertures`,
# `Signals.read_twice`; 2026-12-07, the full table): d0xs42 0.972/0.912, 0.968/1.213; d3xs12 0.984/1.051,
# 0.963/0.818; d9xs10 0.975/0.843, 0.975/0.890; d12xs9 0.862/1.162, 0.915/1.159; d12xs12 0.921/0.868,
# 0.901/1.000 (0.873/0.838, 0.850/1.148 read as before). Floors r - 0.03, gain - 0.08.
EYE_FLOORS = {
    ("d0", "s42"): ((0.94, 0.83), (0.94, 1.13)),
    ("d3", "s12"): ((0.95, 0.97), (0.93, 0.74)),
    ("d9", "s10"): ((0.945, 0.76), (0.945, 0.81)),
    ("d12", "s9"): ((0.83, 1.08), (0.885, 1.08)),
    # the target met at its margin on the right eye: see docs/performance.md, "Eyes"
    ("d12", "s12"): ((0.89, 0.79), (0.87, 0.92)),
}
# The mouth per pair (r, most lag in frames; `fidelity.lag_frames`), measured 2026-12-07 with the lips' own
# steadying and rounding (`RetargetOptions.steady_mouth_*`, `round_gain`): d0xs42 r 0.993 lag 0.05, d3xs12
# 0.955 / 1.33, d12xs9 0.973 / 0.02 (before: 0.993 / 0.05, 0.955 / 1.11, 0.973 / 0.03). Floors r - 0.01, lag +
# 0.5. With the upper teeth painted from mid openings (`meshwarp.mouth`; before, the re-tracker read a
# mid-size opening under s12's moustache as shut): d0xs42 0.993 / 0.13, d3xs12 0.984 / 0.65, d12xs9 0.979 /
# 0.10 (2026-12-07, the full table on the merged tree).
# The tongue in the lips' tones with a dark floor over the lower lip (`meshwarp.mouth.TONGUE_CLEAR`; on the
# pictures showing their own open mouth it had a muzzle's pink), 2026-12-07, main and this side by side:
# d0xs42 0.995 / 0.10 -> 0.997 / 0.09, d3xs12 0.989 / 0.48 -> 0.990 / 0.28, d12xs9 0.981 / 0.10 -> 0.988 / 0.09.
MOUTH_FLOORS = {("d0", "s42"): (0.987, 0.6), ("d3", "s12"): (0.98, 0.78), ("d12", "s9"): (0.978, 0.6)}
# Head turn per pair (roll r, yaw r). d9 x s10, the painting turned 33 degrees: 0.929 / 0.888 while its head
# was held within 3 degrees further away and 12 back; 0.924 / 0.903 with `retargeter.YAW_AWAY_MIN`,
# `YAW_BACK_MIN` (2026-12-07). The roll r left under the 0.93 target is MediaPipe's reading of its shut lids
# (`worker.tools.roll_reading`: the same head drawn with the expressions off re-tracks at 0.988). With each
# eye's corners pinned where the pose puts them: 0.942 / 0.898 (the roll target met). Eased into its yaw
# limits (`retargeter.YAW_KNEE`, away at least 5 degrees): 0.940 / 0.910 (2026-12-07, the full table).
POSE_FLOORS = {("d9", "s10"): (0.935, 0.905)}
FLOORS = {"mouth_r": 0.93, "eye_r": 0.8, "roll_r": 0.9, "yaw_r": 0.88, "gain": fidelity.TARGETS["gain"], "jitter": 2.0}


@pytest.mark.slow
@pytest.mark.parametrize("driver,character", PAIRS)
def test_output_follows_the_driver(testdata, driver, character):
    path = testdata / "footage" / "driving" / f"{driver}.mp4"
    states, neutrals = fidelity.track_driver(path)
    res = fidelity.run_pair(
        driver,
        states,
        neutrals,
        fidelity.portrait_character(character, testdata),
        driver_texture=fidelity.driver_texture_jitter(path),
    )
    table = fidelity.format_table([res])
    print(table)
    assert res.faces_found == res.frames, table
    for key in ("mouth_r", "eye_r", "roll_r", "yaw_r"):
        value = getattr(res, key)
        assert value is None or value >= FLOORS[key], f"{key}: {value:.3f}\n{table}"
    if (driver, character) in POSE_FLOORS:
        roll_floor, yaw_floor = POSE_FLOORS[(driver, character)]
        assert res.roll_r is not None and res.roll_r >= roll_floor, table
        assert res.yaw_r is not None and res.yaw_r >= yaw_floor, table
    assert res.gain is None or FLOORS["gain"][0] <= res.gain <= FLOORS["gain"][1], table
    if (driver, character) in MOUTH_FLOORS:
        r_floor, lag_max = MOUTH_FLOORS[(driver, character)]
        assert res.mouth_r is not None and res.mouth_r >= r_floor, table
        assert res.mouth_lag is not None and res.mouth_lag <= lag_max, table
    assert res.jitter <= FLOORS["jitter"], table
    assert res.texture <= TEXTURE_CEILINGS[(driver, character)], table
    for side, (r_floor, g_floor) in zip(("left", "right"), EYE_FLOORS[(driver, character)], strict=True):
        r, g = res.eye_each[side]
        assert r is not None and r >= r_floor and g >= g_floor, (side, r, g, table)
    # what is drawn is steadier than the raw driver (the re-tracked `jitter` adds the second
    # tracker's own noise: see the `still` column and the module doc of `fidelity`)
    assert res.pose_jitter <= fidelity.TARGETS["jitter"], table
    # ... and follows the driver's lids and tilt closely (measured: eye 0.97-0.99, roll 1.00 on all
    # 16 pairs): where the re-tracked eye or roll r is lower, the second tracker lost it
    assert res.pose_r["eye_r"] >= 0.95, table
    assert res.pose_r["roll_r"] is None or res.pose_r["roll_r"] >= 0.99, table


# d12 x s10, the last shared talking pair under the mouth r of 0.97: the painting keeps its own
# open mouth and is drawn turned 33 degrees. 2026-12-07, main (with the edge and vowel work merged) and this
# side by side: mouth r 0.954 -> 0.971, gain 0.84 -> 0.97, lag 0.03 -> 0.10 frames, texture jitter 0.25 ->
# 0.25, once the skin under the lower lip gives way to it (`meshwarp.jaw`: before, the fold guard drew the
# widest openings at down to 0.75 of the pose's). Floor r - 0.01, the gain's band and ceilings just around.
# With the oval O/U, the wider head turn of a turned portrait and the eyes' corners pinned: 0.972, gain 0.96.
# Its tongue in the lips' tones (it took a muzzle's pink: the painting shows its own open mouth) and a dark
# floor between the tongue and the lower lip (2026-12-07, main and this side by side): 0.972 -> 0.982, gain
# 0.96 -> 0.99, lag 0.09 -> 0.08 frames, texture jitter 0.25 -> 0.25.
TURNED_MOUTH = {"mouth_r": 0.972, "gain": (0.87, 1.1), "lag": 0.6, "texture": 0.28}


@pytest.mark.slow
def test_turned_painting_opens_its_mouth_with_the_driver(testdata):
    path = testdata / "footage" / "driving" / "d12.mp4"
    states, neutrals = fidelity.track_driver(path)
    res = fidelity.run_pair(
        "d12",
        states,
        neutrals,
        fidelity.portrait_character("s10", testdata),
        driver_texture=fidelity.driver_texture_jitter(path),
    )
    table = fidelity.format_table([res])
    t = TURNED_MOUTH
    assert res.mouth_r is not None and res.mouth_r >= t["mouth_r"], table
    assert res.gain is not None and t["gain"][0] <= res.gain <= t["gain"][1], table
    assert res.mouth_lag is not None and res.mouth_lag <= t["lag"], table
    assert res.texture <= t["texture"], table


def test_metrics_detect_a_frozen_character(testdata):
    """The metrics can fail: a character that ignores the driver scores no gain and no r."""
    from worker.retarget.retargeter import RetargetOptions

    states, neutrals = fidelity.track_driver(testdata / "footage" / "driving" / "d12.mp4", 60)
    res = fidelity.run_pair(
        "d12",
        states,
        neutrals,
        fidelity.portrait_character("s42", testdata),
        RetargetOptions(idle=False, expression_strength=0.0, head_strength=0.0),
    )
    assert res.gain is not None and res.gain < 0.3
    assert any(f.startswith("mouth r") for f in res.failures())


def test_instrument_floor_is_measured(testdata):
    """The `still` column is real: MediaPipe's tracking mode settles on a photo but keeps
    wandering on a painting that never changes (see the module doc of `fidelity`)."""
    photo = fidelity.still_jitter(fidelity.portrait_character("s12", testdata))
    painting = fidelity.still_jitter(fidelity.portrait_character("s9", testdata))
    assert photo < 0.003, photo
    assert painting > 0.006, painting


def test_instrument_floor_for_a_moving_picture(testdata):
    """The `rigid` column is real: the unchanged photo moved rigidly and perfectly smoothly along
    the drawn head path re-tracks far less steadily than the path itself (`pose`): the second
    MediaPipe pass adds its own jitter to anything that moves."""
    states, neutrals = fidelity.track_driver(testdata / "footage" / "driving" / "d3.mp4", 120)
    res = fidelity.run_pair("d3", states, neutrals, fidelity.portrait_character("s12", testdata), floor=True)
    assert res.pose_jitter < 0.6, fidelity.format_table([res])
    assert res.rigid > 1.4 * res.pose_jitter, fidelity.format_table([res])


def test_lag_is_found_by_cross_correlation():
    """`lag_frames` finds a known delay to a fraction of a frame, and a lead as negative."""
    import numpy as np

    t = np.arange(200)
    drv = np.sin(t / 4.0) + 0.3 * np.sin(t / 1.7)
    late = np.interp(t - 2.5, t, drv)  # 2.5 frames late
    assert abs(fidelity.lag_frames(list(drv), list(late)) - 2.5) < 0.3
    assert abs(fidelity.lag_frames(list(drv), list(np.roll(drv, -1))) + 1.0) < 0.2
    assert abs(fidelity.lag_frames(list(drv), list(drv))) < 1e-6


def test_an_eye_is_measured_on_the_face_turned_back_to_frontal():
    """A head turned 25 degrees shows its eyes narrower but their lids as far apart: read as seen, the
    eye turned away reads 19 % more open (the near one 3 %, its outer corner being further back);
    `eye_apertures` (what the judged eye figures use) reads both unchanged."""
    import math

    import numpy as np

    from worker.retarget import geometry
    from worker.track.canonical import load_canonical_face

    face = load_canonical_face().astype(np.float64) * 20.0 + np.array([256.0, 256.0, 0.0])
    centre = face.mean(0)
    for yaw_deg in (-25.0, 25.0):
        turned = (face - centre) @ geometry.from_euler_yxz(math.radians(yaw_deg), 0.0, 0.0).T + centre
        seen = [geometry.eye_aperture(turned, e) / geometry.eye_aperture(face, e) for e in (True, False)]
        assert max(seen) > 1.15 and min(seen) > 1.02, seen  # the instrument's old reading
        for a, b in zip(fidelity.eye_apertures(turned), fidelity.eye_apertures(face), strict=True):
            assert abs(a / b - 1.0) < 1e-6, (yaw_deg, a, b)


def test_the_eyes_read_twice_are_averaged_and_a_lost_reading_leaves_the_other():
    import numpy as np

    nan = float("nan")
    a, b = fidelity.Signals(), fidelity.Signals()
    a.eye_l, a.eye_r, a.eyes, a.mouth = [0.2, nan, 0.3], [0.1, 0.2, nan], [0.15, nan, nan], [1.0, 2.0, 3.0]
    b.eye_l, b.eye_r, b.eyes, b.mouth = [0.4, 0.5, nan], [0.3, nan, nan], [0.35, nan, nan], [9.0, 9.0, 9.0]
    both = a.read_twice(b)
    assert np.allclose(both.eye_l, [0.3, 0.5, 0.3])
    assert np.allclose(both.eye_r[:2], [0.2, 0.2]) and np.isnan(both.eye_r[2])
    assert both.mouth == a.mouth and a.eye_l[1] != a.eye_l[1]  # the rest is the first reading's, `a` unchanged
