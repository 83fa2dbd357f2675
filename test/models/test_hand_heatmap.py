"""hand_heatmap: readout, targets, symmetry canonicalisation, loss, ONNX export, adapter and the Estimator's
per-hand path (issue 17)."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from hand_object_pose.export.check import check_export
from hand_object_pose.export.preset_export import ExportRequest, export_preset
from hand_object_pose.inference.adapters import make_adapter
from hand_object_pose.geometry.camera import CameraIntrinsics, apply_affine, crop_affine
from hand_object_pose.inference.adapters.hand_heatmap import object_model_points
from hand_object_pose.inference.result import HandEstimate
from hand_object_pose.inference.object_heatmap_pose import heatmap_pose
from hand_object_pose.models.hand_heatmap import PRESETS, HandHeatmapNet, soft_argmax
from hand_object_pose.models.hand_heatmap.config import NUM_POINTS
from hand_object_pose.models.registry import get_family, get_preset
from hand_object_pose.training.tasks.hand_heatmap import HAND, OBJECT, canonical_rotation, collate_examples, \
    heatmap_loss, heatmap_targets, make_example, mirror_affine, segmentation_targets

PRESET = "hand_heatmap_r18h"
CONFIG = PRESETS[PRESET]


def _rot(axis, angle):
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * k @ k


def test_preset_is_registered_with_half_width_resnet18():
    family, config = get_preset(PRESET)
    assert family is get_family("hand_heatmap") and family.per_hand_crops
    model = family.build(config)
    assert model.backbone.conv1.out_channels == 32 and model.backbone.out_channels == 256
    assert 3.8e6 < sum(p.numel() for p in model.parameters()) < 4.0e6
    logits, depth, presence, object_class, segmentation = model(torch.rand(2, 3, 128, 128))
    assert logits.shape == depth.shape == (2, NUM_POINTS, 32, 32)
    assert presence.shape == (2, 3) and object_class.shape == (2, len(config.object_ids))
    assert segmentation is None and not hasattr(model.segmentation, "weight")   # the object network's head only


def test_soft_argmax_of_a_peak_is_its_cell_centre_in_crop_pixels():
    logits = torch.full((1, 1, 32, 32), -50.0)
    logits[0, 0, 7, 20] = 50.0                      # row 7 (v), column 20 (u)
    depth = torch.zeros(1, 1, 32, 32)
    depth[0, 0, 7, 20] = 0.03
    uv, rel, conf = soft_argmax(logits, depth, 128)
    assert uv[0, 0].tolist() == pytest.approx([20 * 4 + 1.5, 7 * 4 + 1.5])
    assert float(rel[0, 0]) == pytest.approx(0.03) and float(conf[0, 0]) == pytest.approx(1.0)


def test_heatmap_target_is_a_normalised_gaussian_whose_readout_is_the_point():
    uv = torch.tensor([[[50.3, 77.9], [-40.0, 10.0]]])
    target, inside, cell = heatmap_targets(uv, 128, 32)
    assert inside.tolist() == [[True, False]]
    assert float(target[0, 0].sum()) == pytest.approx(1.0)
    back, _, _ = soft_argmax(torch.log(target[:, :1].reshape(1, 1, 32, 32)), torch.zeros(1, 1, 32, 32), 128)
    assert back[0, 0].tolist() == pytest.approx([50.3, 77.9], abs=0.05)
    assert int(cell[0, 0]) == round((77.9 + 0.5) / 4 - 0.5) * 32 + round((50.3 + 0.5) / 4 - 0.5)


def test_mirroring_a_crop_twice_is_the_identity_and_maps_u_to_s_minus_1_minus_u():
    m = mirror_affine(128)
    assert (np.array([10.0, 5.0]) @ m[:, :2].T + m[:, 2]).tolist() == [117.0, 5.0]
    twice = m[:, :2] @ m[:, :2]
    assert np.allclose(twice, np.eye(2)) and np.allclose(m[:, :2] @ m[:, 2] + m[:, 2], 0)


@pytest.mark.parametrize("symmetry,angle", [({"kind": "continuous", "axis": [0, 0, 1]}, 1.234),
                                            ({"kind": "discrete", "axis": [0, 0, 1], "order": 2}, math.pi)])
def test_symmetric_poses_get_one_canonical_rotation(symmetry, angle):
    r = _rot([0.3, -0.5, 0.8], 0.9)
    same = r @ _rot([0, 0, 1], angle)             # the object turned about its symmetry axis looks the same
    a, b = canonical_rotation(r, symmetry), canonical_rotation(same, symmetry)
    assert np.allclose(a, b, atol=1e-9)
    assert np.allclose(a[:, 2], r[:, 2])           # the symmetry axis itself is kept
    assert np.allclose(canonical_rotation(r, {"kind": "none"}), r)


@pytest.mark.parametrize("symmetry,turns", [
    ({"kind": "discrete", "axis": [0, 0, 1], "order": 2, "flip_axis": [1, 0, 0]},        # a box
     [([0, 0, 1], math.pi), ([1, 0, 0], math.pi), ([0, 1, 0], math.pi)]),
    ({"kind": "continuous", "axis": [0, 0, 1], "flip_axis": [1, 0, 0]},                  # a closed cylinder
     [([0, 0, 1], 0.7), ([1, 0, 0], math.pi), ([0, 1, 0], math.pi)])])
def test_upside_down_poses_of_flip_symmetric_objects_get_one_label(symmetry, turns):
    r = _rot([0.3, -0.5, 0.8], 0.9)
    label = canonical_rotation(r, symmetry)
    for axis, angle in turns:
        assert np.allclose(canonical_rotation(r @ _rot(axis, angle), symmetry), label, atol=1e-9), (axis, angle)
    # Without the flip in the record, the upside-down pose keeps its own (other) label.
    no_flip = {k: v for k, v in symmetry.items() if k != "flip_axis"}
    assert not np.allclose(canonical_rotation(r @ _rot([1, 0, 0], math.pi), no_flip), canonical_rotation(r, no_flip))


def test_a_ball_is_labelled_in_the_camera_axes():
    assert np.allclose(canonical_rotation(_rot([0.3, -0.5, 0.8], 0.9), {"kind": "spherical"}), np.eye(3))


def _object_heatmaps(camera, rotation, translation, object_id, affine, second_mode=None):
    """(9, 32, 32) log heat-maps of a 128 px crop peaked (sigma 1 cell) on the posed box's projected points;
    `second_mode` (corner, crop px) adds an equal second peak to that corner's map."""
    points = object_model_points(object_id) @ rotation.T + translation
    cells = (apply_affine(camera.project(points), affine) + 0.5) / 4.0 - 0.5
    grid = np.stack(np.meshgrid(np.arange(32.0), np.arange(32.0), indexing="xy"), axis=-1)   # (32, 32, 2) x, y
    maps = np.exp(-((grid[None] - cells[:, None, None]) ** 2).sum(-1) / 2.0)
    if second_mode is not None:
        corner, uv = second_mode
        maps[corner] += np.exp(-((grid - ((np.asarray(uv) + 0.5) / 4.0 - 0.5)) ** 2).sum(-1) / 2.0)
    maps = maps / maps.sum(axis=(1, 2), keepdims=True) + 1e-6
    return np.log(maps / maps.sum(axis=(1, 2), keepdims=True)), apply_affine(camera.project(points), affine)


