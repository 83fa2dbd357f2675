"""The evaluation report: exact numbers on oracle / offset predictions, and a real run of the shared
inference pipeline (small random-weight Keypoint Transformer) over a fixture dataset."""
import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from dataset_fixtures import write_interhand
from hand_object_pose.evaluation.evaluate import evaluate_dataset, ground_truth_box
from hand_object_pose.evaluation.joints import mpjpe
from hand_object_pose.evaluation.report import HandObjectAccumulator, write_report
from hand_object_pose.datasets import InterHandDataset


def _hand(seed):
    return np.random.default_rng(seed).uniform(-0.08, 0.08, (21, 3)) + [0, 0, 0.6]


def test_oracle_and_offset_predictions_give_exact_numbers(tmp_path):
    acc = HandObjectAccumulator()
    gt_r, gt_l = _hand(0), _hand(1) + [0.2, 0, 0]
    valid = np.ones(21, bool)
    acc.add_hand("right", gt_r + [0.1, 0.0, 0.0], gt_r, valid, interacting=True)  # translation only: 0 error
    shifted = gt_l.copy()
    shifted[5] += [0.0, 0.021, 0.0]                                                 # one joint 21 mm off
    acc.add_hand("left", shifted, gt_l, valid, interacting=True)
    acc.add_relative_root(gt_r[0], gt_l[0] + [0.0, 0.0, 0.03], gt_r[0], gt_l[0])    # 30 mm relative-root error
    acc.add_absent_hand(predicted_present=True)                                     # a false detection
    rotation = np.eye(3)
    acc.add_object((rotation, np.array([0.0, 0.0, 0.5])), (rotation, np.array([0.0, 0.004, 0.5])),
                   model_points=np.array([[0.05, 0, 0], [-0.05, 0, 0]]))
    summary = acc.summary()
    assert summary["hands"]["right"]["mpjpe_mm"] == pytest.approx(0.0, abs=1e-9)
    assert summary["hands"]["left"]["mpjpe_mm"] == pytest.approx(1.0)               # 21 mm / 21 joints
    assert summary["hands"]["left"]["mpjpe_interacting_mm"] == pytest.approx(1.0)
    assert summary["mpjpe_mm"] == pytest.approx(21.0 / 42)
    assert summary["mrrpe_mm"] == pytest.approx(30.0)
    assert summary["hand_presence_accuracy"] == pytest.approx(2 / 3)
    assert summary["objects"]["translation_error_mm"] == pytest.approx(4.0)
    assert summary["objects"]["mssd_mm"] == pytest.approx(4.0)
    assert summary["auc_pck_0_50mm"] > 0.95
    path = write_report(summary, tmp_path, {"model": "oracle"})
    assert json.loads(path.read_text())["model"] == "oracle"
    plot = cv2.imread(str(tmp_path / "pck.png"))
    assert plot.shape == (480, 640, 3)
    assert (np.abs(plot.astype(int) - [200, 60, 20]).sum(axis=2) < 60).sum() > 200  # the curve (BGR) was drawn


def test_missing_prediction_counts_against_presence_only():
    acc = HandObjectAccumulator()
    acc.add_hand("right", None, _hand(0), np.ones(21, bool), interacting=False)
    summary = acc.summary()
    assert summary["hand_presence_accuracy"] == 0.0 and "mpjpe_mm" not in summary


SMALL_KPT = dict(backbone_depth=18, enc_layers=1, dec_layers=1, selection="maxpool")


@pytest.fixture(scope="module")
def small_kpt_weights(tmp_path_factory):
    """A state dict of a small random-weight Keypoint Transformer (kpt_h2o3d_3d with SMALL_KPT)."""
    from hand_object_pose.models.registry import get_preset

    torch.manual_seed(0)
    family, config = get_preset("kpt_h2o3d_3d")
    model = family.build(dataclasses.replace(config, **SMALL_KPT)).eval()
    path = tmp_path_factory.mktemp("kpt") / "small.pt"
    torch.save(model.state_dict(), path)
    return path


