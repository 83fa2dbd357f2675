"""End to end: a real Keypoint Transformer preset (small variant, random weights) exported to ONNX and
run through `Estimator.estimate` with ONNX Runtime, and the same weights through the torch backend."""
import dataclasses
import logging

import numpy as np
import pytest
import torch

from hand_object_pose.export.preset_export import write_graph
from hand_object_pose.models.kpt import FAMILY as KPT
from hand_object_pose.geometry.camera import CameraIntrinsics, apply_affine, invert_affine, warp_image
from hand_object_pose.inference.adapters.kpt import KptAdapter
from hand_object_pose.inference.crops import box_around_keypoints
from hand_object_pose.inference.estimator import TIMING_STAGES, Estimator, EstimatorConfig, InvalidInputError
from hand_object_pose.models.registry import get_preset

PRESET = "kpt_h2o3d_3d"
SMALL = dict(backbone_depth=18, enc_layers=1, dec_layers=1, selection="maxpool")
CAMERA = CameraIntrinsics(600.0, 600.0, 320.0, 240.0, width=640, height=480)


@pytest.fixture(scope="module")
def small_kpt(tmp_path_factory):
    """(onnx path, state-dict path) of one small random-weight KPT."""
    torch.manual_seed(0)
    family, config = get_preset(PRESET)
    model = family.build(dataclasses.replace(config, **SMALL)).eval()
    folder = tmp_path_factory.mktemp("kpt")
    onnx_path = write_graph(KPT, model, folder / "kpt_small.onnx")
    state_path = folder / "kpt_small.pt"
    torch.save(model.state_dict(), state_path)
    return str(onnx_path), str(state_path)


@pytest.fixture(scope="module")
def estimator(small_kpt):
    return Estimator(EstimatorConfig(model=PRESET, model_path=small_kpt[0], threads=1, presence_threshold=0.0))


