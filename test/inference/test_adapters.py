"""Adapters read real model outputs (small random-weight variants, torch) into crop terms correctly:
joint order, units and the 2.5D depth conventions of each family (models.md §1.3, §2.2)."""
import dataclasses

import numpy as np
import pytest
import torch

from hand_object_pose.geometry.camera import CameraIntrinsics, crop_affine, warp_image
from hand_object_pose.geometry.skeleton import CANONICAL_TO_INTERHAND, FINGERS
from hand_object_pose.inference.adapters import make_adapter
from hand_object_pose.inference.estimator import Estimator, EstimatorConfig
from hand_object_pose.models.registry import get_preset

CAMERA = CameraIntrinsics(600.0, 600.0, 320.0, 240.0)


def run_small(preset, **overrides):
    torch.manual_seed(1)
    family, config = get_preset(preset)
    config = dataclasses.replace(config, **overrides)
    adapter = make_adapter(family, config)
    graph = adapter.inference_module(family.build(config).eval())
    crop = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    with torch.no_grad():
        raw = graph(torch.from_numpy(adapter.preprocess(crop)["image"]))
    outputs = {name: value.numpy() for name, value in zip(adapter.output_names, raw)}
    return adapter, outputs


def test_kpt_2p5d_depth_is_summed_from_parent_relative_bins():
    adapter, outputs = run_small("kpt_ih26m_2p5d", backbone_depth=18, enc_layers=1, selection="maxpool")
    prediction = adapter.parse(outputs)
    assert [h.side for h in prediction.hands] == ["right", "left"]
    bins = outputs["joint_2p5d"][0].astype(np.float64)                 # (42, 3) InterHand2.6M order
    for k, hand in enumerate(prediction.hands):
        canonical = bins[21 * k:21 * (k + 1)][list(np.argsort(CANONICAL_TO_INTERHAND))]  # IH -> canonical
        parent_rel = (canonical[:, 2] / 128 * 2 - 1) * 0.15
        expected = np.zeros(21)
        for chain in FINGERS.values():                                 # base -> tip, wrist at 0
            running = 0.0
            for j in chain:
                running += parent_rel[j]
                expected[j] = running
        np.testing.assert_allclose(hand.rel_depth, expected, atol=1e-12)
        confident = hand.joint_confidence >= 0.5
        np.testing.assert_allclose(hand.uv_crop[~confident], canonical[~confident, :2] * 2, atol=1e-12)
        assert hand.joints_rel is None


def test_kpt_3d_joints_and_object():
    adapter, outputs = run_small("kpt_ho3d_3d", backbone_depth=18, big_decoder=False, enc_layers=1, dec_layers=1,
                                 selection="maxpool")
    prediction = adapter.parse(outputs)
    assert [h.side for h in prediction.hands] == ["right"]           # HO-3D models see one right hand
    (hand,) = prediction.hands
    ih = outputs["joints_3d"][0, 0]                                    # (20, 3) right hand, IH order, no wrist
    np.testing.assert_allclose(hand.joints_rel[0], 0.0)
    np.testing.assert_allclose(hand.joints_rel[4], ih[0], atol=1e-6)  # thumb tip is IH2.6M joint 0
    np.testing.assert_allclose(hand.joints_rel[17], ih[19], atol=1e-6)  # pinky base is IH2.6M joint 19
    s, tx, ty = outputs["cam"][0]
    weak = (s * hand.joints_rel[:, :2] + [tx, ty]) * 2
    unconfident = hand.joint_confidence < 0.5
    np.testing.assert_allclose(hand.uv_crop[unconfident], weak[unconfident], atol=1e-4)
    (obj,) = prediction.objects
    assert obj.relative_to == "right" and 0 <= obj.confidence <= 1
    np.testing.assert_allclose(obj.rotation @ obj.rotation.T, np.eye(3), atol=1e-6)
    np.testing.assert_allclose(obj.translation_from_wrist, outputs["obj_trans"][0], atol=1e-7)


