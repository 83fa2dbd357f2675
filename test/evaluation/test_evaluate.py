"""The evaluation report: exact numbers on oracle / offset predictions, and a real run of the shared
inference pipeline (small random-weight Keypoint Transformer) over a fixture dataset."""
import dataclasses
import json

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


@pytest.fixture(scope="module")
def small_kpt_estimator(tmp_path_factory):
    from hand_object_pose.inference.estimator import Estimator, EstimatorConfig
    from hand_object_pose.models.registry import get_preset

    torch.manual_seed(0)
    small = dict(backbone_depth=18, enc_layers=1, dec_layers=1, selection="maxpool")
    family, config = get_preset("kpt_h2o3d_3d")
    model = family.build(dataclasses.replace(config, **small)).eval()
    path = tmp_path_factory.mktemp("kpt") / "small.pt"
    torch.save(model.state_dict(), path)
    return Estimator(EstimatorConfig(model="kpt_h2o3d_3d", backend="torch", model_path=str(path),
                                     model_overrides=small, threads=1, presence_threshold=0.0,
                                     crop_source="roi", warmup_runs=0))


def test_evaluation_runs_the_inference_pipeline_and_reports_its_errors(tmp_path, small_kpt_estimator):
    write_interhand(tmp_path / "ih")
    reader = InterHandDataset(tmp_path / "ih", "test")
    summary = evaluate_dataset(small_kpt_estimator, reader)
    assert summary["counts"] == {"right_hands": 2, "left_hands": 1, "frames": 2}
    # The report's number is the pipeline's error: recompute it from the estimator directly.
    sample = reader[1]
    small_kpt_estimator.reset_tracking()
    result = small_kpt_estimator.estimate(sample.load_image(), sample.intrinsics, roi=ground_truth_box(sample))
    left = next(h for h in result.hands if h.side == "left")
    expected = mpjpe(left.joints_xyz[None] * 1000, sample.hands["left"].joints_cam[None] * 1000,
                     sample.hands["left"].joints_valid[None])
    assert summary["hands"]["left"]["mpjpe_mm"] == pytest.approx(expected, rel=1e-6)
    assert 0.0 <= summary["auc_pck_0_50mm"] <= 1.0 and np.isfinite(summary["mrrpe_mm"])