def small_kpt(weights, **settings):
    from hand_object_pose.inference.estimator import Estimator, EstimatorConfig

    return Estimator(EstimatorConfig(model="kpt_h2o3d_3d", backend="torch", model_path=str(weights),
                                     model_overrides=SMALL_KPT, threads=1, presence_threshold=0.0,
                                     crop_source="roi", warmup_runs=0, **settings))


@pytest.fixture(scope="module")
def small_kpt_estimator(small_kpt_weights):
    return small_kpt(small_kpt_weights)


def test_evaluation_runs_the_inference_pipeline_and_reports_its_errors(tmp_path, small_kpt_estimator):
    write_interhand(tmp_path / "ih")
    reader = InterHandDataset(tmp_path / "ih", "test")
    summary = evaluate_dataset(small_kpt_estimator, reader)
    assert summary["counts"] == {"right_hands": 2, "left_hands": 1, "frames": 2, "frames_with_depth": 0}
    # The report's number is the pipeline's error: recompute it from the estimator directly.
    sample = reader[1]
    small_kpt_estimator.reset_tracking()
    result = small_kpt_estimator.estimate(sample.load_image(), sample.intrinsics, roi=ground_truth_box(sample))
    left = next(h for h in result.hands if h.side == "left")
    expected = mpjpe(left.joints_xyz[None] * 1000, sample.hands["left"].joints_cam[None] * 1000,
                     sample.hands["left"].joints_valid[None])
    assert summary["hands"]["left"]["mpjpe_mm"] == pytest.approx(expected, rel=1e-6)
    assert 0.0 <= summary["auc_pck_0_50mm"] <= 1.0 and np.isfinite(summary["mrrpe_mm"])


@pytest.fixture(scope="module")
def synthetic_split(tmp_path_factory):
    """Two rendered synthetic frames (128x96) with depth images and one object each."""
    from hand_object_pose.datasets.synthetic import write_meta, write_sample
    from hand_object_pose.synthetic.objects import default_objects
    from hand_object_pose.synthetic.scene import SceneConfig, SceneGenerator

    root = tmp_path_factory.mktemp("synthetic")
    generator = SceneGenerator(SceneConfig(image_size=(128, 96)))
    write_meta(root / "test", 5, 2, (128, 96), default_objects())
    scenes = [generator.sample(5, i) for i in range(2)]
    for i, scene in enumerate(scenes):
        write_sample(root / "test", i, scene)
    return root, scenes


def test_depth_images_are_read_in_metres(synthetic_split):
    from hand_object_pose.datasets import SyntheticDataset

    root, scenes = synthetic_split
    depth = SyntheticDataset(root, "test")[0].load_depth()
    assert depth.dtype == np.float32 and depth.shape == (96, 128)
    expected = np.nan_to_num(scenes[0].depth)
    np.testing.assert_allclose(depth, np.round(expected * 1000) / 1000, atol=1e-6)  # stored in whole mm
    assert (depth > 0).any() and (depth == 0).any()


def test_the_dataset_depth_reaches_the_estimator(synthetic_split, small_kpt_weights):
    """Each frame's depth image goes to the estimator (the hands' root depth comes from it), and the
    report's numbers are those of the estimator run with that depth."""
    from hand_object_pose.datasets import SyntheticDataset

    # The widest depth window: the untrained keypoints need not land on the hand to find valid depth.
    estimator = small_kpt(small_kpt_weights, depth_sources=("depth_image", "default"), depth_window_px=100,
                          depth_min_valid=1)
    reader = SyntheticDataset(synthetic_split[0], "test")
    summary = evaluate_dataset(estimator, reader)
    assert summary["counts"]["frames_with_depth"] == 2
    accumulator, sources = HandObjectAccumulator(), []
    for index in range(len(reader)):
        sample = reader[index]
        estimator.reset_tracking()
        result = estimator.estimate(sample.load_image(), sample.intrinsics, depth_m=sample.load_depth(),
                                    roi=ground_truth_box(sample))
        sources += [h.root_depth_source for h in result.hands if h.present]
        accumulator.add_frame(result, sample.hands, sample.objects, sample.interacting)
    assert sources and set(sources) == {"depth_image"}
    expected = accumulator.summary()
    assert set(summary["hands"]) == set(expected["hands"])
    for side in expected["hands"]:
        assert summary["hands"][side]["mpjpe_mm"] == pytest.approx(expected["hands"][side]["mpjpe_mm"], rel=1e-9)
    assert summary["hand_presence_accuracy"] == expected["hand_presence_accuracy"]
    without = evaluate_dataset(estimator, reader, use_depth=False)
    assert without["counts"]["frames_with_depth"] == 0


