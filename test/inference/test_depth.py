"""Root recovery: depth image sampling, the closed-form 2D fit, and depth-only placement."""
import numpy as np
import pytest

from hand_object_pose.inference.depth import fit_translation, root_depth_from_image, translation_for_depth
from inference.hand_fixtures import K, PALM, project, render_depth, synthetic_hand


@pytest.mark.parametrize("root", [np.array([0.05, -0.02, 0.45]), np.array([-0.1, 0.08, 0.9])])
def test_depth_image_gives_true_root_depth_with_holes(root):
    rel = synthetic_hand()
    points = rel + root
    depth = render_depth(points, surface_offset=0.012)
    rng = np.random.default_rng(1)
    holes = rng.uniform(size=depth.shape) < 0.3
    depth[holes] = 0.0
    depth[rng.uniform(size=depth.shape) < 0.1] = np.nan
    depth[rng.uniform(size=depth.shape) < 0.05] = np.inf
    z = root_depth_from_image(depth, project(points), rel[:, 2], PALM, window_px=3, min_m=0.1, max_m=5.0,
                              min_valid=8, surface_offset_m=0.012)
    assert z == pytest.approx(root[2], abs=1e-4)


def test_depth_image_robust_to_an_occluded_keypoint():
    rel = synthetic_hand()
    root = np.array([0.0, 0.0, 0.6])
    depth = render_depth(rel + root, surface_offset=0.0)
    uv = project(rel + root)
    u, v = np.round(uv[9]).astype(int)
    depth[v - 8:v + 9, u - 8:u + 9] = 0.3  # something in front of the middle MCP
    z = root_depth_from_image(depth, uv, rel[:, 2], PALM, 3, 0.1, 5.0, 8, 0.0)
    assert z == pytest.approx(0.6, abs=1e-4)


def test_depth_image_without_valid_pixels_gives_none():
    rel = synthetic_hand()
    uv = project(rel + [0, 0, 0.5])
    depth = np.zeros((480, 640), np.float32)
    depth[::2] = np.nan
    assert root_depth_from_image(depth, uv, rel[:, 2], PALM, 3, 0.1, 5.0, 8, 0.01) is None
    far = np.full((480, 640), 7.0, np.float32)  # all beyond depth_max_m
    assert root_depth_from_image(far, uv, rel[:, 2], PALM, 3, 0.1, 5.0, 8, 0.01) is None
    outside = uv + 2000.0
    assert root_depth_from_image(far, outside, rel[:, 2], PALM, 3, 0.1, 5.0, 8, 0.01) is None


@pytest.mark.parametrize("root", [np.array([0.05, -0.02, 0.45]), np.array([-0.3, 0.2, 1.6]),
                                  np.array([0.0, 0.0, 0.25])])
def test_fit_translation_exact_on_noise_free_data(root):
    rel = synthetic_hand(3)
    t = fit_translation(rel, project(rel + root), K)
    np.testing.assert_allclose(t, root, atol=1e-9)


def test_fit_translation_with_skewed_intrinsics():
    Ks = K.copy()
    Ks[0, 1] = 3.0
    rel = synthetic_hand(4)
    root = np.array([0.1, 0.05, 0.7])
    np.testing.assert_allclose(fit_translation(rel, project(rel + root, Ks), Ks), root, atol=1e-9)


def test_fit_translation_robust_to_noise_and_outliers():
    rel = synthetic_hand(5)
    root = np.array([0.04, 0.03, 0.55])
    rng = np.random.default_rng(7)
    errors = []
    for _ in range(20):
        uv = project(rel + root) + rng.normal(0, 1.5, (21, 2))
        uv[rng.choice(21, 2, replace=False)] += rng.uniform(30, 60, (2, 2))  # two wrong keypoints
        t = fit_translation(rel, uv, K)
        errors.append(np.abs(t - root))
    errors = np.array(errors)
    assert np.median(errors[:, 2]) < 0.03  # depth: a few cm at 55 cm from ~1.5 px noise + outliers
    assert np.median(errors[:, :2]) < 0.005


def test_fit_translation_weights_exclude_joints():
    rel = synthetic_hand(6)
    root = np.array([0.0, 0.1, 0.8])
    uv = project(rel + root)
    uv[3] += 500.0
    weights = np.ones(21)
    weights[3] = 0.0
    np.testing.assert_allclose(fit_translation(rel, uv, K, weights), root, atol=1e-9)


def test_fit_translation_rejects_degenerate_and_implausible():
    rel = np.zeros((21, 3))  # a point hand has no scale: depth is unobservable
    assert fit_translation(rel, np.full((21, 2), 300.0), K) is None
    hand = synthetic_hand()
    assert fit_translation(hand, project(hand + [0, 0, 0.5]), K, max_depth_m=0.3) is None
    assert fit_translation(hand[:2], project(hand[:2] + [0, 0, 0.5]), K) is None


def test_translation_for_depth_places_hand_on_its_rays():
    rel = synthetic_hand(8)
    root = np.array([-0.07, 0.02, 0.65])
    np.testing.assert_allclose(translation_for_depth(rel, project(rel + root), K, 0.65), root, atol=1e-12)
    # Wrong depth: the hand keeps its place in the image (the mean keypoint stays within a few px).
    t = translation_for_depth(rel, project(rel + root), K, 1.0)
    assert t[2] == 1.0
    np.testing.assert_allclose(project(rel + t).mean(axis=0), project(rel + root).mean(axis=0), atol=3.0)


@pytest.mark.parametrize("root", [np.array([0.05, -0.02, 0.45]), np.array([-0.1, 0.08, 0.9]),
                                  np.array([0.2, 0.1, 2.5])])
def test_hand_size_fit_recovers_the_depth_and_matches_the_bone_sum_it_inverts(root):
    """The 2.5D fit (bisection on the bones' linear form in Z) finds the depth at which `bone_length_sum`, the
    direct definition, gives the hand's size: the true root for the true size, within the tolerance."""
    from hand_object_pose.inference.depth_2p5d import bone_length_sum, fit_depth_to_hand_size

    rng = np.random.default_rng(int(root[2] * 100))
    rel = synthetic_hand() + rng.normal(0.0, 0.003, (21, 3))
    rel -= rel[0]
    uv = project(rel + root)
    size = bone_length_sum(uv, rel[:, 2], K, root[2])
    z = fit_depth_to_hand_size(uv, rel[:, 2], K, size)
    assert z == pytest.approx(root[2], abs=2e-5)
    assert bone_length_sum(uv, rel[:, 2], K, z) == pytest.approx(size, rel=1e-4)
    assert fit_depth_to_hand_size(uv, rel[:, 2], K, size, max_depth_m=root[2] / 2) is None   # out of range
    uv[3] = np.nan
    assert fit_depth_to_hand_size(uv, rel[:, 2], K, size) is None