def test_the_heatmap_search_recovers_a_box_pose_with_and_without_a_depth_image():
    camera = CameraIntrinsics(fx=350.0, fy=350.0, cx=128.0, cy=128.0)
    rotation, translation = _rot([0.2, 1.0, 0.1], 0.7), np.array([0.03, -0.02, 0.45])
    image_points = camera.project(object_model_points("synthetic_box") @ rotation.T + translation)
    affine = crop_affine(np.array([*image_points.min(0) - 15, *(np.ptp(image_points, 0).max() + 30,) * 2]), 128)
    maps, _ = _object_heatmaps(camera, rotation, translation, "synthetic_box", affine)
    blind = heatmap_pose(maps, affine, camera, object_model_points("synthetic_box"), image_points[-1], None, 128)
    angle = math.degrees(math.acos(np.clip((np.trace(blind.rotation.T @ rotation) - 1) / 2, -1, 1)))
    assert angle < 4.0 and abs(blind.translation[2] - 0.45) < 0.02, (angle, blind.translation)
    assert blind.support.min() > 0.5
    # The depth image sees the face nearest the camera: the centre lies the posed box's half depth behind it.
    half_depth = np.max((object_model_points("synthetic_box")[:8] @ rotation.T)[:, 2])
    measured = heatmap_pose(maps, affine, camera, object_model_points("synthetic_box"), image_points[-1],
                            0.45 - half_depth, 128)
    np.testing.assert_allclose(measured.translation, translation, atol=2e-3)


def test_the_heatmap_search_keeps_the_modes_of_a_two_peaked_corner_apart():
    """A corner heat-map with a second, equal peak (where another corner lies): soft-argmax would land between
    the two; the search keeps the pose that the other seven corners agree with."""
    camera = CameraIntrinsics(fx=350.0, fy=350.0, cx=128.0, cy=128.0)
    rotation, translation = _rot([1.0, 0.3, 0.0], 0.5), np.array([0.0, 0.02, 0.5])
    image_points = camera.project(object_model_points("synthetic_bottle") @ rotation.T + translation)
    affine = crop_affine(np.array([*image_points.min(0) - 10, *(np.ptp(image_points, 0).max() + 20,) * 2]), 128)
    _, crop_points = _object_heatmaps(camera, rotation, translation, "synthetic_bottle", affine)
    maps, _ = _object_heatmaps(camera, rotation, translation, "synthetic_bottle", affine,
                               second_mode=(0, crop_points[7]))
    pose = heatmap_pose(maps, affine, camera, object_model_points("synthetic_bottle"), image_points[-1], None, 128)
    angle = math.degrees(math.acos(np.clip((np.trace(pose.rotation.T @ rotation) - 1) / 2, -1, 1)))
    assert angle < 6.0, angle   # PnP on the maps' soft-argmax points: 10.8 degrees
    assert 0.25 < pose.support[0] < 0.45 < pose.support[1:].mean()   # half of corner 0's mass is at the other peak


