"""The mean-pose baseline: its answer is the training labels' mean, and the evaluation scores it with
the numbers that mean gives by hand; the evaluate CLI runs it on a written synthetic split."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hand_object_pose.evaluation.baseline import MeanPoseBaseline, nearest_rotation
from hand_object_pose.evaluation.evaluate import evaluate_dataset
from hand_object_pose.synthetic.objects import default_objects
from hand_object_pose.synthetic.scene import SceneConfig, SceneGenerator
from hand_object_pose.datasets import SyntheticDataset
from hand_object_pose.datasets.synthetic import write_meta, write_sample

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    """A 6-frame train split and a 3-frame test split (other seed), 128x96 renders."""
    root = tmp_path_factory.mktemp("synthetic")
    generator = SceneGenerator(SceneConfig(image_size=(128, 96)))
    for split, seed, count in (("train", 11, 6), ("test", 12, 3)):
        write_meta(root / split, seed, count, (128, 96), default_objects())
        for i in range(count):
            write_sample(root / split, i, generator.sample(seed, i))
    return root


def test_the_answer_is_the_mean_of_the_training_labels(splits):
    train = SyntheticDataset(splits, "train")
    baseline = MeanPoseBaseline.fit(train)
    samples = [train[i] for i in range(len(train))]
    checked = 0
    for side in ("right", "left"):
        labelled = [s.hands[side] for s in samples if side in s.hands]
        if not labelled:
            assert side not in baseline.joints
            continue
        valid = np.stack([h.joints_valid for h in labelled])[..., None]
        joints = np.stack([h.joints_cam for h in labelled]).astype(np.float64)  # labels are float32 on disk
        expected = (joints * valid).sum(0) / np.maximum(valid.sum(0), 1)
        if valid.sum(0).all():
            np.testing.assert_allclose(baseline.joints[side], expected, atol=1e-6)  # metres: a micrometre
            checked += 1
        else:
            assert side not in baseline.joints  # a joint never labelled: no mean pose for that side
        assert baseline.presence[side] == pytest.approx(len(labelled) / len(samples))
    assert checked >= 1  # the fixture labels at least one side fully
    result = baseline.estimate(None, samples[0].intrinsics)
    assert [h.present for h in result.hands] == [baseline.presence[h.side] >= 0.5 for h in result.hands]
    objects = [s.objects[0] for s in samples if s.objects]
    assert len(objects) > 0
    rotation, translation = result.objects[0].rotation, result.objects[0].translation
    np.testing.assert_allclose(translation, np.mean([o.translation for o in objects], axis=0), atol=1e-9)
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-9)
    assert np.linalg.det(rotation) == pytest.approx(1.0)


def test_evaluation_scores_the_mean_pose_by_hand(splits):
    train, test = SyntheticDataset(splits, "train"), SyntheticDataset(splits, "test")
    baseline = MeanPoseBaseline.fit(train)
    summary = evaluate_dataset(baseline, test)
    scored = 0
    for side in baseline.joints:
        if baseline.presence[side] < 0.5:
            assert side not in summary["hands"]  # reported absent: no pose error counted
            continue
        mean = baseline.joints[side] - baseline.joints[side][:1]
        errors = []
        for i in range(len(test)):
            hand = test[i].hands.get(side)
            if hand is None or not hand.joints_valid[0]:
                continue
            gt = hand.joints_cam - hand.joints_cam[:1]
            errors.extend(1000.0 * np.linalg.norm(mean - gt, axis=1)[hand.joints_valid])  # root's 0 included
        if errors:
            assert summary["hands"][side]["mpjpe_mm"] == pytest.approx(np.mean(errors), rel=1e-6)
            assert summary["hands"][side]["mpjpe_mm"] > 10.0  # one fixed pose is far from varied hands
            scored += 1
    assert scored >= 1
    flags = [(baseline.presence[side] >= 0.5, side in test[i].hands) for i in range(len(test)) for side in
             ("right", "left")]
    assert summary["hand_presence_accuracy"] == pytest.approx(np.mean([p == g for p, g in flags]))
    # Objects are scored against the estimate of their own id (the baseline's most frequent training id);
    # the others count as missed.
    labels = [o for i in range(len(test)) for o in test[i].objects]
    errors = [np.linalg.norm(baseline.object_pose[1] - o.translation) * 1000.0 for o in labels
              if o.object_id == baseline.object_id]
    assert summary["counts"].get("objects_missed", 0) == len(labels) - len(errors)
    if errors:
        assert summary["objects"]["translation_error_mm"] == pytest.approx(np.mean(errors), rel=1e-6)
    else:
        assert "objects" not in summary


def test_nearest_rotation_of_a_rotation_is_itself_and_of_a_mean_is_proper():
    angle = 0.3
    rz = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    np.testing.assert_allclose(nearest_rotation(rz), rz, atol=1e-12)
    mean = (rz + rz.T) / 2                          # rotations by +-0.3 rad about z average to about z by 0
    np.testing.assert_allclose(nearest_rotation(mean), np.eye(3), atol=1e-12)


def test_cli_writes_the_baseline_report_and_refuses_ambiguous_calls(splits, tmp_path):
    out = tmp_path / "report"
    cmd = [sys.executable, "-m", "hand_object_pose.evaluation.evaluate", "--mean-pose-baseline", str(splits),
           "--dataset", "synthetic", "--root", str(splits), "--split", "test", "--out", str(out)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    assert report["model"] == "mean_pose_baseline" and report["counts"]["frames"] == 3
    both = subprocess.run(cmd + ["--model", "kpt_h2o3d_3d"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert both.returncode == 2 and "exactly one of --model and --mean-pose-baseline" in both.stderr
