"""Render stage: the `meshwarp` renderer on the bundled sample character."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from worker.characters.preprocess import preprocess_image
from worker.errors import UserError
from worker.paths import SAMPLE_CHARACTER
from worker.render import create_renderer
from worker.render.meshwarp import MeshWarpRenderer
from worker.retarget import Retargeter, RetargetOptions, geometry
from worker.tools.bench import bench_render
from worker.tools.fidelity import flatten
from worker.tools.sweep import driver_from_character
from worker.track import landmark_ids as L


@pytest.fixture(scope="module")
def char():
    return preprocess_image(SAMPLE_CHARACTER)


@pytest.fixture(scope="module")
def renderer():
    return create_renderer("meshwarp")


@pytest.fixture(scope="module")
def mesh():
    """An independent look at the rendered picture: MediaPipe face mesh on the output."""
    from worker.mp_runtime import mediapipe

    mp = mediapipe()
    m = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True, max_num_faces=1)
    yield lambda rgba: _landmarks(m, rgba)
    m.close()


def _landmarks(m, rgba: np.ndarray) -> np.ndarray | None:
    rgb = np.ascontiguousarray(flatten(rgba)[..., ::-1])
    res = m.process(rgb)
    if not res.multi_face_landmarks:
        return None
    h, w = rgb.shape[:2]
    return np.array([(p.x * w, p.y * h, p.z * w) for p in res.multi_face_landmarks[0].landmark])


def _pose(char, **kw):
    rt = Retargeter(char, RetargetOptions(idle=False, smooth_min_cutoff=0.0))
    return rt.retarget(driver_from_character(char, **kw), driver_from_character(char))


def test_prepare_arrays_are_plain_cacheable_arrays(char):
    r = MeshWarpRenderer()
    a = r.prepare(char.cutout)
    assert r.prepare_version >= 2
    assert a and all(isinstance(v, np.ndarray) and v.dtype != object for v in a.values())
    b = r.prepare(char.cutout)
    assert all(np.array_equal(a[k], b[k]) for k in a)  # deterministic
    assert np.isfinite(a["meshwarp_grid_matrix"]).all()


def test_backends_are_chosen_in_one_place(char):
    assert isinstance(create_renderer("meshwarp"), MeshWarpRenderer)
    with pytest.raises(UserError, match="unknown renderer 'nope'"):
        create_renderer("nope")
    with pytest.raises(UserError, match=r"renderer\.size"):
        create_renderer("meshwarp", size=10)


def test_neutral_pose_renders_the_picture_itself(char, renderer):
    out = renderer.render(char, Retargeter(char).neutral_pose())
    assert out.shape == (512, 512, 4) and out.dtype == np.uint8
    diff = np.abs(out.astype(int) - char.image.astype(int))
    assert diff.mean() < 0.05 and diff.max() <= 2


def test_output_size_and_alpha(char):
    small = create_renderer("meshwarp", size=256)
    pose = _pose(char, roll=20.0, mouth=0.2)
    out = small.render(char, pose)
    assert out.shape == (256, 256, 4) and out.dtype == np.uint8
    full = MeshWarpRenderer(warm_start=False)  # history-free, so the two calls below agree
    out = full.render(char, pose)
    # the matte moves with the picture: alpha is the same warp of the character's alpha
    m = full.backward_map(char, pose)
    alpha = cv2.remap(char.image[..., 3], m, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    mouth = np.zeros((512, 512), bool)
    cv2.fillPoly(mouth.view(np.uint8), [np.round(pose.landmarks[L.inner_lip_contour(), :2]).astype(np.int32)], 1)
    outside = ~cv2.dilate(mouth.view(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert np.array_equal(out[..., 3][outside], alpha[outside])
    assert (char.image[..., 3] < 255).any()  # the sample has a real matte to carry


def test_no_nans_at_extreme_poses(char, renderer):
    for kw in (
        dict(yaw=60.0, pitch=40.0, roll=60.0, mouth=1.0, eyes=0.0),
        dict(yaw=-60.0, mouth=0.8),
        dict(pitch=-40.0, eyes=2.0),
    ):
        pose = _pose(char, **kw)
        assert np.isfinite(renderer.backward_map(char, pose)).all()
        out = renderer.render(char, pose)
        assert out.shape == (512, 512, 4) and out.dtype == np.uint8


def test_no_tears_or_folds_at_large_poses(char, renderer):
    """Neighbouring output pixels sample neighbouring source pixels, except where a part hides.

    Shut lids hide the eyeball, and the mouth interior is painted: those two may jump.
    """
    for kw in (
        dict(yaw=25.0, pitch=10.0, roll=20.0, mouth=0.3),
        dict(yaw=-25.0, pitch=-10.0, roll=-20.0, mouth=0.3),
        dict(yaw=-30.0, mouth=0.3),
        dict(pitch=-15.0, roll=-20.0),
        dict(mouth=0.5),
        dict(yaw=30.0, eyes=0.0),
    ):
        pose = _pose(char, **kw)
        m = renderer.backward_map(char, pose)
        ax, ay = np.diff(m, axis=1)[:-1], np.diff(m, axis=0)[:, :-1]
        step = np.maximum(np.abs(ax).max(-1), np.abs(ay).max(-1))
        hidden = np.zeros((511, 511), np.uint8)
        for ids in (
            L.R_EYE_UPPER + L.R_EYE_LOWER + L.R_EYE_CORNERS,
            L.L_EYE_UPPER + L.L_EYE_LOWER + L.L_EYE_CORNERS,
            L.inner_lip_contour(),
        ):
            cv2.fillConvexPoly(hidden, cv2.convexHull(np.round(pose.landmarks[ids, :2]).astype(np.int32)), 1)
        hidden = cv2.dilate(hidden, np.ones((9, 9), np.uint8)).astype(bool)
        assert step[~hidden].max() < 10.0, kw  # stretches (the chin pulling on the neck), no tears
        # no fold: the map keeps its orientation everywhere (Jacobian determinant > 0)
        det = ax[..., 0] * ay[..., 1] - ax[..., 1] * ay[..., 0]
        assert det[~hidden].min() > 0.02, kw


def test_border_and_background_stay_still_under_large_head_motion(char, renderer):
    still = char.image.astype(int)
    for kw in (dict(yaw=30.0, roll=25.0), dict(pitch=-20.0, roll=-30.0, mouth=0.4)):
        rt = Retargeter(char, RetargetOptions(idle=False, smooth_min_cutoff=0.0))
        face = driver_from_character(char, **kw)
        _, _, iod = geometry.canonical_frame(face.landmarks)
        face.landmarks = face.landmarks + np.float32([0.4 * iod, 0.2 * iod, 0])  # and a shift
        out = renderer.render(char, rt.retarget(face, driver_from_character(char))).astype(int)
        ring = np.ones((512, 512), bool)
        ring[3:-3, 3:-3] = False
        assert np.array_equal(out[ring], still[ring])
        for ys, xs in (
            (slice(0, 48), slice(0, 48)),
            (slice(0, 48), slice(-48, None)),
            (slice(-48, None), slice(0, 48)),
            (slice(-48, None), slice(-48, None)),
        ):
            assert np.abs(out[ys, xs] - still[ys, xs]).mean() < 2.0
        # while the face itself did move
        assert np.abs(out - still).mean() > 3.0


def test_closed_eyes_render_closed(char, renderer, mesh):
    open_lm = mesh(renderer.render(char, _pose(char)))
    shut_lm = mesh(renderer.render(char, _pose(char, eyes=0.0)))
    assert open_lm is not None and shut_lm is not None
    for left in (True, False):
        before, after = geometry.eye_aperture(open_lm, left), geometry.eye_aperture(shut_lm, left)
        assert after < 0.4 * before, (left, before, after)


def test_wide_open_eyes_render_wider(char, renderer, mesh):
    """A driver opening their eyes wide widens the character's (the lid patch, not the coarse
    grid, moves them: by the grid alone MediaPipe read them 5-10 % wider, now ~25 %)."""
    pose = _pose(char, eyes=1.3)
    assert pose.eye_close_left < -0.2 and pose.eye_close_right < -0.2
    open_lm, wide_lm = mesh(renderer.render(char, _pose(char))), mesh(renderer.render(char, pose))
    assert open_lm is not None and wide_lm is not None
    for left in (True, False):
        before, after = geometry.eye_aperture(open_lm, left), geometry.eye_aperture(wide_lm, left)
        assert after > 1.15 * before, (left, before, after)


def test_open_mouth_shows_a_dark_interior_with_teeth(char, renderer, mesh):
    pose = _pose(char, mouth=0.35)
    out = renderer.render(char, pose)
    inner = np.zeros((512, 512), np.uint8)
    cv2.fillPoly(inner, [np.round(pose.landmarks[L.inner_lip_contour(), :2]).astype(np.int32)], 1)
    inner = cv2.erode(inner, np.ones((3, 3), np.uint8)).astype(bool)
    lum = cv2.cvtColor(out[..., :3], cv2.COLOR_RGB2GRAY).astype(float)
    face_lum = cv2.cvtColor(char.image[..., :3], cv2.COLOR_RGB2GRAY)[
        np.round(char.landmarks[L.CHEEKS, 1]).astype(int), np.round(char.landmarks[L.CHEEKS, 0]).astype(int)
    ].mean()
    assert inner.sum() > 200
    assert np.median(lum[inner]) < 0.5 * face_lum  # a dark cavity, not stretched lip
    # teeth: bright just under the upper lip, darker below them
    ys, xs = np.nonzero(inner)
    top = lum[inner][ys < np.percentile(ys, 25)]
    bottom_mid = lum[inner][(ys > np.percentile(ys, 40)) & (ys < np.percentile(ys, 60))]
    assert np.percentile(top, 80) > 1.6 * np.median(bottom_mid)
    # not a flat band: the interior is shaded
    assert lum[inner].std() > 10
    # and MediaPipe sees an open mouth in the picture
    lm = mesh(out)
    assert lm is not None
    assert geometry.mouth_gap(lm) / geometry.canonical_frame(lm)[2] > 0.2


def test_benchmark_reports_times(char):
    r = bench_render(char, frames=12)
    assert r["frames"] == 12 and 0 < r["median_ms"] <= r["p95_ms"] <= r["max_ms"]


def test_mid_opening_shows_painted_teeth_not_the_picture_under_them(char, renderer):
    """Lips parted by ~0.2 eye distances: the upper teeth are painted, lighter than the skin, in
    the top middle of the opening, and every pixel inside it is painted (the teeth's mask once
    doubled as the picture's-own-interior mask and left the warped picture showing there: under
    a moustache that read as a dark band, re-tracked as shut lips)."""
    from worker.render.meshwarp.mouth import draw_mouth_interior

    pose = _pose(char, mouth=0.05)
    lm = pose.landmarks
    a = renderer.prepared(char)
    iod = float(a["meshwarp_iod"][0])
    assert 0.1 < geometry.mouth_gap(lm) / iod < 0.3  # a mid-size opening
    grey = np.full((512, 512, 4), 255, np.uint8)
    grey[..., :3] = 120  # no picture: whatever the interior leaves unpainted stays this grey
    draw_mouth_interior(grey, lm, a["meshwarp_palette"], iod, 1.0, teeth=True)
    inner = np.zeros((512, 512), np.uint8)
    cv2.fillPoly(inner, [np.round(lm[L.inner_lip_contour(), :2]).astype(np.int32)], 1)
    inner = cv2.erode(inner, np.ones((3, 3), np.uint8)).astype(bool)
    lum = grey[..., :3].astype(float).mean(-1)
    assert inner.sum() > 100
    assert (np.abs(grey[..., :3][inner].astype(int) - 120).max(-1) > 8).mean() > 0.97  # painted throughout
    skin = float(np.mean(a["meshwarp_palette"][1]))
    ys, xs = np.nonzero(inner)
    mid_x = (xs > np.percentile(xs, 35)) & (xs < np.percentile(xs, 65))
    top = lum[ys[mid_x & (ys <= np.percentile(ys[mid_x], 30))], xs[mid_x & (ys <= np.percentile(ys[mid_x], 30))]]
    assert np.percentile(top, 80) > skin, (np.percentile(top, 80), skin)  # teeth lighter than the skin
    assert np.median(lum[inner]) < 0.5 * skin  # and a dark cavity around them


@pytest.fixture(scope="module")
def toon():
    """The bundled painted character: a human face that shows its own open mouth (teeth)."""
    from worker.paths import DEMO_CHARACTER

    return preprocess_image(DEMO_CHARACTER)


def _interior(char, renderer, mouth: float, drawn: bool) -> tuple[np.ndarray, np.ndarray, float]:
    """The mouth interior alone over flat grey at `mouth`, with (`drawn`) or without the picture's own
    open mouth; (rgba, posed landmarks, iod)."""
    from worker.render.meshwarp.mouth import draw_mouth_interior

    lm = _pose(char, mouth=mouth).landmarks
    a = renderer.prepared(char)
    iod = float(a["meshwarp_iod"][0])
    grey = np.full((512, 512, 4), 255, np.uint8)
    grey[..., :3] = 120
    own = np.asarray(char.landmarks) if drawn else None
    draw_mouth_interior(grey, lm, a["meshwarp_palette"], iod, 1.0, teeth=True, drawn=own)
    return grey, lm, iod


def _lower_middle(lm: np.ndarray, iod: float, above: float) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns) `above` eye distances over the lower inner lip, across the middle third of the mouth."""
    c0, c1 = lm[L.MOUTH_CORNERS[0], 0], lm[L.MOUTH_CORNERS[1], 0]
    order = np.argsort(lm[L.INNER_LOWER, 0])
    lx, ly = lm[L.INNER_LOWER, 0][order], lm[L.INNER_LOWER, 1][order]
    cols = np.arange(int(c0 + (c1 - c0) / 3), int(c1 - (c1 - c0) / 3))
    return np.round(np.interp(cols, lx, ly) - above * iod).astype(int), cols