def _hand_example(rng=None, mirrored=False):
    K = np.array([[350.0, 0, 128], [0, 350.0, 128], [0, 0, 1]])
    g = np.random.default_rng(3)
    joints = np.array([0.0, 0.0, 0.5]) + g.normal(scale=0.04, size=(21, 3))
    image = g.integers(0, 255, size=(256, 256, 3), dtype=np.uint8)
    return make_example(image, K, HAND, joints, mirrored, 128, rng)


def test_hand_example_targets_are_the_projected_joints_in_the_crop():
    e = _hand_example()
    uv = e.points_cam @ e.K.T
    uv = uv[:, :2] / uv[:, 2:]
    assert np.allclose(uv @ e.affine[:, :2].T + e.affine[:, 2], e.uv, atol=1e-4)
    assert e.rel_depth[0] == 0 and np.allclose(e.rel_depth, e.points_cam[:, 2] - e.points_cam[0, 2], atol=1e-6)
    assert e.uv.min() >= 0 and e.uv.max() <= 127                   # the x1.25 box holds the hand
    m = _hand_example(mirrored=True)
    assert np.allclose(m.uv[:, 0], 127 - e.uv[:, 0], atol=1e-4) and np.allclose(m.uv[:, 1], e.uv[:, 1])


def test_loss_is_finite_and_gives_every_trained_part_a_gradient():
    torch.manual_seed(0)
    model = HandHeatmapNet(CONFIG)
    batch = collate_examples([_hand_example(np.random.default_rng(i)) for i in range(2)])
    losses = heatmap_loss(*model(batch["image"]), batch, 128)
    assert torch.isfinite(losses["total"]) and set(losses) >= {"heatmap", "depth", "total"}
    losses["total"].backward()
    assert model.head.weight.grad.abs().sum() > 0 and model.backbone.conv1.weight.grad.abs().sum() > 0


def _object_example_with_mask():
    """An object crop (a 'box' of 9 points around a blob) of a frame whose object mask is a disc."""
    K = np.array([[350.0, 0, 128], [0, 350.0, 128], [0, 0, 1]])
    image = np.random.default_rng(4).integers(0, 255, size=(256, 256, 3), dtype=np.uint8)
    points = np.array([0.0, 0.0, 0.5]) + np.array([[x, y, z] for x in (-0.04, 0.04) for y in (-0.04, 0.04)
                                                    for z in (-0.04, 0.04)] + [[0.0, 0.0, 0.0]])
    mask = np.zeros((256, 256), np.uint8)
    v, u = np.mgrid[:256, :256]
    mask[(u - 128) ** 2 + (v - 128) ** 2 < 20 ** 2] = 255
    return make_example(image, K, OBJECT, points, False, 128, object_class=2, object_mask=mask)


def test_the_segmentation_target_is_each_cells_share_of_object_pixels_on_its_class():
    example = _object_example_with_mask()
    assert example.object_mask.shape == (128, 128)
    assert 0.0 <= example.object_mask.min() <= example.object_mask.max() <= 1.0
    batch = collate_examples([example, _hand_example()])
    assert batch["object_mask_valid"].tolist() == [True, False]
    target = segmentation_targets(batch["object_mask"][:1], batch["object_class"][:1], 5, 32)
    assert target.shape == (1, 6, 32, 32) and torch.allclose(target.sum(1), torch.ones(1, 32, 32))
    share = target[0, 3]                                    # class 2 -> channel 3
    assert share[16, 16] == 1.0 and share[0, 0] == 0.0 and target[0, [1, 2, 4, 5]].abs().sum() == 0
    # The disc (radius 20 image px) covers pi r^2 cells of 4 crop px at the crop's scale.
    radius_cells = 20.0 * example.affine[0, 0] / 4.0
    assert float(share.sum()) == pytest.approx(math.pi * radius_cells ** 2, rel=0.05)