def test_objects_are_matched_to_labels_by_catalogue_id():
    from hand_object_pose.datasets.sample import ObjectLabel
    from hand_object_pose.inference.result import HandObjectEstimate, ObjectEstimate

    turn = np.array([[-1.0, 0, 0], [0, -1.0, 0], [0, 0, 1.0]])   # 180 degrees about z
    labels = [ObjectLabel("mug", np.eye(3), np.array([0.0, 0.0, 0.5]), symmetric_z180=True),
              ObjectLabel("box", np.eye(3), np.array([0.1, 0.0, 0.5]))]
    estimate = HandObjectEstimate(objects=[
        ObjectEstimate("box", 0.9, np.eye(3), np.array([0.1, 0.003, 0.5])),    # listed first: not the mug's match
        ObjectEstimate("mug", 0.2, turn, np.array([0.0, 0.0, 0.51])),
        ObjectEstimate("mug", 0.7, turn, np.array([0.0, 0.0, 0.505]))])        # the more confident "mug"
    acc = HandObjectAccumulator()
    acc.add_frame(estimate, {}, labels)
    summary = acc.summary()
    assert summary["counts"]["objects"] == 2 and "objects_missed" not in summary["counts"]
    assert summary["objects"]["translation_error_mm"] == pytest.approx((5.0 + 3.0) / 2)
    assert summary["objects"]["rotation_error_deg"] == pytest.approx(0.0, abs=1e-6)   # the mug's symmetry
    acc = HandObjectAccumulator()
    acc.add_frame(HandObjectEstimate(objects=[ObjectEstimate("box", 0.9, np.eye(3), np.zeros(3))]), {}, labels[:1])
    assert acc.summary()["counts"] == {"right_hands": 0, "left_hands": 0, "objects_missed": 1}
    assert acc.summary()["objects_median_all"] == {"translation_error_mm": None, "rotation_error_deg": None}


def test_the_median_over_every_object_counts_a_missed_one_as_infinite():
    """Three objects posed 2, 4 and 40 mm off and two never reported: the median of those reported is 4 mm, over
    every object the third of five, 40 mm; with three missed, half or more are: None."""
    from hand_object_pose.datasets.sample import ObjectLabel
    from hand_object_pose.inference.result import HandObjectEstimate, ObjectEstimate

    acc = HandObjectAccumulator()
    for offset in (0.002, 0.004, 0.04):
        label = ObjectLabel("box", np.eye(3), np.array([0.0, 0.0, 0.5]))
        posed = ObjectEstimate("box", 0.9, np.eye(3), label.translation + [offset, 0.0, 0.0])
        acc.add_frame(HandObjectEstimate(objects=[posed]), {}, [label])
    for _ in range(2):
        acc.add_frame(HandObjectEstimate(objects=[]), {}, [ObjectLabel("box", np.eye(3), np.array([0.0, 0.0, 0.5]))])
    summary = acc.summary()
    assert summary["objects_median"]["translation_error_mm"] == pytest.approx(4.0)
    assert summary["objects_median_all"]["translation_error_mm"] == pytest.approx(40.0)
    assert summary["objects_median_all"]["rotation_error_deg"] == pytest.approx(0.0, abs=1e-6)
    acc.add_frame(HandObjectEstimate(objects=[]), {}, [ObjectLabel("box", np.eye(3), np.array([0.0, 0.0, 0.5]))])
    assert acc.summary()["objects_median_all"]["translation_error_mm"] is None


