"""Crops and augmentation keep image, 2D/3D joints, intrinsics and object pose consistent."""
import numpy as np
import pytest

from hand_object_pose.geometry.rotations import axis_angle_to_matrix
from hand_object_pose.training.augmentation import AugmentationConfig, make_training_crop
from hand_object_pose.datasets.sample import HandLabel, ObjectLabel, Sample


def _sample(fx=600.0, fy=600.0, with_object=False):
    rng = np.random.default_rng(5)
    right = rng.uniform(-0.06, 0.06, (21, 3)) + [0.05, 0.0, 0.6]
    left = rng.uniform(-0.06, 0.06, (21, 3)) + [-0.1, 0.02, 0.65]
    hands = {"right": HandLabel("right", right, np.ones(21, bool), mano_pose=np.r_[0.3, -0.2, 0.1, np.zeros(45)]),
             "left": HandLabel("left", left, np.ones(21, bool))}
    objects = [ObjectLabel("box", axis_angle_to_matrix(np.array([0.2, 0.1, -0.3])), np.array([0.0, 0.0, 0.62]))] \
        if with_object else []
    K = np.array([[fx, 0, 320.0], [0, fy, 240.0], [0, 0, 1]])
    return Sample("synthetic", "0", "", K, (640, 480), hands, objects)


def _marked_image(sample, side, joint):
    """Grey image with a bright 3x3 dot at one joint's projection."""
    image = np.full((480, 640, 3), 40, np.uint8)
    p = sample.hands[side].joints_cam[joint] @ sample.intrinsics.T
    u, v = np.round(p[:2] / p[2]).astype(int)
    image[v - 1:v + 2, u - 1:u + 2] = 255
    return image, np.array([u, v], float)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("fy", [600.0, 640.0])
def test_projection_of_crop_labels_matches_the_warped_image(seed, fy):
    sample = _sample(fy=fy)
    image, _ = _marked_image(sample, "right", 8)
    config = AugmentationConfig(rotation_prob=1.0, flip_prob=0.5)
    crop = make_training_crop(sample, image, np.random.default_rng(seed), config)
    side = "left" if crop.flipped else "right"
    hand = crop.hands[side]
    # 3D labels in the crop camera project with K' onto the stored 2D labels ...
    projected = hand.joints_cam.astype(np.float64) @ crop.intrinsics.T
    np.testing.assert_allclose(projected[:, :2] / projected[:, 2:], hand.joints_uv, atol=1e-3)
    # ... and the image content moved there too (the dot drawn at joint 8).
    u, v = hand.joints_uv[8]
    if 2 <= u <= 253 and 2 <= v <= 253:
        patch = crop.image[int(round(v)) - 1:int(round(v)) + 2, int(round(u)) - 1:int(round(u)) + 2]
        assert patch.max() > 150
    # Bone lengths are preserved (rotation / mirror only).
    original = sample.hands["right"].joints_cam
    np.testing.assert_allclose(np.linalg.norm(hand.joints_cam - hand.joints_cam[0], axis=1),
                               np.linalg.norm(original - original[0], axis=1), atol=1e-6)


def test_flip_swaps_sides_and_mirrors_the_hand():
    sample = _sample()
    config = AugmentationConfig(flip_prob=1.0, rotation_prob=0.0, shift=0.0, scale=0.0, colour=0.0)
    crop = make_training_crop(sample, np.zeros((480, 640, 3), np.uint8), np.random.default_rng(0), config)
    assert crop.flipped and list(crop.hands) == ["right", "left"]
    np.testing.assert_allclose(crop.hands["left"].joints_cam, sample.hands["right"].joints_cam * [-1, 1, 1], atol=1e-6)
    np.testing.assert_allclose(crop.hands["left"].mano_pose[:3], [0.3, 0.2, -0.1], atol=1e-6)


def test_no_flip_with_objects_and_object_pose_rotates_with_the_camera():
    sample = _sample(with_object=True)
    config = AugmentationConfig(flip_prob=1.0, rotation_prob=1.0)
    crop = make_training_crop(sample, np.zeros((480, 640, 3), np.uint8), np.random.default_rng(3), config)
    assert not crop.flipped
    obj = crop.objects[0]
    np.testing.assert_allclose(obj.rotation, crop.rotation_z @ sample.objects[0].rotation, atol=1e-12)
    # The object's centre projects consistently with the hands' crop geometry.
    full = sample.intrinsics @ sample.objects[0].translation
    expected = crop.affine @ np.r_[full[:2] / full[2], 1.0]
    got = crop.intrinsics @ obj.translation
    np.testing.assert_allclose(got[:2] / got[2], expected, atol=1e-6)


def test_plain_crop_is_deterministic_and_contains_the_hands():
    sample = _sample()
    config = AugmentationConfig(enabled=False)
    a = make_training_crop(sample, np.zeros((480, 640, 3), np.uint8), np.random.default_rng(0), config)
    b = make_training_crop(sample, np.zeros((480, 640, 3), np.uint8), np.random.default_rng(1), config)
    np.testing.assert_array_equal(a.intrinsics, b.intrinsics)
    for hand in a.hands.values():
        assert hand.joints_valid.all()  # a x1.25 box around all joints keeps them inside


def test_frame_without_hands_is_cropped_around_the_object_or_whole():
    """Synthetic scenes may hide both hands: such a frame still trains (presence 0, the object)."""
    config = AugmentationConfig(enabled=False)
    corners = np.array([[x, y, z] for x in (-0.03, 0.03) for y in (-0.05, 0.05) for z in (-0.03, 0.03)])
    K = np.array([[600.0, 0, 320.0], [0, 600.0, 240.0], [0, 0, 1]])
    obj = ObjectLabel("box", np.eye(3), np.array([0.1, 0.0, 0.5]), corners_rest=corners)
    crop = make_training_crop(Sample("synthetic", "1", "", K, (640, 480), {}, [obj]),
                              np.zeros((480, 640, 3), np.uint8), np.random.default_rng(0), config, out_size=64)
    assert crop.hands == {} and len(crop.objects) == 1
    uv = crop.intrinsics @ crop.objects[0].translation
    assert np.allclose(uv[:2] / uv[2], 32, atol=1.5)  # centred on the object (perspective: box centre != origin)
    # The square box fits the projected 3D box (its taller side, v) and is enlarged x1.25.
    projected = (corners + obj.translation) @ K.T
    v = projected[:, 1] / projected[:, 2]
    np.testing.assert_allclose(crop.intrinsics[0, 0], 600.0 * 64 / (1.25 * (v.max() - v.min())), rtol=1e-6)
    empty = make_training_crop(Sample("x", "7", "", np.eye(3), (10, 20)), np.zeros((20, 10, 3), np.uint8),
                               np.random.default_rng(0), config, out_size=32)
    # No hand, no object: the whole image (a square around 10 x 20 px, x1.25) is the crop.
    np.testing.assert_allclose(empty.intrinsics[0, 0], 32 / (20 * 1.25), rtol=1e-6)