def test_kpt_angles_gives_mano_joints_and_mesh_that_move_with_the_hand():
    from hand_object_pose.geometry.mano import ManoLayer
    from hand_object_pose.inference.crops import full_frame_box, make_crop
    from hand_object_pose.inference.lifting import lift_prediction
    from hand_object_pose.geometry.hand_model_files import standin_hand_path

    adapter, outputs = run_small("kpt_ih26m_angles", backbone_depth=18, big_decoder=False, enc_layers=1,
                                 dec_layers=1, selection="maxpool")
    prediction = adapter.parse(outputs)
    pose = outputs["mano_pose"][0].astype(np.float64)                  # (32, 3): right 0-15, left 16-31
    betas = outputs["mano_shape"][0].astype(np.float64)
    for k, hand in enumerate(prediction.hands):
        layer = ManoLayer(standin_hand_path(hand.side), flat_hand_mean=False)
        p = torch.as_tensor(pose[16 * k:16 * (k + 1)].reshape(1, 48), dtype=torch.float32)
        with torch.no_grad():
            mano = layer(p[:, :3], p[:, 3:], torch.as_tensor(betas[None], dtype=torch.float32))
        wrist = mano.joints[0, 0].numpy()
        np.testing.assert_allclose(hand.joints_rel, mano.joints[0].numpy() - wrist, atol=1e-6)
        np.testing.assert_allclose(hand.vertices_rel, mano.vertices[0].numpy() - wrist, atol=1e-6)
        assert hand.faces.shape == (1538, 3) and hand.mano_pose.shape == (48,) and hand.mano_shape.shape == (10,)
        np.testing.assert_allclose(hand.wrist_rotation @ hand.wrist_rotation.T, np.eye(3), atol=1e-9)

    config = EstimatorConfig(model="kpt_ih26m_angles", model_path="m.onnx", depth_sources=("default",),
                             default_depth_m=0.6).validate()
    crop = make_crop(full_frame_box(640, 480), CAMERA, 256, "full_frame")
    hands, _ = lift_prediction(prediction, crop, CAMERA, None, config, "")
    for hand, placed in zip(prediction.hands, hands):
        assert placed.joints_xyz[0, 2] == pytest.approx(0.6)
        np.testing.assert_allclose(placed.vertices - placed.joints_xyz[0], hand.vertices_rel, atol=1e-12)
        assert placed.faces is hand.faces and placed.wrist_rotation is hand.wrist_rotation


def test_a2j_through_the_estimator_is_2p5d_with_its_depth_cube():
    small = dict(enc_layers=1, dec_layers=1, anchors_per_side=4)
    estimator = Estimator(EstimatorConfig(model="a2j_ih26m", backend="torch", allow_random_weights=True,
                                          model_overrides=small, threads=1, warmup_runs=0, crop_source="fixed",
                                          fixed_roi=(200, 100, 240, 240), presence_threshold=0.0,
                                          depth_sources=("default",), default_depth_m=0.7))
    image = np.random.default_rng(2).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    result = estimator.estimate(image, CAMERA)
    box = result.hands[0].crop_box                                      # (170, 70, 300, 300)
    np.testing.assert_allclose(box, [170, 70, 300, 300])
    raw = estimator.run_network(warp_image(image, crop_affine(box, 256), 256))
    joints = raw["joints"][0]                                           # (42, 3) IH order, 256-cube
    for k, hand in enumerate(result.hands):
        ih = joints[21 * k:21 * (k + 1)]
        depth = (ih[:, 2] / 256 * 2 - 1) * 0.2
        rel = (depth - depth[20])[list(np.argsort(CANONICAL_TO_INTERHAND))]
        assert hand.root_depth_source == "default"
        assert hand.joints_xyz[0, 2] == pytest.approx(0.7)
        np.testing.assert_allclose(hand.joints_xyz[:, 2] - 0.7, rel, atol=1e-6)
        np.testing.assert_allclose(CAMERA.project(hand.joints_xyz), hand.joints_uv, atol=1e-6)