def test_a_segmentation_head_trains_on_masked_object_crops_only():
    """The object network's head: (N, 1 + C, H, H) logits, a loss term on object crops with a mask (none on a
    hand crop), gradients to the head and the body; a network without the head has no such term."""
    torch.manual_seed(0)
    config = dataclasses.replace(CONFIG, object_segmentation=True)
    model = HandHeatmapNet(config)
    batch = collate_examples([_object_example_with_mask(), _hand_example()])
    outputs = model(batch["image"])
    assert outputs[4].shape == (2, 6, 32, 32)
    losses = heatmap_loss(*outputs, batch, 128)
    assert 1.0 < float(losses["segmentation"]) < 2.5          # about log(6) for an untrained head
    losses["total"].backward()
    assert model.segmentation.weight.grad.abs().sum() > 0 and model.backbone.conv1.weight.grad.abs().sum() > 0
    hand_only = heatmap_loss(*model(batch["image"][1:]), collate_examples([_hand_example()]), 128)
    assert "segmentation" not in hand_only
    assert "segmentation" not in heatmap_loss(*HandHeatmapNet(CONFIG)(batch["image"]), batch, 128)


def test_an_object_network_grows_its_segmentation_head_from_weights_without_one(tmp_path):
    """initial_weights without the head: every other tensor loads (strictly), the head starts untrained; weights
    missing another tensor are still refused."""
    from hand_object_pose.models.weights_file import WeightsFileError
    from hand_object_pose.training.tasks.hand_heatmap import HandHeatmapTask

    torch.manual_seed(1)
    plain = HandHeatmapNet(CONFIG)
    path = tmp_path / "plain.pt"
    torch.save(plain.state_dict(), path)
    family = get_family("hand_heatmap")
    config = dataclasses.replace(CONFIG, object_segmentation=True)
    grown = HandHeatmapTask(family, config, initial_weights=str(path)).build_model()
    assert torch.equal(grown.head.weight, plain.head.weight) and grown.segmentation is not None
    broken = {k: v for k, v in plain.state_dict().items() if k != "head.bias"}
    torch.save(broken, tmp_path / "broken.pt")
    with pytest.raises(WeightsFileError, match="head.bias"):
        HandHeatmapTask(family, config, initial_weights=str(tmp_path / "broken.pt")).build_model()


def test_an_object_network_with_segmentation_exports_one_output_more(tmp_path):
    """The graph of a network with the head ends with object_segmentation (per-cell probabilities); the export
    accepts the override (an output added after the preset's) and matches torch."""
    path = tmp_path / "object.onnx"
    export_preset(ExportRequest(PRESET, path, weight_storage="compact", overrides={"object_segmentation": True}))
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    assert names[:-1] == list(get_family("hand_heatmap").output_names(CONFIG)) and names[-1] == "object_segmentation"
    image = np.random.rand(2, 3, 128, 128).astype(np.float32)
    probabilities = session.run(["object_segmentation"], {"image": image})[0]
    assert probabilities.shape == (2, 6, 32, 32) and np.allclose(probabilities.sum(1), 1.0, atol=1e-5)


@pytest.fixture(scope="module")
def random_export(tmp_path_factory):
    path = tmp_path_factory.mktemp("hand_heatmap") / "hand_heatmap_r18h.onnx"
    export_preset(ExportRequest(PRESET, path, weight_storage="compact"))
    return path


def test_onnx_export_matches_torch(random_export):
    family = get_family("hand_heatmap")
    torch.manual_seed(0)  # export_preset's random weights
    model = family.build(CONFIG)
    result = check_export(family, model, random_export, threads=1)
    assert result.ok, result


def test_the_exported_readout_has_constant_shapes_and_one_matmul(random_export):
    """The read-out runs in float even in an int8 file: its reshapes take constant shapes (no Shape / Gather /
    Concat chains on the batch size) and u, v are one MatMul against the cell-centre grid."""
    import onnx

    ops = [node.op_type for node in onnx.load(str(random_export)).graph.node]
    assert not {"Shape", "Range", "Unsqueeze"} & set(ops)
    assert ops.count("MatMul") == 1 and ops.count("ReduceSum") == 1


def test_soft_argmax_reads_a_spread_map_as_its_weighted_mean():
    logits = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(5))
    depth = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(6))
    uv, rel, _ = soft_argmax(logits, depth, 32)
    prob = torch.softmax(logits.reshape(2, 3, 64), dim=-1).reshape(2, 3, 8, 8)
    centres = (torch.arange(8.0) + 0.5) * 4 - 0.5
    torch.testing.assert_close(uv[..., 0], (prob.sum(dim=2) * centres).sum(dim=-1))
    torch.testing.assert_close(uv[..., 1], (prob.sum(dim=3) * centres).sum(dim=-1))
    torch.testing.assert_close(rel, (prob * depth).sum(dim=(2, 3)))
    with pytest.raises(ValueError, match="square"):
        soft_argmax(torch.zeros(1, 1, 8, 4), torch.zeros(1, 1, 8, 4), 32)


