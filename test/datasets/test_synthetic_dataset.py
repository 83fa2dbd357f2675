"""The synthetic dataset round trip: rendered scenes written to disk and read back as `Sample`s whose
labels agree with the images (projections, depth, masks), through the same crop pipeline."""
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from hand_object_pose.synthetic.scene import SceneConfig, SceneGenerator
from hand_object_pose.datasets import SyntheticDataset
from hand_object_pose.datasets.registry import build_reader
from hand_object_pose.datasets.synthetic import write_meta, write_sample
from hand_object_pose.synthetic.objects import default_objects

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    generator = SceneGenerator(SceneConfig(image_size=(160, 128)))
    scenes = [generator.sample(3, i) for i in range(4)]
    write_meta(root, 3, len(scenes), (160, 128), default_objects())
    for i, scene in enumerate(scenes):
        write_sample(root, i, scene)
    return root, scenes


def test_labels_round_trip_and_agree_with_the_images(written):
    root, scenes = written
    reader = build_reader({"type": "synthetic", "root": str(root)})
    assert isinstance(reader, SyntheticDataset) and len(reader) == 4
    for i, scene in enumerate(scenes):
        sample = reader[i]
        assert list(sample.hands) == list(scene.hands)
        for side, hand in scene.hands.items():
            np.testing.assert_allclose(sample.hands[side].joints_cam, hand.joints_cam, atol=1e-6)
            projected = sample.hands[side].joints_cam.astype(float) @ sample.intrinsics.T
            np.testing.assert_allclose(projected[:, :2] / projected[:, 2:], hand.joints_2d, atol=1e-3)
        image = sample.load_image()
        assert image.shape == (128, 160, 3) and np.abs(image.astype(int) - scene.rgb).mean() < 4  # JPEG q95
        depth = cv2.imread(sample.depth_path, cv2.IMREAD_UNCHANGED)
        assert depth.dtype == np.uint16
        np.testing.assert_allclose(depth / 1000.0, scene.depth, atol=6e-4)
        instance = cv2.imread(str(root / "instance" / f"{sample.frame_id}.png"), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(instance, scene.labels)  # hand and object masks, lossless
        if scene.objects:
            obj, label = sample.objects[0], scene.objects[0]
            np.testing.assert_allclose(obj.rotation, label.rotation)
            np.testing.assert_allclose(obj.corners_rest, label.corners_rest)
            mask = cv2.imread(sample.object_mask_path, cv2.IMREAD_GRAYSCALE) > 0
            assert mask.sum() == label.mask_pixels
            assert obj.symmetric_z180 == (label.symmetry["kind"] != "none")


def test_reader_rejects_foreign_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match="meta.json"):
        SyntheticDataset(tmp_path)
    (tmp_path / "meta.json").write_text('{"format": "other"}')
    with pytest.raises(ValueError, match="format 'other'"):
        SyntheticDataset(tmp_path)


def test_generator_cli_writes_the_requested_samples(tmp_path):
    out = tmp_path / "gen"
    done = subprocess.run([sys.executable, "-m", "hand_object_pose.tools.generate_synthetic", str(out), "--count", "3",
                           "--seed", "5", "--size", "96x96"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "wrote 3 samples" in done.stdout and "samples/s" in done.stdout
    assert len(SyntheticDataset(out)) == 3
    bad = subprocess.run([sys.executable, "-m", "hand_object_pose.tools.generate_synthetic", str(out), "--count", "1",
                          "--size", "big"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "WIDTHxHEIGHT" in bad.stderr
