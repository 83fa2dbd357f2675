"""Crop -> back-map -> metric hand: a known 3D hand projected through known intrinsics (with and
without lens distortion) into a crop, as an adapter would report it, must come back exactly."""
import numpy as np
import pytest

from hand_object_pose.geometry.camera import CameraIntrinsics, apply_affine, invert_affine
from hand_object_pose.inference import crops
from hand_object_pose.inference.adapters import CropPrediction, HandInCrop, ObjectInCrop
from hand_object_pose.inference.config import EstimatorConfig
from hand_object_pose.inference.lifting import lift_prediction
from hand_object_pose.inference.result import DEPTH_FROM_2D_FIT, DEPTH_FROM_DEFAULT, DEPTH_FROM_DEPTH_IMAGE

from inference.hand_fixtures import render_depth, synthetic_hand

PLAIN = CameraIntrinsics(612.0, 608.0, 318.5, 245.0, width=640, height=480)
DISTORTED = CameraIntrinsics(612.0, 608.0, 318.5, 245.0, distortion=(-0.12, 0.05, 0.001, -0.0008, 0.0),
                             width=640, height=480)
ROOT = np.array([0.06, -0.03, 0.52])


def config(**kw):
    return EstimatorConfig(model="kpt_h2o3d_3d", model_path="m.onnx", **kw).validate()


def hand_in_crop(camera, crop, rel, root, three_d=True, presence=0.9):
    """What a perfect network would report for this hand in this crop."""
    uv_crop = crop.camera.project(rel + root)  # projecting with K' = A K lands in crop pixels directly
    return HandInCrop(side="right", presence=presence, uv_crop=uv_crop, joint_confidence=np.full(21, 0.9),
                      rel_depth=rel[:, 2].copy(), joints_rel=rel.copy() if three_d else None)


@pytest.mark.parametrize("camera", [PLAIN, DISTORTED], ids=["pinhole", "distorted"])
def test_crop_intrinsics_and_back_map(camera):
    rel = synthetic_hand(2)
    uv = camera.project(rel + ROOT)
    box = crops.box_around_keypoints([uv], margin=1.25, min_size=48)
    crop = crops.make_crop(box, camera, 256, crops.FROM_TRACKING)
    assert crop.box[2] == crop.box[3] and crop.size == 256
    in_crop = apply_affine(uv, crop.affine)
    assert in_crop.min() > 0 and in_crop.max() < 256          # the whole hand is inside, with a margin
    np.testing.assert_allclose(crop.camera.project(rel + ROOT), in_crop, atol=1e-9)   # K' = A K
    np.testing.assert_allclose(apply_affine(in_crop, invert_affine(crop.affine)), uv, atol=1e-9)


@pytest.mark.parametrize("camera", [PLAIN, DISTORTED], ids=["pinhole", "distorted"])
def test_fit_2d_recovers_the_true_hand(camera):
    rel = synthetic_hand(2)
    crop = crops.make_crop(crops.box_around_keypoints([camera.project(rel + ROOT)], 1.25, 48), camera, 256, "tracking")
    hands, _ = lift_prediction(CropPrediction([hand_in_crop(camera, crop, rel, ROOT)]), crop, camera, None,
                               config(), "obj")
    (hand,) = hands
    assert hand.root_depth_source == DEPTH_FROM_2D_FIT and hand.present
    np.testing.assert_allclose(hand.joints_xyz, rel + ROOT, atol=1e-6)
    np.testing.assert_allclose(hand.joints_uv, camera.project(rel + ROOT), atol=1e-6)
    np.testing.assert_allclose(hand.crop_box, crop.box)


def test_depth_image_source_and_2p5d_hand():
    camera = PLAIN
    rel = synthetic_hand(3)
    crop = crops.make_crop(crops.full_frame_box(640, 480), camera, 256, crops.FROM_FULL_FRAME)
    depth = render_depth(rel + ROOT, surface_offset=0.01, K=camera.matrix)
    depth[::3] = np.nan
    for three_d in (True, False):
        hand = hand_in_crop(camera, crop, rel, ROOT, three_d=three_d)
        hands, _ = lift_prediction(CropPrediction([hand]), crop, camera, depth, config(hand_surface_offset_m=0.01),
                                   "obj")
        assert hands[0].root_depth_source == DEPTH_FROM_DEPTH_IMAGE
        np.testing.assert_allclose(hands[0].joints_xyz, rel + ROOT, atol=1e-5)