def test_adapter_unmirrors_a_left_hand_and_reads_each_crop_kind():
    family, config = get_preset(PRESET)
    adapter = make_adapter(family, config)
    uv = np.zeros((1, NUM_POINTS, 2), np.float32)
    uv[0, :21, 0] = np.arange(21)
    outputs = {"points_uv": uv, "points_rel_depth": np.zeros((1, NUM_POINTS), np.float32),
               "points_confidence": np.ones((1, NUM_POINTS), np.float32),
               "presence": np.array([[0.9, 0.2, 0.7]], np.float32),
               "object_class": np.eye(len(config.object_ids), dtype=np.float32)[[3]]}
    right, left = adapter.parse_hand(outputs, "right"), adapter.parse_hand(outputs, "left")
    assert right.uv_crop[:, 0].tolist() == list(range(21))
    assert left.uv_crop[:, 0].tolist() == [127.0 - u for u in range(21)]
    image = np.arange(128 * 128 * 3, dtype=np.uint8).reshape(128, 128, 3)
    assert np.array_equal(adapter.preprocess_hand(image, "left")["image"][0, :, :, 0],
                          adapter.preprocess_hand(image, "right")["image"][0, :, :, -1])
    coarse = adapter.parse(outputs)
    assert [(h.side, round(h.presence, 2)) for h in coarse.hands] == [("right", 0.9), ("left", 0.2)]
    obj = adapter.parse_object(outputs, whole_frame=True)
    assert obj.object_id == config.object_ids[3] and obj.presence == pytest.approx(0.7)


def test_estimator_runs_one_crop_per_hand_on_the_export(random_export):
    from hand_object_pose.inference.estimator import Estimator, EstimatorConfig

    estimator = Estimator(EstimatorConfig(model=PRESET, model_path=str(random_export), warmup_runs=0, threads=1))
    assert estimator.per_hand_crops
    image = np.random.default_rng(0).integers(0, 255, size=(240, 320, 3), dtype=np.uint8)
    K = np.array([[300.0, 0, 160], [0, 300.0, 120], [0, 0, 1]])
    boxes = {"right": np.array([40.0, 60, 70, 80]), "left": np.array([200.0, 50, 60, 60])}
    result = estimator.estimate(image, K, hand_rois=boxes)
    assert [h.side for h in result.hands] == ["right", "left"]
    for hand in result.hands:                      # each hand's keypoints come from its own crop
        box = hand.crop_box
        assert np.all(hand.joints_uv >= box[:2] - 1) and np.all(hand.joints_uv <= box[:2] + box[2:] + 1)
        assert hand.joints_xyz.shape == (21, 3) and np.all(hand.joints_xyz[:, 2] > 0)
    estimator.reset_tracking()
    coarse = estimator.estimate(image, K)          # no boxes: the coarse whole-frame pass decides
    assert coarse.crop_source == "full_frame" and "coarse_pass" in coarse.timings_ms


def _counting_estimator(path, batch: bool, **config):
    """An Estimator on the export whose per-hand network calls are recorded (the batch size of each call)."""
    from hand_object_pose.inference.estimator import Estimator, EstimatorConfig

    estimator = Estimator(EstimatorConfig(model=PRESET, model_path=str(path), warmup_runs=0, threads=1, **config))
    per_hand, sizes = estimator._per_hand, []
    per_hand.batch, run = batch, per_hand.run

    def counted(inputs):
        sizes.append(len(inputs["image"]))
        return run(inputs)

    per_hand.run = counted
    return estimator, sizes


def _assert_same_hands(got, expected):
    assert [(h.side, h.present) for h in got.hands] == [(h.side, h.present) for h in expected.hands]
    for a, b in zip(got.hands, expected.hands):
        np.testing.assert_allclose(a.crop_box, b.crop_box, atol=1e-6)
        np.testing.assert_allclose(a.joints_uv, b.joints_uv, atol=1e-3)        # pixels
        np.testing.assert_allclose(a.joints_xyz, b.joints_xyz, atol=1e-5)      # metres
    assert len(got.objects) == len(expected.objects)