def test_cli_runs_the_configuration_of_a_node_params_file(synthetic_split, tmp_path):
    """--params-file: the node's YAML (here the lite preset on the torch backend with random weights) drives
    the estimator; the report names the file and used the dataset's depth."""
    import yaml

    from hand_object_pose.evaluation.evaluate import main

    repo = Path(__file__).resolve().parents[2]
    params = yaml.safe_load((repo / "config" / "kpt_h2o3d_3d_lite.yaml").read_text())
    params["/**"]["ros__parameters"].update(backend="torch", model_path="", allow_random_weights=True, threads=1,
                                            warmup_runs=0, presence_threshold=0.0, object_catalogue="",
                                            object_id="")
    params_file = tmp_path / "node.yaml"
    params_file.write_text(yaml.safe_dump(params))
    out = tmp_path / "report"
    assert main(["--params-file", str(params_file), "--dataset", "synthetic", "--root", str(synthetic_split[0]),
                 "--split", "test", "--out", str(out), "--limit", "1"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["params_file"] == str(params_file) and report["model"] == "kpt_h2o3d_3d_lite"
    assert report["counts"]["frames"] == 1 and report["counts"]["frames_with_depth"] == 1
    assert report["backend"].startswith("torch") and report["tracking"] == "off"     # --crop gt: frames one by one
    for tracking, expected in (("auto", "on"), ("off", "off")):
        assert main(["--params-file", str(params_file), "--dataset", "synthetic", "--root", str(synthetic_split[0]),
                     "--split", "test", "--out", str(out), "--limit", "1", "--crop", "pipeline",
                     "--tracking", tracking]) == 0
        assert json.loads((out / "report.json").read_text())["tracking"] == expected
    params["/**"]["ros__parameters"]["crop_margin"] = 9.0
    params_file.write_text(yaml.safe_dump(params))
    assert main(["--params-file", str(params_file), "--dataset", "synthetic", "--root", str(synthetic_split[0]),
                 "--split", "test", "--out", str(out)]) == 2


def test_cli_exports_a_weights_file_of_the_params_file_as_the_node_does(synthetic_split, tmp_path, capsys):
    """model_path naming a training checkpoint under onnxruntime: exported once into --model-cache-dir (the
    node's export cache) and evaluated; a missing file is one error line."""
    import torch

    from hand_object_pose.evaluation.evaluate import main
    from hand_object_pose.models.registry import build_model

    torch.manual_seed(0)
    checkpoint = tmp_path / "latest.pt"
    torch.save({"model": build_model("kpt_h2o3d_3d_lite").state_dict(), "task": "kpt", "step": 7}, checkpoint)
    params_file = tmp_path / "node.yaml"
    params_file.write_text("/**:\n  ros__parameters:\n    model: kpt_h2o3d_3d_lite\n    backend: onnxruntime\n"
                           f"    model_path: {checkpoint}\n    threads: 1\n    warmup_runs: 0\n")
    cache, out = tmp_path / "cache", tmp_path / "out"
    common = ["--dataset", "synthetic", "--root", str(synthetic_split[0]), "--split", "test", "--limit", "1",
              "--model-cache-dir", str(cache)]
    assert main(["--params-file", str(params_file), "--out", str(out), *common]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["backend"].startswith("onnxruntime") and report["counts"]["frames"] == 1
    assert len(list(cache.glob("kpt_h2o3d_3d_lite-*.onnx"))) == 1
    assert "export cache miss" in capsys.readouterr().out
    params_file.write_text(params_file.read_text().replace(str(checkpoint), str(tmp_path / "absent.pt")))
    assert main(["--params-file", str(params_file), "--out", str(out), *common]) == 2
    assert "weights file not found" in capsys.readouterr().err
