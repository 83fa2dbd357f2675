"""The object across frames and its fit's starts (inference/per_hand.py), on the shipped default networks and
generated scenes with a depth image: a tracked object's class remembers its last frames (OBJECT_CLASS_MEMORY), a new
object's fit also starts further along the heat-map pose's ray and nearer on it (RAY_STARTS_M)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hand_object_pose.inference import object_depth_fit, per_hand
from hand_object_pose.inference.estimator import Estimator, EstimatorConfig
from hand_object_pose.synthetic.scene import SceneConfig, SceneGenerator

DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "models" / "default" / "hand_heatmap_r18h.onnx"


@pytest.fixture(scope="module")
def estimator() -> Estimator:
    return Estimator(EstimatorConfig(model="hand_heatmap_r18h", model_path=str(DEFAULT_MODEL), warmup_runs=0,
                                     threads=1))


@pytest.fixture(scope="module")
def reported_scene(estimator):
    """The first generated scene (seed 2001) whose object the default reports on a frame of its own."""
    generator = SceneGenerator(SceneConfig(image_size=(256, 256)))
    for index in range(40):
        scene = generator.sample(2001, index)
        estimator.reset_tracking()
        if scene.objects and estimator.estimate(scene.rgb, scene.K, depth_m=scene.depth).objects:
            return scene
    pytest.fail("no scene of the first 40 has an object the default reports")


def _class_probabilities(estimator, monkeypatch) -> list:
    """Spies on the object crops' class probabilities: [(as the crop gave them, as the pose used them)]."""
    seen, adapter = [], estimator._per_hand.adapter
    real_parse, real_pose = adapter.parse_object, adapter.object_pose

    def parse(outputs, whole_frame=False):
        points = real_parse(outputs, whole_frame)
        if not whole_frame:
            seen.append([points.class_probs.copy(), None])
        return points

    def pose(points, *args, **kwargs):
        seen[-1][1] = points.class_probs.copy()
        return real_pose(points, *args, **kwargs)

    monkeypatch.setattr(adapter, "parse_object", parse)
    monkeypatch.setattr(adapter, "object_pose", pose)
    return seen


def test_a_tracked_objects_class_remembers_its_last_frames(estimator, reported_scene, monkeypatch):
    """Frame 1 (object new): the class is the crop's. Frame 2 (tracked): OBJECT_CLASS_MEMORY of frame 1's class and
    the rest the new crop's. After reset_tracking the crop's own again."""
    seen = _class_probabilities(estimator, monkeypatch)
    scene, memory = reported_scene, per_hand.OBJECT_CLASS_MEMORY
    assert 0.0 < memory < 1.0
    estimator.reset_tracking()
    assert estimator.estimate(scene.rgb, scene.K, depth_m=scene.depth).objects
    crop_first, used_first = seen[-1]
    np.testing.assert_allclose(used_first, crop_first)
    estimator.estimate(scene.rgb, scene.K, depth_m=scene.depth)
    crop_second, used_second = seen[-1]
    np.testing.assert_allclose(used_second, memory * used_first + (1.0 - memory) * crop_second, atol=1e-12)
    assert used_second.sum() == pytest.approx(1.0)
    estimator.reset_tracking()
    estimator.estimate(scene.rgb, scene.K, depth_m=scene.depth)
    np.testing.assert_allclose(seen[-1][1], seen[-1][0])


def test_a_new_objects_fit_also_starts_further_and_nearer_on_its_ray(estimator, reported_scene, monkeypatch):
    """An object new to the fit: the heat-map pose's axis turns at the start depth, then the heat-map pose moved
    RAY_STARTS_M along its ray, both ways (the camera may measure a finger in front of the object; a long object's
    centre may be set half its length too deep); a tracked object keeps its 2 starts."""
    calls = []
    real_fit = object_depth_fit.fit_to_depth

    def spied(starts, *args, **kwargs):
        calls.append([(np.asarray(r), np.asarray(t)) for r, t in starts])
        return real_fit(starts, *args, **kwargs)

    monkeypatch.setattr(object_depth_fit, "fit_to_depth", spied)
    scene = reported_scene
    estimator.reset_tracking()
    assert estimator.estimate(scene.rgb, scene.K, depth_m=scene.depth).objects
    starts = calls[0]
    further = len(per_hand.RAY_STARTS_M)
    assert min(per_hand.RAY_STARTS_M) < 0 < max(per_hand.RAY_STARTS_M)
    assert len(starts) in (24 + further, 1 + further)   # a ball has one turn
    rotation, translation = starts[0]
    for (r, t), step in zip(starts[-further:], per_hand.RAY_STARTS_M):
        np.testing.assert_allclose(r, rotation)
        assert t[2] == pytest.approx(translation[2] + step)
        np.testing.assert_allclose(t / t[2], translation / translation[2], atol=1e-12)   # the same ray
    calls.clear()
    estimator.estimate(scene.rgb, scene.K, depth_m=scene.depth)
    assert [len(s) for s in calls] == [2]


@pytest.mark.parametrize("index, object_id", [(216, "synthetic_bottle"), (237, "synthetic_box")])
def test_a_sure_class_with_weak_heatmaps_is_reported_when_its_fit_agrees(estimator, monkeypatch, index, object_id):
    """Generated scenes 216 and 237 of seed 2001 (generator version 12, the shipped networks): a bottle and a box,
    class probability ~1, heat-map confidence between SURE_CLASS_MIN_CONFIDENCE and MIN_OBJECT_CONFIDENCE, their fits
    agreeing with the depth image: reported (SURE_CLASS's way), and not without that way, nor for a class that may
    only pass the heat-map gate (HEATMAP_GATED_CLASSES, the mug's)."""
    scene = SceneGenerator(SceneConfig(image_size=(256, 256))).sample(2001, index)
    assert [o.object_id for o in scene.objects] == [object_id]

    def reported(**patches) -> list:
        with monkeypatch.context() as patched:
            for name, value in patches.items():
                patched.setattr(per_hand, name, value)
            estimator.reset_tracking()
            return [o.object_id for o in estimator.estimate(scene.rgb, scene.K, depth_m=scene.depth).objects]

    assert object_id not in per_hand.HEATMAP_GATED_CLASSES
    assert reported() == [object_id]
    assert reported(SURE_CLASS=1.01) == []
    assert reported(HEATMAP_GATED_CLASSES=(object_id,)) == []


def test_no_fit_starts_nearer_than_a_depth_can_be_measured(estimator, monkeypatch):
    """An object 12 cm from the camera: its fit starts 2 and 4 cm further along the ray, but not 3 or 6 cm nearer
    where they would lie under `depth_min_m` (10 cm), let alone behind the camera."""
    from hand_object_pose.geometry.camera import CameraIntrinsics
    from hand_object_pose.inference.estimator import _Stopwatch
    from hand_object_pose.inference.object_heatmap_pose import HeatmapPose

    calls = []
    monkeypatch.setattr(object_depth_fit, "fit_to_depth", lambda starts, *args, **kwargs: calls.append(starts))
    crops = estimator._per_hand
    crops.reset()
    pose = HeatmapPose(rotation=np.eye(3), translation=np.array([0.0, 0.0, 0.12]), support=np.ones(8))
    depth = np.full((64, 64), 0.12, np.float32)
    crops._fit_to_depth(CameraIntrinsics(60.0, 60.0, 32.0, 32.0), depth, _Stopwatch({}), [], "synthetic_box", pose)
    depths = sorted({round(float(t[2]), 6) for _, t in calls[0]})
    assert depths == [0.12, 0.14, 0.16] and estimator.config.depth_min_m == pytest.approx(0.1)
