"""An object crop's segmentation in the image (inference/object_pixels.py) and the fit to a depth image on the
object's own pixels (inference/object_depth_fit.py with ObjectPixels): rendered depth images of the synthetic
objects, masks made from the renders."""
from __future__ import annotations

import numpy as np
import pytest

from hand_object_pose.evaluation.objects import rotation_error_deg, symmetries_of
from hand_object_pose.geometry.camera import crop_affine
from hand_object_pose.inference.object_depth_fit import HandCover, ObjectEvidence, depth_agreement, fit_to_depth, \
    sample_surface, start_turns
from hand_object_pose.inference.object_pixels import ObjectPixels, grid_affine, object_pixels
from hand_object_pose.synthetic.raster import render_mesh
from inference.object_scene_fixtures import CAMERA, K, NO_HANDS, OBJECTS, SIZE, turn


def _render(object_id, rotation, translation) -> np.ndarray:
    """(H, W) metres, 0 = nothing."""
    model = OBJECTS[object_id]
    depth = render_mesh(model.vertices @ rotation.T + translation, model.faces, K, SIZE[::-1]).depth.numpy()
    return np.where(depth > 0, depth, 0.0).astype(np.float32)


def _pixels(mask: np.ndarray) -> ObjectPixels:
    """ObjectPixels of a known mask: the object there, background everywhere else."""
    return ObjectPixels(mask, ~mask, np.zeros(5))


ROTATION = turn([1.0, 0.4, 0.2], 35.0)
TRANSLATION = np.array([0.01, -0.01, 0.5])


def test_object_pixels_are_the_cells_the_network_calls_object_in_the_image():
    """A crop of 128 px at (50, 40) with 32 x 32 cells (4 px each): cells 10-19 (rows) x 8-15 (columns) say
    'sphere' (class 2) -> the object's pixels are image rows 80-119, columns 82-113 (edges blend), background the
    rest of the crop, nothing off it; the votes go to the sphere."""
    segmentation = np.zeros((6, 32, 32), np.float32)
    segmentation[0] = 1.0
    segmentation[0, 10:20, 8:16], segmentation[3, 10:20, 8:16] = 0.1, 0.9
    affine = crop_affine(np.array([50.0, 40.0, 128.0, 128.0]), 128)
    pixels = object_pixels(segmentation, affine, 128, (240, 320, 3))
    assert pixels.object[82:118, 84:112].all() and not pixels.object[:, :80].any() and not pixels.object[:76].any()
    assert 0.9 * 40 * 32 < pixels.object.sum() < 1.1 * 40 * 32
    assert pixels.background[45:75, 55:170].all() and not (pixels.object & pixels.background).any()
    assert not pixels.background[:, :49].any() and not pixels.background[170:].any()   # off the crop: neither
    np.testing.assert_allclose(pixels.class_votes, [0, 0, 1, 0, 0])
    # Image pixel -> cell: the crop's first pixel centre is a quarter cell before cell 0's centre.
    np.testing.assert_allclose(grid_affine(affine, 128, 32) @ [50.0, 40.0, 1.0], [-0.375, -0.375])
    with pytest.raises(ValueError, match="expected \\(1 \\+ C, H, H\\)"):
        object_pixels(np.zeros((6, 32, 16)), affine, 128, (240, 320))


def test_a_pose_must_cover_the_objects_pixels_not_just_lie_on_them():
    """A bottle's pixels: the bottle at its pose agrees and covers them; a ball fitted to the same pixels can lie on
    the surface too but covers a part only, and scores lower: the fit tells the classes apart by what they cover."""
    depth = _render("synthetic_bottle", ROTATION, TRANSLATION)
    pixels = _pixels(depth > 0)
    hands = HandCover(depth, CAMERA, NO_HANDS)
    bottle = OBJECTS["synthetic_bottle"]
    surface = sample_surface(bottle.vertices, bottle.faces)
    evidence = ObjectEvidence(pixels, depth, surface, CAMERA)
    true = depth_agreement(ROTATION, TRANSLATION, surface, depth, CAMERA, hands, evidence)
    assert true.agreement > 0.9 and true.coverage > 0.8 and true.outside < 0.05 * true.visible   # edges round off
    ball = OBJECTS["synthetic_sphere"]
    ball_surface = sample_surface(ball.vertices, ball.faces)
    ball_fit = fit_to_depth([(np.eye(3), TRANSLATION + [0.0, 0.0, 0.01])], ball_surface, depth, CAMERA, NO_HANDS,
                            pixels)
    bottle_fit = fit_to_depth([(ROTATION @ t, TRANSLATION + [0.01, 0.0, 0.01]) for t in start_turns({})], surface,
                              depth, CAMERA, NO_HANDS, pixels)
    assert bottle_fit.agreement.coverage > 0.8 and ball_fit.agreement.coverage < bottle_fit.agreement.coverage - 0.2
    assert bottle_fit.agreement.score > ball_fit.agreement.score + 0.4
    assert 1000 * np.linalg.norm(bottle_fit.translation - TRANSLATION) < 2.0
    assert rotation_error_deg(bottle_fit.rotation, ROTATION, symmetries_of(bottle.symmetry)) < 2.0