def scene(seed=0):
    """A 480x640 picture: smooth background with a skin-coloured blob (the network's weights are random,
    so what matters is real image data flowing through the real pipeline)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:480, 0:640]
    image = np.stack([(xx / 640 * 255), (yy / 480 * 255), np.full_like(xx, 90.0)], axis=-1)
    blob = (xx - 380) ** 2 / 60 ** 2 + (yy - 230) ** 2 / 90 ** 2 < 1
    image[blob] = (220, 170, 140)
    return np.clip(image + rng.normal(0, 4, image.shape), 0, 255).astype(np.uint8)


def test_estimate_end_to_end_onnxruntime(estimator):
    estimator.reset_tracking()
    assert estimator.backend_in_use == "onnxruntime:CPUExecutionProvider" and not estimator.gpu_in_use
    image = scene()
    first = estimator.estimate(image, CAMERA, stamp_s=10.0)
    assert first.model == PRESET and first.backend == estimator.backend_in_use
    assert [h.side for h in first.hands] == ["right", "left"]
    for hand in first.hands:
        assert hand.joints_xyz.shape == (21, 3) and hand.joints_uv.shape == (21, 2)
        assert hand.joint_confidence.shape == (21,)
        assert np.all((hand.joint_confidence >= 0) & (hand.joint_confidence <= 1))
        assert np.isfinite(hand.joints_xyz).all() and np.all(hand.joints_xyz[:, 2] > 0)
        assert hand.present and 0 <= hand.confidence <= 1
        assert hand.root_depth_source in ("fit_2d", "default")
    assert [o.object_id for o in first.objects] == ["object"]
    rotation = first.objects[0].rotation
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-6)
    # First frame: no track yet, so a coarse whole-frame pass found the hands.
    assert "coarse_pass" in first.timings_ms and first.crop_source == "tracking"
    assert set(first.timings_ms) <= set(TIMING_STAGES)
    parts = sum(v for k, v in first.timings_ms.items() if k != "total")
    assert 0 < parts <= first.timings_ms["total"] + 1e-6

    # Second frame: tracking from the first frame's keypoints, no coarse pass -- unless the box around
    # them has its centre off the image (this small random network puts them above it): then the track is
    # dropped and a coarse pass finds the hands again, so a crop cannot drift off the image (issue 15).
    second = estimator.estimate(image, CAMERA, stamp_s=10.033)
    expected_box = box_around_keypoints([h.joints_uv for h in first.hands], 1.25, 48.0)
    centre = expected_box[:2] + expected_box[2:] / 2
    if 0 <= centre[0] <= image.shape[1] and 0 <= centre[1] <= image.shape[0]:
        assert "coarse_pass" not in second.timings_ms and second.crop_source == "tracking"
        np.testing.assert_allclose(second.hands[0].crop_box, expected_box)
    else:
        assert "coarse_pass" in second.timings_ms and second.crop_source == "tracking"

    # The keypoints are the network's crop keypoints mapped back into the full image.
    box = second.hands[0].crop_box
    affine = np.array([[256 / box[2], 0, -256 / box[2] * box[0]], [0, 256 / box[3], -256 / box[3] * box[1]]])
    raw = estimator.run_network(warp_image(image, affine, 256))
    family, config = get_preset(PRESET)
    adapter = KptAdapter(family, dataclasses.replace(config, **SMALL))
    in_crop = adapter.parse(raw)
    for hand, mine in zip(second.hands, in_crop.hands):
        np.testing.assert_allclose(hand.joints_uv, apply_affine(mine.uv_crop, invert_affine(affine)), atol=1e-6)
        # ... and the 3D hand keeps the network's shape, placed on the keypoints' rays.
        np.testing.assert_allclose(hand.joints_xyz - hand.joints_xyz[0], mine.joints_rel, atol=1e-9)


def test_coarse_pass_without_hands_is_the_answer(small_kpt):
    nobody = Estimator(EstimatorConfig(model=PRESET, model_path=small_kpt[0], threads=1, warmup_runs=0,
                                       presence_threshold=1.0))  # nothing reaches it: no hand is ever present
    for _ in range(2):
        result = nobody.estimate(scene(), CAMERA)
        assert "coarse_pass" in result.timings_ms and "inference" not in result.timings_ms
        assert not any(h.present for h in result.hands) and result.objects == []
        np.testing.assert_allclose(result.hands[0].crop_box, [0, -80, 640, 640])  # the letterboxed frame
        assert result.crop_source == "full_frame"


def test_torch_backend_with_state_dict_matches_onnxruntime(small_kpt, estimator):
    estimator.reset_tracking()
    config = EstimatorConfig(model=PRESET, backend="torch", model_path=small_kpt[1], model_overrides=SMALL,
                             threads=1, presence_threshold=0.0, crop_source="fixed", fixed_roi=(250, 100, 200, 250))
    torch_estimator = Estimator(config)
    assert torch_estimator.backend_in_use == "torch:cpu"
    ort_estimator = Estimator(dataclasses.replace(config, backend="onnxruntime", model_path=small_kpt[0],
                                                  model_overrides={}))
    image = scene(1)
    a = torch_estimator.estimate(image, CAMERA)
    b = ort_estimator.estimate(image, CAMERA)
    for ha, hb in zip(a.hands, b.hands):
        np.testing.assert_allclose(ha.joints_uv, hb.joints_uv, atol=1e-3)
        np.testing.assert_allclose(ha.joints_xyz, hb.joints_xyz, atol=1e-4)
    np.testing.assert_allclose(a.hands[0].crop_box, [193.75, 68.75, 312.5, 312.5], atol=1e-9)


def test_inputs_worked_around_or_rejected(estimator):
    estimator.reset_tracking()
    image = scene(2)
    result = estimator.estimate(image, CAMERA.matrix, depth_m=np.ones((240, 320), np.float32),
                                roi=(900, 900, 50, 50))
    assert any("depth image of shape (240, 320)" in w for w in result.warnings)
    assert any("roi (900, 900, 50, 50)" in w for w in result.warnings)
    with pytest.raises(InvalidInputError, match=r"\(H, W, 3\)"):
        estimator.estimate(image[..., 0], CAMERA)
    with pytest.raises(InvalidInputError, match="uint8"):
        estimator.estimate(image.astype(np.float32), CAMERA)
    with pytest.raises(InvalidInputError, match="fx, fy > 0"):
        estimator.estimate(image, np.zeros((3, 3)))


def test_roi_crop_and_depth_image(estimator):
    estimator.reset_tracking()
    image = scene(3)
    depth = np.full((480, 640), 0.8, np.float32)
    result = estimator.estimate(image, CAMERA, depth_m=depth, roi=(300, 120, 160, 220))
    np.testing.assert_allclose(result.hands[0].crop_box, [242.5, 92.5, 275, 275])
    assert result.crop_source == "roi"
    assert any(hand.root_depth_source == "depth_image" for hand in result.hands)
    for hand in result.hands:
        if hand.root_depth_source == "depth_image":  # its palm keypoints fell inside the image
            rel_z = hand.joints_xyz[:, 2] - hand.joints_xyz[0, 2]
            expected = np.median([0.8 + 0.01 - rel_z[j] for j in (0, 5, 9, 13, 17)
                                  if 0 <= hand.joints_uv[j, 0] < 640 and 0 <= hand.joints_uv[j, 1] < 480])
            assert hand.joints_xyz[0, 2] == pytest.approx(expected, abs=1e-6)


def test_smoothing_and_stamps(small_kpt):
    config = EstimatorConfig(model=PRESET, model_path=small_kpt[0], threads=1, presence_threshold=0.0,
                             crop_source="full", smoothing=True, one_euro_min_cutoff_hz=0.5, warmup_runs=0)
    smoothed = Estimator(config)
    raw = Estimator(dataclasses.replace(config, smoothing=False))
    first, second = scene(4), scene(5)
    s1, r1 = smoothed.estimate(first, CAMERA, stamp_s=1.0), raw.estimate(first, CAMERA, stamp_s=1.0)
    np.testing.assert_allclose(s1.hands[0].joints_xyz, r1.hands[0].joints_xyz)  # first sample passes
    s2, r2 = smoothed.estimate(second, CAMERA, stamp_s=1.033), raw.estimate(second, CAMERA, stamp_s=1.033)
    assert "smoothing" in s2.timings_ms
    step_raw = np.abs(r2.hands[0].joints_xyz - r1.hands[0].joints_xyz).max()
    step_smoothed = np.abs(s2.hands[0].joints_xyz - s1.hands[0].joints_xyz).max()
    assert step_raw > 0 and step_smoothed < 0.5 * step_raw
    back = smoothed.estimate(second, CAMERA, stamp_s=0.5)
    assert any("not after the previous one" in w for w in back.warnings)
    np.testing.assert_allclose(back.hands[0].joints_xyz, r2.hands[0].joints_xyz, atol=1e-9)  # restarted


def test_random_weights_are_the_same_draw_every_time_and_leave_the_caller_rng_alone():
    def random_weight_estimate():
        estimator = Estimator(EstimatorConfig(model=PRESET, backend="torch", allow_random_weights=True, threads=1,
                                              presence_threshold=0.0, model_overrides=SMALL))
        return estimator.estimate(scene(), CAMERA).hands[0].joints_xyz

    torch.manual_seed(123)
    expected_next_draw = torch.rand(3)
    torch.manual_seed(123)
    first = random_weight_estimate()
    assert torch.equal(torch.rand(3), expected_next_draw)
    np.testing.assert_array_equal(random_weight_estimate(), first)


def test_start_up_errors(small_kpt, tmp_path, caplog):
    with pytest.raises(ValueError, match="unknown model preset 'kpt_nope'; known presets: .*kpt_h2o3d_3d"):
        Estimator(EstimatorConfig(model="kpt_nope", model_path=small_kpt[0]))
    with pytest.raises(FileNotFoundError, match="absent.onnx"):
        Estimator(EstimatorConfig(model=PRESET, model_path=str(tmp_path / "absent.onnx")))
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="cannot read weights file .*broken.pt"):
        Estimator(EstimatorConfig(model=PRESET, backend="torch", model_path=str(broken), model_overrides=SMALL))
    with pytest.raises(ValueError, match=r"model_overrides=.*fields of KptConfig: \[.*backbone_depth"):
        Estimator(EstimatorConfig(model=PRESET, backend="torch", allow_random_weights=True,
                                  model_overrides={"depth": 18}))
    official_name = tmp_path / "foreign.pth.tar"  # a checkpoint whose tensors are not this model's
    torch.save({"network": {"module.something.weight": torch.zeros(2)}}, official_name)
    with pytest.raises(ValueError, match="foreign.pth.tar does not fit preset"):
        Estimator(EstimatorConfig(model=PRESET, backend="torch", model_path=str(official_name), model_overrides=SMALL))
    with pytest.raises(ValueError, match="does not fit preset"):  # a state dict of another architecture
        Estimator(EstimatorConfig(model=PRESET, backend="torch", model_path=small_kpt[1]))
    with pytest.raises(ValueError, match="does not look like a 'kpt_ih26m_2p5d' export"):
        Estimator(EstimatorConfig(model="kpt_ih26m_2p5d", model_path=small_kpt[0]))
    catalogue = tmp_path / "objects.yaml"
    catalogue.write_text("objects:\n  - {id: mug}\n  - {id: box}\n")
    with pytest.raises(ValueError, match=r"object_id='can' is not in the object catalogue .*\['mug', 'box'\]"):
        Estimator(EstimatorConfig(model=PRESET, model_path=small_kpt[0], object_catalogue=str(catalogue),
                                  object_id="can"))
    with pytest.raises(ValueError, match="name the one this model tracks"):
        Estimator(EstimatorConfig(model=PRESET, model_path=small_kpt[0], object_catalogue=str(catalogue)))
    with caplog.at_level(logging.WARNING):
        with_gpu_request = Estimator(EstimatorConfig(model=PRESET, model_path=small_kpt[0], warmup_runs=0,
                                                     providers=("cuda", "cpu"), object_catalogue=str(catalogue),
                                                     object_id="box", mano_path=str(tmp_path / "no_mano"),
                                                     cuda_graph=True))
    assert with_gpu_request.backend_in_use == "onnxruntime:CPUExecutionProvider"
    assert any("GPU was requested" in r.message for r in caplog.records)
    # CUDA graphs need the CUDA provider: off, said once, the estimator runs as without.
    assert not with_gpu_request.cuda_graph_in_use
    assert any("cuda_graph is set but the network runs on CPUExecutionProvider" in r.message for r in caplog.records)
    assert any("no_mano is not a directory" in r.getMessage() for r in caplog.records)
    result = with_gpu_request.estimate(scene(), CAMERA)
    assert [o.object_id for o in result.objects] in ([], ["box"])