def test_a_picture_showing_its_own_open_mouth_keeps_a_human_tongue(toon, renderer):
    """The toon shows its own teeth, so its interior is painted below them only, without teeth: the
    tongue there is still a human's, in the lips' tones, as where the teeth are painted (it once took
    the muzzle's pink, chosen by the teeth being painted)."""
    own, lm, iod = _interior(toon, renderer, 0.6, drawn=True)
    painted, _, _ = _interior(toon, renderer, 0.6, drawn=False)
    assert geometry.mouth_gap(lm) / iod > 0.35  # wide open: the tongue is up
    ys, xs = _lower_middle(lm, iod, 0.1)
    a, b = own[ys, xs, :3].astype(float), painted[ys, xs, :3].astype(float)
    assert a.mean() > 60  # the tongue, not the dark cavity
    assert np.abs(np.median(a, 0) - np.median(b, 0)).max() < 6, (np.median(a, 0), np.median(b, 0))


@pytest.mark.parametrize("drawn", [False, True], ids=["painted teeth", "own mouth"])
def test_wide_open_tongue_keeps_clear_of_the_lower_lip(char, toon, renderer, drawn):
    """A wide-open mouth shows a tongue with a dark floor between it and the lower lip: a tongue in
    the lips' tones touching the lip read as more lip, and the opening as smaller (s10's widest
    openings re-tracked up to 0.07 eye distances smaller)."""
    from worker.render.meshwarp.mouth import TONGUE_CLEAR

    out, lm, iod = _interior(toon if drawn else char, renderer, 0.6, drawn)
    assert geometry.mouth_gap(lm) / iod > 0.35
    lum = out[..., :3].astype(float).mean(-1)
    floor = lum[_lower_middle(lm, iod, 0.01)]
    tongue = lum[_lower_middle(lm, iod, TONGUE_CLEAR + 0.08)]
    assert np.median(tongue) > 2.0 * np.median(floor), (np.median(tongue), np.median(floor))