def test_a_pose_on_pixels_the_crop_calls_background_counts_against_it():
    """A box moved 4 cm sideways of its pixels: its samples fall on background with nothing nearer (outside)."""
    depth = _render("synthetic_box", ROTATION, TRANSLATION)
    pixels = _pixels(depth > 0)
    box = OBJECTS["synthetic_box"]
    surface = sample_surface(box.vertices, box.faces)
    evidence = ObjectEvidence(pixels, depth, surface, CAMERA)
    hands = HandCover(depth, CAMERA, NO_HANDS)
    moved = depth_agreement(ROTATION, TRANSLATION + [0.04, 0.0, 0.0], surface, depth, CAMERA, hands, evidence)
    true = depth_agreement(ROTATION, TRANSLATION, surface, depth, CAMERA, hands, evidence)
    assert moved.outside > 0.3 * moved.visible and moved.agreement < 0.7 < 0.95 < true.agreement
    assert moved.score < true.score - 0.5


def test_the_fit_pairs_only_the_objects_pixels():
    """A ball half covered by something that is not the object (a slab 2 cm in front of its left half; no hand bones
    given): on the object's pixels (the ball's visible ones) the fit stays on the ball; on every pixel it slides
    towards the slab's surface."""
    ball = OBJECTS["synthetic_sphere"]
    translation = np.array([0.0, 0.0, 0.5])
    slab_vertices = np.array([[x, y, z] for x in (-0.12, -0.005) for y in (-0.06, 0.06) for z in (0.44, 0.46)])
    slab_faces = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1], [2, 3, 7], [2, 7, 6],
                           [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])
    ball_depth = _render("synthetic_sphere", np.eye(3), translation)
    slab = render_mesh(slab_vertices, slab_faces, K, SIZE[::-1]).depth.numpy()
    visible_ball = (ball_depth > 0) & ((slab <= 0) | (ball_depth < slab))
    depth = np.where(visible_ball, ball_depth, np.where(slab > 0, slab, 0.0)).astype(np.float32)
    surface = sample_surface(ball.vertices, ball.faces)
    start = [(np.eye(3), translation + np.array([-0.012, 0.004, -0.015]))]
    on_object = fit_to_depth(start, surface, depth, CAMERA, NO_HANDS, _pixels(visible_ball))
    everywhere = fit_to_depth(start, surface, depth, CAMERA, NO_HANDS)
    assert 1000 * np.linalg.norm(on_object.translation - translation) < 1.5
    assert 1000 * np.linalg.norm(everywhere.translation - translation) > 5.0


def test_an_object_network_with_the_head_takes_the_pixel_path_through_the_estimator(tmp_path, monkeypatch):
    """The shipped hand network with an object network that has the segmentation head (random weights: its cells
    are all about 5/6 'object'): with a depth image the fit gets the object crop's pixels (and nothing off the
    crop), the full fits are paused for OBJECT_SEARCH_INTERVAL - 1 frames after one that found nothing,
    and without a depth image no pixels are made."""
    from pathlib import Path

    from hand_object_pose.export.preset_export import ExportRequest, export_preset
    from hand_object_pose.inference import object_depth_fit, per_hand
    from hand_object_pose.inference.estimator import Estimator, EstimatorConfig
    from hand_object_pose.synthetic.scene import SceneConfig, SceneGenerator

    object_network = tmp_path / "object.onnx"
    export_preset(ExportRequest("hand_heatmap_r18h", object_network, weight_storage="compact",
                                overrides={"object_segmentation": True}))
    model = Path(__file__).resolve().parents[2] / "models" / "default" / "hand_heatmap_r18h.onnx"
    estimator = Estimator(EstimatorConfig(model="hand_heatmap_r18h", model_path=str(model), warmup_runs=0,
                                          object_model_path=str(object_network), threads=1))
    calls = []
    real_fit = object_depth_fit.fit_to_depth

    def spied(starts, surface, depth_m, camera, segments, pixels=None):
        calls.append((len(starts), pixels))
        return real_fit(starts, surface, depth_m, camera, segments, pixels)

    monkeypatch.setattr(object_depth_fit, "fit_to_depth", spied)
    monkeypatch.setattr(per_hand, "MIN_SEGMENTED_CONFIDENCE", 2.0)   # nothing is reported: each search finds nothing
    scene = next(s for s in (SceneGenerator(SceneConfig(image_size=(256, 256))).sample(2001, i) for i in range(20))
                 if s.objects)
    for _ in range(per_hand.OBJECT_SEARCH_INTERVAL + 1):   # the coarse pass finds the object on every frame
        estimator.estimate(scene.rgb, scene.K, depth_m=scene.depth)
    assert len(calls) == 2, [n for n, _ in calls]   # a search, a pause of 4 frames, the next search
    starts, pixels = calls[0]
    assert pixels is not None and starts - len(per_hand.RAY_STARTS_M) in (24, 1)   # its turns (a ball: one)
    assert pixels.object.shape == scene.depth.shape and pixels.object.sum() > 100
    assert not (pixels.object & pixels.background).any() and pixels.class_votes.sum() == pytest.approx(1.0)
    calls.clear()
    estimator.reset_tracking()
    estimator.estimate(scene.rgb, scene.K, depth_m=None)
    assert calls == []