def test_2p5d_fit_uses_hand_size():
    camera = PLAIN
    rel = synthetic_hand(4)
    from hand_object_pose.geometry.skeleton import BONES
    size = float(sum(np.linalg.norm(rel[c] - rel[p]) for p, c in BONES))
    crop = crops.make_crop(crops.full_frame_box(640, 480), camera, 256, crops.FROM_FULL_FRAME)
    hands, _ = lift_prediction(CropPrediction([hand_in_crop(camera, crop, rel, ROOT, three_d=False)]), crop, camera,
                               None, config(hand_size_m=size), "obj")
    assert hands[0].root_depth_source == DEPTH_FROM_2D_FIT
    np.testing.assert_allclose(hands[0].joints_xyz, rel + ROOT, atol=1e-4)


def test_default_depth_when_nothing_else_works():
    camera = PLAIN
    rel = synthetic_hand(5)
    crop = crops.make_crop(crops.full_frame_box(640, 480), camera, 256, crops.FROM_FULL_FRAME)
    hand = hand_in_crop(camera, crop, rel, ROOT)
    hand.joint_confidence[:] = 0.05  # below fit_min_joint_confidence: no 2D fit
    empty_depth = np.zeros((480, 640), np.float32)
    hands, _ = lift_prediction(CropPrediction([hand]), crop, camera, empty_depth, config(default_depth_m=0.8), "o")
    assert hands[0].root_depth_source == DEPTH_FROM_DEFAULT
    assert hands[0].joints_xyz[0, 2] == pytest.approx(0.8)
    # The hand stays where it is in the image.
    projected = camera.project(hands[0].joints_xyz)
    np.testing.assert_allclose(projected.mean(axis=0), camera.project(rel + ROOT).mean(axis=0), atol=3.0)


def test_object_follows_its_hand_and_needs_it_present():
    camera = PLAIN
    rel = synthetic_hand(6)
    crop = crops.make_crop(crops.full_frame_box(640, 480), camera, 256, crops.FROM_FULL_FRAME)
    rotation = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])
    obj = ObjectInCrop(rotation=rotation, translation_from_wrist=np.array([0.02, 0.05, 0.03]), relative_to="right",
                       confidence=0.7)
    hands, objects = lift_prediction(CropPrediction([hand_in_crop(camera, crop, rel, ROOT)], [obj]), crop, camera,
                                     None, config(), "025_mug")
    (o,) = objects
    assert o.object_id == "025_mug" and o.confidence == 0.7
    np.testing.assert_allclose(o.translation, ROOT + [0.02, 0.05, 0.03], atol=1e-6)
    np.testing.assert_array_equal(o.rotation, rotation)
    absent = hand_in_crop(camera, crop, rel, ROOT, presence=0.2)
    hands, objects = lift_prediction(CropPrediction([absent], [obj]), crop, camera, None, config(), "025_mug")
    assert not hands[0].present and objects == []


def test_crop_boxes():
    np.testing.assert_allclose(crops.full_frame_box(640, 480), [0, -80, 640, 640])
    np.testing.assert_allclose(crops.clip_roi((-10, 400, 100, 200), 640, 480), [0, 400, 90, 80])
    assert crops.clip_roi((700, 10, 50, 50), 640, 480) is None
    assert crops.clip_roi((10, 10, 0, 50), 640, 480) is None
    assert crops.clip_roi(("a", 1, 2), 640, 480) is None
    np.testing.assert_allclose(crops.enlarge_box((100, 100, 40, 20), 1.5, 10), [90, 80, 60, 60])
    np.testing.assert_allclose(crops.enlarge_box((100, 100, 4, 2), 1.5, 48), [78, 77, 48, 48])
    np.testing.assert_allclose(crops.box_around_keypoints([np.array([[10.0, 20.0]])], 1.25, 32), [-6, 4, 32, 32])
    assert crops.box_around_keypoints([np.full((21, 2), np.nan)], 1.25, 32) is None


def test_tracker_drops_after_misses():
    tracker = crops.CropTracker(lost_after=2)
    tracker.update(np.array([1.0, 2, 3, 3]))
    tracker.miss()
    assert tracker.box is not None
    tracker.miss()
    assert tracker.box is None
    tracker.update(np.array([1.0, 2, 3, 3]))
    tracker.reset()
    assert tracker.box is None
