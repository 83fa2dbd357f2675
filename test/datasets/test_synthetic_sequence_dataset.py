"""A rendered synthetic sequence read as `Sample`s (datasets/synthetic_sequence.py) and scored by the evaluation CLI
with tracking on, through the shipped default networks."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hand_object_pose.datasets.registry import build_reader
from hand_object_pose.datasets.synthetic_sequence import SyntheticSequenceDataset
from hand_object_pose.synthetic.objects import default_objects
from hand_object_pose.synthetic.sequence import SequenceConfig, load_sequence, render_sequence

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sequence_root(tmp_path_factory) -> Path:
    """<root>/walk: 6 frames of 256 x 192 with two hands and an object."""
    root = tmp_path_factory.mktemp("sequences")
    render_sequence(SequenceConfig(num_frames=6, image_size=(256, 192), seed=7), root / "walk")
    return root


def test_frames_read_back_in_order_with_their_truth(sequence_root):
    reader = build_reader({"type": "synthetic_sequence", "root": str(sequence_root), "split": "walk"})
    assert isinstance(reader, SyntheticSequenceDataset) and len(reader) == 6
    sequence = load_sequence(sequence_root / "walk")
    corners = {o.object_id: o.corners() for o in default_objects()}
    for index in range(len(reader)):
        sample, truth = reader[index], sequence.truths[index]
        assert sample.frame_id == f"{index:06d}" and sample.image_size == (256, 192)
        assert sample.load_image().shape == (192, 256, 3)
        depth = sample.load_depth()
        assert depth.shape == (192, 256) and depth.max() > 0.2
        np.testing.assert_allclose(sample.intrinsics, sequence.K)
        assert list(sample.hands) == [s for s in ("right", "left") if s in truth.hands]
        for side, hand in sample.hands.items():
            np.testing.assert_allclose(hand.joints_cam, truth.hands[side]["joints_cam"], atol=1e-6)
            projected = hand.joints_cam.astype(float) @ sample.intrinsics.T
            uv = projected[:, :2] / projected[:, 2:]
            np.testing.assert_allclose(uv[hand.joints_valid], truth.hands[side]["joints_2d"][hand.joints_valid],
                                       atol=1e-3)
        (label,), (obj,) = sample.objects, truth.objects
        assert label.object_id == obj["object_id"]
        np.testing.assert_allclose(label.rotation, obj["rotation"])
        np.testing.assert_allclose(label.corners_rest, corners[obj["object_id"]])
        assert label.symmetry_record() == dict(obj["symmetry"])


def test_a_folder_without_a_sequence_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="sequence.json"):
        SyntheticSequenceDataset(tmp_path, "none")


def test_the_evaluation_scores_a_sequence_with_tracking(sequence_root, tmp_path):
    """`evaluation.evaluate --dataset synthetic_sequence --crop pipeline --tracking on`: a report over every frame,
    the hands found and placed within centimetres by the shipped default."""
    model = REPO / "models" / "default" / "hand_heatmap_r18h.onnx"
    done = subprocess.run(
        [sys.executable, "-m", "hand_object_pose.evaluation.evaluate", "--model", "hand_heatmap_r18h", "--model-path",
         str(model), "--dataset", "synthetic_sequence", "--root", str(sequence_root), "--split", "walk", "--out",
         str(tmp_path / "report"), "--crop", "pipeline", "--tracking", "on"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["dataset"] == "synthetic_sequence" and report["tracking"] in ("on", True)
    assert report["counts"]["frames"] == 6 and report["counts"]["frames_with_depth"] == 6
    assert report["hand_presence_accuracy"] >= 0.9
    assert report["hands"]["right"]["mpjpe_mm"] < 40.0