def test_hand_crops_and_the_object_crop_are_one_network_call(random_export, monkeypatch):
    """Given hand boxes (the detector's) and no object tracked: the object's search, the coarse pass on the whole
    frame (its object points; every presence counts as found here), then both hands' crops and the object's crop
    in ONE batched call; a tracked object box needs no search; the results are those of one call per crop (issue
    16: at camera rate each call's fixed cost counts)."""
    from hand_object_pose.inference import per_hand as per_hand_module

    monkeypatch.setattr(per_hand_module, "MIN_OBJECT_PRESENCE", 0.0)
    image = np.random.default_rng(0).integers(0, 255, size=(240, 320, 3), dtype=np.uint8)
    K = np.array([[300.0, 0, 160], [0, 300.0, 120], [0, 0, 1]])
    boxes = {"right": (np.array([40.0, 60, 70, 80]), 1.0), "left": (np.array([200.0, 50, 60, 60]), 1.0)}
    batched, batch_sizes = _counting_estimator(random_export, batch=True)
    single, single_sizes = _counting_estimator(random_export, batch=False)
    _assert_same_hands(batched.estimate(image, K, hand_rois=boxes), single.estimate(image, K, hand_rois=boxes))
    assert batch_sizes == [1, 3] and single_sizes == [1, 1, 1, 1]
    batched.reset_tracking()
    # A tracked object box: one call for everything.
    batched._per_hand._object_box = np.array([100.0, 60, 90, 90])
    batch_sizes.clear()
    batched.estimate(image, K, hand_rois=boxes)
    assert batch_sizes == [3]
    # No hands and no tracked object: the network is not run.
    batched.reset_tracking()
    batch_sizes.clear()
    assert batched.estimate(image, K, hand_rois={}).hands == [] and batch_sizes == []


def test_coarse_pass_hands_are_refined_together(random_export):
    """Without hand boxes: the coarse pass, then both hands' crops run as a right and as a left hand (the side
    check) in one call, then the hands' (and the object's) crops in one call, then both hands' refinement crops in
    one call: four calls instead of one per crop, with the same results. The random network puts both hands on one
    place, so one is dropped and the frame looked at again with the other painted over: a fifth call, the coarse
    pass alone (no hand there reaches SECOND_LOOK_PRESENCE, so no crops follow)."""
    image = np.random.default_rng(1).integers(0, 255, size=(240, 320, 3), dtype=np.uint8)
    K = np.array([[300.0, 0, 160], [0, 300.0, 120], [0, 0, 1]])
    batched, batch_sizes = _counting_estimator(random_export, batch=True, presence_threshold=0.0)
    single, single_sizes = _counting_estimator(random_export, batch=False, presence_threshold=0.0)
    _assert_same_hands(batched.estimate(image, K), single.estimate(image, K))
    assert batch_sizes[:2] == [1, 4] and batch_sizes[2] in (2, 3) and batch_sizes[3:] == [2, 1]
    assert sum(batch_sizes) == len(single_sizes) == sum(single_sizes)


def test_object_search_comes_every_few_frames_while_none_is_tracked(random_export, monkeypatch):
    """Hand boxes given and no object found (random weights): the object's search (the coarse pass on the whole
    frame, then the object's crop beside the hands') comes on every OBJECT_SEARCH_INTERVAL-th frame; the frames
    between run the hands' crops only; reset searches at once."""
    from hand_object_pose.inference import per_hand as per_hand_module
    from hand_object_pose.inference.per_hand import OBJECT_SEARCH_INTERVAL

    monkeypatch.setattr(per_hand_module, "MIN_OBJECT_PRESENCE", 0.0)   # the coarse pass always sees one
    image = np.random.default_rng(2).integers(0, 255, size=(240, 320, 3), dtype=np.uint8)
    K = np.array([[300.0, 0, 160], [0, 300.0, 120], [0, 0, 1]])
    boxes = {"right": (np.array([40.0, 60, 70, 80]), 1.0), "left": (np.array([200.0, 50, 60, 60]), 1.0)}
    estimator, sizes = _counting_estimator(random_export, batch=True)
    per_frame = []
    for _ in range(OBJECT_SEARCH_INTERVAL + 2):
        sizes.clear()
        assert estimator.estimate(image, K, hand_rois=boxes).objects == []
        per_frame.append(list(sizes))
    searching, hands_only = [1, 3], [2]
    assert per_frame == [searching] + [hands_only] * (OBJECT_SEARCH_INTERVAL - 1) + [searching, hands_only]
    estimator.reset_tracking()
    sizes.clear()
    estimator.estimate(image, K, hand_rois=boxes)
    assert sizes == searching
    # A tracked object that is lost (its crop finds nothing here) is searched for on the very next frame.
    estimator.reset_tracking()
    estimator._per_hand._object_box = np.array([100.0, 60, 90, 90])
    per_frame = []
    for _ in range(2):
        sizes.clear()
        estimator.estimate(image, K, hand_rois=boxes)
        per_frame.append(list(sizes))
    assert per_frame == [[3], searching]


def test_the_object_surface_depth_comes_from_the_depth_image_around_its_centre(random_export):
    """The depth image's depth around the object's centre point (the face the camera sees); None without a depth
    image, with no valid pixel there, or with `depth_image` left out of depth_sources."""
    from hand_object_pose.inference.estimator import Estimator, EstimatorConfig

    per_hand = Estimator(EstimatorConfig(model=PRESET, model_path=str(random_export), warmup_runs=0,
                                         threads=1))._per_hand
    uv = np.concatenate([np.zeros((8, 2)), [[190.0, 105.0]]])
    depth = np.zeros((240, 320), np.float32)
    depth[100:110, 185:195] = 0.5
    assert per_hand._object_surface_depth(depth, uv) == pytest.approx(0.5)
    assert per_hand._object_surface_depth(np.zeros_like(depth), uv) is None
    assert per_hand._object_surface_depth(None, uv) is None
    no_image = Estimator(EstimatorConfig(model=PRESET, model_path=str(random_export), warmup_runs=0, threads=1,
                                         depth_sources=("fit_2d",)))._per_hand
    assert no_image._object_surface_depth(depth, uv) is None



