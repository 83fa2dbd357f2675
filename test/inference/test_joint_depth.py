"""Hand joints' depths refined with the depth image (inference/joint_depth.py): half way towards the measured skin
plus its offset, along each joint's ray, hidden and unmeasured joints kept; and through the Estimator on generated
scenes with the shipped default network."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hand_object_pose.geometry.camera import project_points
from hand_object_pose.inference import per_hand
from hand_object_pose.inference.joint_depth import JOINT_DEPTH_BLEND, JOINT_SURFACE_OFFSETS_M, \
    measured_joint_depths, refine_joint_depths

K = np.array([[300.0, 0.0, 159.5], [0.0, 300.0, 119.5], [0.0, 0.0, 1.0]])
SIZE = (320, 240)


def _hand_and_depth():
    """21 joints on a 7 x 3 grid 1.5 cm apart at 0.5-0.55 m, and a depth image whose pixels around each joint
    measure its skin (the joint's depth less its offset); the rest of the image has no depth."""
    rng = np.random.default_rng(0)
    grid = np.stack(np.meshgrid(np.arange(7), np.arange(3)), axis=-1).reshape(-1, 2) * 0.015
    joints = np.column_stack([grid - grid.mean(axis=0), 0.5 + rng.uniform(0, 0.05, 21)])
    uv = project_points(joints, K)
    depth = np.zeros(SIZE[::-1], np.float32)
    for (u, v), z, offset in zip(np.rint(uv).astype(int), joints[:, 2], JOINT_SURFACE_OFFSETS_M):
        depth[v - 1:v + 2, u - 1:u + 2] = z - offset
    return joints, uv, depth


def test_a_joint_too_far_moves_half_way_to_its_measured_depth_along_its_ray():
    joints, uv, depth = _hand_and_depth()
    predicted = joints * (1.0 + np.linspace(-0.05, 0.05, 21))[:, None]   # up to 2.7 cm off along their rays
    refined, count = refine_joint_depths(predicted, uv, depth)
    assert count == 21
    error_before = predicted[:, 2] - joints[:, 2]
    error_after = refined[:, 2] - joints[:, 2]
    assert np.abs(error_before).max() > 0.02
    np.testing.assert_allclose(error_after, (1.0 - JOINT_DEPTH_BLEND) * error_before, atol=2e-4)
    np.testing.assert_allclose(project_points(refined, K), project_points(predicted, K), atol=1e-9)


def test_hidden_and_unmeasured_joints_keep_their_depth():
    joints, uv, depth = _hand_and_depth()
    u, v = np.rint(uv[3]).astype(int)
    depth[v - 1:v + 2, u - 1:u + 2] = 0.3        # joint 3 behind something 20 cm nearer: beyond the gate
    u, v = np.rint(uv[7]).astype(int)
    depth[v - 1:v + 2, u - 1:u + 2] = 0.0        # joint 7 not measured
    off_image = uv.copy()
    off_image[10] = [-50.0, 20.0]                # joint 10 outside the image
    predicted = joints + [0.0, 0.0, 0.01]
    refined, count = refine_joint_depths(predicted, off_image, depth)
    assert count == 18
    np.testing.assert_array_equal(refined[[3, 7, 10]], predicted[[3, 7, 10]])
    assert np.isnan(measured_joint_depths(depth, off_image)[[7, 10]]).all()
    assert np.all(np.abs(np.delete(refined[:, 2] - joints[:, 2], [3, 7, 10])) < 0.006)


DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "models" / "default" / "hand_heatmap_r18h.onnx"


def test_the_estimator_refines_the_default_networks_hands_with_the_depth_image(monkeypatch):
    """48 generated scenes (seed 2001) through the shipped default network with ground-truth hand boxes and their
    depth images: root-relative MPJPE is lower with the refinement than with it switched off."""
    from hand_object_pose.geometry.camera import box_around_points
    from hand_object_pose.inference.estimator import Estimator, EstimatorConfig
    from hand_object_pose.synthetic.scene import SceneConfig, SceneGenerator

    generator = SceneGenerator(SceneConfig(image_size=(256, 256)))
    scenes = [generator.sample(2001, index) for index in range(48)]
    estimator = Estimator(EstimatorConfig(model="hand_heatmap_r18h", model_path=str(DEFAULT_MODEL), warmup_runs=0,
                                          crop_source="roi", threads=1))

    def mpjpe_mm() -> float:
        errors = []
        for scene in scenes:
            estimator.reset_tracking()
            boxes = {side: box_around_points(hand.joints_2d, enlarge=1.0) for side, hand in scene.hands.items()}
            result = estimator.estimate(scene.rgb, scene.K, depth_m=scene.depth, hand_rois=boxes)
            for hand in result.hands:
                if hand.present and hand.side in scene.hands:
                    truth = scene.hands[hand.side].joints_cam
                    errors.append(np.linalg.norm((hand.joints_xyz - hand.joints_xyz[0]) - (truth - truth[0]),
                                                 axis=1).mean())
        return 1000.0 * float(np.mean(errors))

    refined = mpjpe_mm()
    monkeypatch.setattr(per_hand, "refine_joint_depths", lambda joints, uv, depth: (joints, 0))
    unrefined = mpjpe_mm()
    assert refined < unrefined - 0.3, (refined, unrefined)