def test_dma_reference_root_inverts_the_models_own_metric_conversion():
    """Run the DMA graph twice on one crop: with the adapter's reference inputs, and with a real root
    and real crop intrinsics. The pipeline's placement of the adapter's 2.5D hand at the real root
    depth must give the model's own camera-frame joints, and the object must follow the root."""
    from hand_object_pose.inference.crops import make_crop
    from hand_object_pose.inference.lifting import joints_at_depth

    torch.manual_seed(3)
    family, config = get_preset("dma_ho3d")
    adapter = make_adapter(family, config)
    graph = adapter.inference_module(family.build(config).eval())
    crop_rgb = np.random.default_rng(4).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    inputs = adapter.preprocess(crop_rgb)
    np.testing.assert_allclose(inputs["image"][0, 0], crop_rgb[..., 2] / 255.0, atol=1e-7)  # BGR: blue first
    with torch.no_grad():
        reference = dict(zip(adapter.output_names, (t.numpy() for t in graph(
            *(torch.from_numpy(inputs[name]) for name in adapter.input_names)))))
    prediction = adapter.parse(reference)
    (hand,), (obj,) = prediction.hands, prediction.objects
    assert hand.side == "right" and hand.rel_depth[0] == 0.0 and hand.joints_rel is None

    crop = make_crop([100.0, 50.0, 300.0, 300.0], CAMERA, 256, "tracking")
    root_depth = 0.63
    K = crop.camera.matrix
    placed = joints_at_depth(hand, hand.uv_crop, hand.joint_confidence, K, root_depth)
    # The model puts the root it is given at root_z + (its wrist's own offset from that root).
    wrist_offset = reference["hand_joints"][0, 0, 2] - 1.0
    real_root = placed[:1] - [[0.0, 0.0, wrist_offset]]
    real_inputs = dict(inputs, root_joint=real_root.astype(np.float32), root_depth=real_root[:, 2].astype(np.float32),
                       focal=np.array([[crop.camera.fx, crop.camera.fy]], np.float32),
                       principal_point=np.array([[crop.camera.cx, crop.camera.cy]], np.float32))
    with torch.no_grad():
        real = dict(zip(adapter.output_names, (t.numpy() for t in graph(
            *(torch.from_numpy(real_inputs[name]) for name in adapter.input_names)))))
    np.testing.assert_allclose(placed, real["hand_joints"][0], atol=2e-5)
    np.testing.assert_allclose(placed[0] + obj.translation_from_wrist, real["object_translation"][0], atol=2e-5)
    np.testing.assert_allclose(obj.rotation, real["object_rotation"][0], atol=1e-6)


def test_occrobnet_runs_through_the_estimator_with_the_kpt_adapter():
    small = dict(backbone_depth=18, enc_layers=1, dec_layers=1, selection="maxpool")
    estimator = Estimator(EstimatorConfig(model="occrobnet_h2o3d", backend="torch", allow_random_weights=True,
                                          model_overrides=small, threads=1, warmup_runs=0, crop_source="fixed",
                                          fixed_roi=(200, 100, 240, 240), presence_threshold=0.0,
                                          depth_sources=("default",), default_depth_m=0.6))
    result = estimator.estimate(np.random.default_rng(3).integers(0, 256, (480, 640, 3), dtype=np.uint8), CAMERA)
    assert [h.side for h in result.hands] == ["right", "left"]
    for hand in result.hands:
        assert hand.joints_xyz.shape == (21, 3) and hand.joints_xyz[0, 2] == pytest.approx(0.6)
        assert np.isfinite(hand.joints_xyz).all() and np.isfinite(hand.joints_uv).all()
        assert hand.root_depth_source == "default"