@pytest.fixture(scope="module")
def export_with_object_network(random_export, tmp_path_factory):
    """The random export, its record naming an object network: an export of other random weights beside it."""
    import json
    import shutil

    folder = tmp_path_factory.mktemp("with_object_network")
    torch.manual_seed(1)
    weights = folder / "object.pt"
    network = get_family("hand_heatmap").build(CONFIG)
    with torch.no_grad():
        network.head.weight.normal_(0.0, 50.0)   # peaked heat-maps: its outputs differ from the model's by far
    torch.save(network.state_dict(), weights)
    export_preset(ExportRequest(PRESET, folder / "object.onnx", weights=str(weights), weight_storage="compact"))
    model = folder / "model.onnx"
    shutil.copy(random_export, model)
    record = json.loads(random_export.with_name(random_export.name + ".json").read_text())
    record["object_model_file"] = "object.onnx"
    (folder / "model.onnx.json").write_text(json.dumps(record))
    return model


def test_an_object_network_named_in_the_record_runs_the_object_crops(export_with_object_network, monkeypatch):
    """With an object network (the shipped default's): the hands' crops go to the model and the object's crops to
    the object network, one call each; the hands are those without it, the object crop's outputs the object
    network's own; `object_model_path` 'none' keeps the model's own object outputs."""
    from hand_object_pose.inference import per_hand as per_hand_module
    from hand_object_pose.inference.estimator import _Stopwatch

    monkeypatch.setattr(per_hand_module, "MIN_OBJECT_PRESENCE", 0.0)   # the search's coarse pass sees an object
    image = np.random.default_rng(0).integers(0, 255, size=(240, 320, 3), dtype=np.uint8)
    K = np.array([[300.0, 0, 160], [0, 300.0, 120], [0, 0, 1]])
    boxes = {"right": (np.array([40.0, 60, 70, 80]), 1.0), "left": (np.array([200.0, 50, 60, 60]), 1.0)}
    with_object, model_sizes = _counting_estimator(export_with_object_network, batch=True)
    assert with_object.object_model_in_use == str(export_with_object_network.with_name("object.onnx"))
    per_hand, object_sizes, object_outputs = with_object._per_hand, [], []

    def counted(inputs):
        object_sizes.append(len(inputs["image"]))
        object_outputs.append(run_object(inputs))
        return object_outputs[-1]

    run_object, per_hand.object_run = per_hand.object_run, counted
    without, without_sizes = _counting_estimator(export_with_object_network, batch=True, object_model_path="none")
    assert without.object_model_in_use == "" and without._per_hand.object_run is None
    _assert_same_hands(with_object.estimate(image, K, hand_rois=boxes), without.estimate(image, K, hand_rois=boxes))
    assert model_sizes == [1, 2] and object_sizes == [1] and without_sizes == [1, 3]
    # The object crop's outputs are the object network's, not the model's.
    watch = _Stopwatch({})
    _, inputs = per_hand._prepare(image, CameraIntrinsics(fx=300.0, fy=300.0, cx=160.0, cy=120.0),
                                  np.array([100.0, 60, 90, 90]), "tracking", watch)
    mine, = per_hand._run_jobs([inputs], [True], watch)
    model_own = per_hand.run(inputs)
    np.testing.assert_allclose(mine["points_uv"], run_object(inputs)["points_uv"], atol=1e-3)
    assert np.abs(mine["points_uv"] - model_own["points_uv"]).max() > 1.0   # pixels


def test_object_network_errors_name_the_file_and_what_is_expected(export_with_object_network, tmp_path):
    import json
    import shutil

    from hand_object_pose.inference.estimator import Estimator, EstimatorConfig

    with pytest.raises(ValueError, match="object_model_path.*'none', or a .onnx file"):
        EstimatorConfig(model=PRESET, model_path=str(export_with_object_network), object_model_path="w.pt").validate()
    with pytest.raises(ValueError, match="object and coarse networks are for a family that sees one hand per crop"):
        Estimator(EstimatorConfig(model="kpt_ih26m_2p5d", model_path=str(tmp_path / "kpt.onnx"),
                                  object_model_path=str(export_with_object_network), warmup_runs=0))
    model = tmp_path / "model.onnx"
    shutil.copy(export_with_object_network, model)
    (tmp_path / "model.onnx.json").write_text(json.dumps({"object_model_file": "gone.onnx"}))
    with pytest.raises(FileNotFoundError, match="gone.onnx"):
        Estimator(EstimatorConfig(model=PRESET, model_path=str(model), warmup_runs=0, threads=1))


def test_an_object_box_is_at_least_the_size_of_an_object_at_its_depth(random_export):
    """Points bunched up (an unsure network) still give an object crop of crop_margin x OBJECT_EXTENT_M at the
    object's depth: the depth image's around its centre point, else its hands' wrists' median; none without."""
    from hand_object_pose.inference.estimator import Estimator, EstimatorConfig
    from hand_object_pose.inference.per_hand import OBJECT_EXTENT_M

    per_hand = Estimator(EstimatorConfig(model=PRESET, model_path=str(random_export), warmup_runs=0,
                                         threads=1))._per_hand
    camera = CameraIntrinsics(fx=300.0, fy=300.0, cx=160.0, cy=120.0)
    uv = np.array([[150.0, 100.0]] * 8 + [[151.0, 101.0]])          # all points on one spot
    hands = [HandEstimate(side=s, present=True, confidence=1.0, joints_xyz=np.full((21, 3), z), joints_uv=uv[:1],
                          joint_confidence=np.ones(1))
             for s, z in (("right", 0.4), ("left", 0.6))]
    depth = np.zeros((240, 320), np.float32)
    depth[95:107, 145:157] = 0.3
    for depth_image, expected_z in ((depth, 0.3), (None, 0.5), (np.zeros_like(depth), 0.5)):
        z = per_hand._object_depth_hint(depth_image, uv, hands)
        assert z == pytest.approx(expected_z)
        box = per_hand._object_box_around(uv, camera, z)
        assert box[2] == box[3] == pytest.approx(1.25 * OBJECT_EXTENT_M * 300.0 / expected_z)
        assert box[:2] + box[2:] / 2 == pytest.approx([150.5, 100.5])
    assert per_hand._object_depth_hint(None, uv, []) is None
    assert per_hand._object_box_around(uv, camera, None)[2] == pytest.approx(48.0)      # min_crop_size_px


def test_a_hand_mirrored_the_wrong_way_round_trains_only_the_side():
    """side_target 0 (handedness, training option side_crops): the crop is the same box mirrored the other way, no
    joint is a target, and only the right / left presence logits get a gradient from it (towards 'left')."""
    right = _hand_example()
    image = np.random.default_rng(3).integers(0, 255, size=(256, 256, 3), dtype=np.uint8)
    wrong = make_example(image, right.K, HAND, right.points_cam, True, 128, side_target=0.0)
    same_way = make_example(image, right.K, HAND, right.points_cam, False, 128, side_target=1.0)
    assert not wrong.valid.any() and same_way.valid.all() and wrong.side_target == 0.0
    mirror_error = np.abs(wrong.image.astype(int) - same_way.image[:, ::-1].astype(int))
    assert mirror_error.max() <= 1 and mirror_error.mean() < 0.01      # one grey level where warping rounds
    torch.manual_seed(0)
    model = HandHeatmapNet(CONFIG)
    batch = collate_examples([wrong])
    logits, depth, presence, object_class, segmentation = model(batch["image"])
    losses = heatmap_loss(logits, depth, presence, object_class, segmentation, batch, 128, side_weight=2.0)
    assert float(losses["heatmap"]) == 0.0 and float(losses["depth"]) == 0.0
    expected = torch.nn.functional.binary_cross_entropy_with_logits(presence[:, :2], torch.tensor([[0.0, 1.0]]))
    assert torch.isclose(losses["side"], expected) and torch.isclose(losses["total"], 2.0 * expected)
    losses["total"].backward()
    assert model.head.weight.grad.abs().sum() == 0 and model.presence.weight.grad[:2].abs().sum() > 0
    assert model.presence.weight.grad[2].abs().sum() == 0
    untrained = heatmap_loss(*HandHeatmapNet(CONFIG)(batch["image"]), collate_examples([_hand_example()]), 128)
    assert "side" not in untrained      # no side target, no side loss (the recipes before side_crops)


def test_frozen_norms_keep_their_statistics_while_the_rest_trains():
    from hand_object_pose.training.hand_heatmap_run import set_train_mode

    torch.manual_seed(0)
    model = HandHeatmapNet(CONFIG)
    set_train_mode(model, freeze_norm=True)
    assert model.training and not model.backbone.bn1.training and not model.deconv[1].training
    before = model.backbone.bn1.running_mean.clone()
    model(torch.rand(2, 3, 128, 128))
    assert torch.equal(model.backbone.bn1.running_mean, before)
    set_train_mode(model, freeze_norm=False)
    assert model.backbone.bn1.training
    model(torch.rand(2, 3, 128, 128))
    assert not torch.equal(model.backbone.bn1.running_mean, before)
