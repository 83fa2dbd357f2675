"""The object pose fitted to a depth image (inference/object_depth_fit.py): rendered depth images of the synthetic
objects, fits from perturbed and wrongly turned starts, hands that cover the object, and the Estimator's use of it
on generated scenes with the shipped default networks."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hand_object_pose.evaluation.objects import rotation_error_deg, symmetries_of
from hand_object_pose.inference.object_depth_fit import AXIS_TURNS, HandCover, depth_agreement, \
    distance_to_segments, fit_to_depth, hand_segments, refine_to_depth, sample_surface, start_turns
from hand_object_pose.synthetic.raster import render_mesh
from inference.object_scene_fixtures import CAMERA, K, NO_HANDS, OBJECTS, SIZE, turn


def _depth(*meshes) -> np.ndarray:
    """(H, W) metres, 0 = nothing: the nearest of the posed meshes ((vertices, faces) pairs, camera frame)."""
    depth = np.full(SIZE[::-1], np.inf)
    for vertices, faces in meshes:
        rendered = render_mesh(vertices, faces, K, SIZE[::-1]).depth.numpy()   # (height, width)
        depth = np.where(rendered > 0, np.minimum(depth, rendered), depth)
    return np.where(np.isfinite(depth), depth, 0.0).astype(np.float32)


def _posed(object_id, rotation, translation):
    model = OBJECTS[object_id]
    return model.vertices @ rotation.T + translation, model.faces


def _errors(fit_rotation, fit_translation, rotation, translation, object_id):
    symmetries = symmetries_of(OBJECTS[object_id].symmetry)
    return (1000.0 * float(np.linalg.norm(fit_translation - translation)),
            rotation_error_deg(fit_rotation, rotation, symmetries))


ROTATION = turn([1.0, 0.4, 0.2], 35.0)
TRANSLATION = np.array([0.02, -0.01, 0.55])


def test_surface_samples_lie_on_the_mesh_with_outward_normals_and_repeat_per_seed():
    box = OBJECTS["synthetic_box"]
    surface = sample_surface(box.vertices, box.faces, count=400, seed=3)
    half = np.abs(box.vertices).max(axis=0)
    on_a_face = np.isclose(np.abs(surface.points), half, atol=1e-9).any(axis=1)
    assert surface.points.shape == surface.normals.shape == (400, 3) and on_a_face.all()
    assert np.allclose(np.linalg.norm(surface.normals, axis=1), 1.0)
    assert (np.einsum("ij,ij->i", surface.points, surface.normals) > 0).all()   # a box is convex about its centre
    again = sample_surface(box.vertices, box.faces, count=400, seed=3)
    assert np.array_equal(again.points, surface.points)
    assert not np.array_equal(sample_surface(box.vertices, box.faces, count=400, seed=4).points, surface.points)
    with pytest.raises(ValueError, match="no area"):
        sample_surface(np.zeros((3, 3)), np.array([[0, 1, 2]]))


def test_a_box_pose_two_centimetres_and_twelve_degrees_off_is_fitted_to_its_depth_image():
    box = OBJECTS["synthetic_box"]
    depth = _depth(_posed("synthetic_box", ROTATION, TRANSLATION))
    surface = sample_surface(box.vertices, box.faces)
    start = (turn([0.3, 1.0, -0.5], 12.0) @ ROTATION, TRANSLATION + np.array([0.012, -0.01, 0.012]))
    assert min(_errors(*start, ROTATION, TRANSLATION, "synthetic_box")) > 10.0
    fit = fit_to_depth([start], surface, depth, CAMERA, NO_HANDS)
    millimetres, degrees = _errors(fit.rotation, fit.translation, ROTATION, TRANSLATION, "synthetic_box")
    assert millimetres < 1.0 and degrees < 1.0
    assert fit.agreement.agreement > 0.95 and fit.agreement.behind == 0


def test_a_box_started_along_the_wrong_axis_is_found_among_the_24_turns():
    """A start turned 90 degrees about the box's x axis (its 9 cm side where its 5 cm side should be): one fit
    from it stays wrong; the turns of `start_turns` contain the right axis, and its fit agrees best."""
    box = OBJECTS["synthetic_box"]
    depth = _depth(_posed("synthetic_box", ROTATION, TRANSLATION))
    surface = sample_surface(box.vertices, box.faces)
    wrong = ROTATION @ turn([1.0, 0.0, 0.0], 90.0) @ turn([0.2, 1.0, 0.3], 8.0)
    no_hands = HandCover(depth, CAMERA, NO_HANDS)
    alone = refine_to_depth(wrong, TRANSLATION, surface, depth, CAMERA, no_hands, 16, (0.03, 0.01))
    assert _errors(*alone, ROTATION, TRANSLATION, "synthetic_box")[1] > 30.0
    turns = start_turns(box.symmetry)
    fit = fit_to_depth([(wrong @ turn, TRANSLATION) for turn in turns], surface, depth, CAMERA, NO_HANDS)
    millimetres, degrees = _errors(fit.rotation, fit.translation, ROTATION, TRANSLATION, "synthetic_box")
    assert millimetres < 1.5 and degrees < 1.5
    assert fit.agreement.score > depth_agreement(*alone, surface, depth, CAMERA, no_hands).score


def test_a_hand_in_front_of_the_object_is_set_aside_by_its_bones():
    """A ball half covered by a 'hand' (a slab 2 cm in front of it, over its left half): with the hand's bones
    given, the fit stays on the ball; without them it slides towards the hand's surface."""
    ball = OBJECTS["synthetic_sphere"]
    rotation, translation = np.eye(3), np.array([0.0, 0.0, 0.5])
    slab_vertices = np.array([[x, y, z] for x in (-0.12, -0.005) for y in (-0.06, 0.06) for z in (0.44, 0.46)])
    slab_faces = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1], [2, 3, 7], [2, 7, 6],
                           [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])
    depth = _depth(_posed("synthetic_sphere", rotation, translation), (slab_vertices, slab_faces))
    # "Bones" through the slab, as a hand's estimated joints lie inside the hand.
    joints = np.zeros((21, 3))
    joints[:, 0] = np.linspace(-0.1, -0.02, 21)
    joints[:, 2] = 0.45
    bones = hand_segments([joints])
    assert bones.shape == (21, 2, 3)   # 20 bones and the forearm
    surface = sample_surface(ball.vertices, ball.faces)
    start = [(rotation, translation + np.array([-0.012, 0.004, -0.015]))]
    with_hand = fit_to_depth(start, surface, depth, CAMERA, bones)
    without = fit_to_depth(start, surface, depth, CAMERA, NO_HANDS)
    assert 1000 * np.linalg.norm(with_hand.translation - translation) < 1.5
    assert 1000 * np.linalg.norm(without.translation - translation) > 5.0
    # The slab reaches further from the bones than HAND_CLEARANCE_M at its edges.
    assert with_hand.agreement.covered_by_hands > 3 * with_hand.agreement.covered_by_other


def test_depth_agreement_tells_free_space_from_cover():
    """At the true pose the visible samples agree; moved 3 cm towards the camera the camera sees past them
    (behind); moved 3 cm away something nearer covers them (covered by the hands when bones lie there)."""
    box = OBJECTS["synthetic_box"]
    depth = _depth(_posed("synthetic_box", ROTATION, TRANSLATION))
    surface = sample_surface(box.vertices, box.faces)
    no_hands = HandCover(depth, CAMERA, NO_HANDS)
    true = depth_agreement(ROTATION, TRANSLATION, surface, depth, CAMERA, no_hands)
    assert true.agreeing > 0.95 * true.visible and true.agreement > 0.95
    nearer = depth_agreement(ROTATION, TRANSLATION - [0, 0, 0.03], surface, depth, CAMERA, no_hands)
    assert nearer.behind > 0.5 * nearer.visible and nearer.score < 0
    further = depth_agreement(ROTATION, TRANSLATION + [0, 0, 0.03], surface, depth, CAMERA, no_hands)
    assert further.covered_by_other > 0.5 * further.visible and further.agreement < 0.2
    bones = np.array([[TRANSLATION - [0.1, 0, 0.03], TRANSLATION + [0.1, 0, -0.03]]])
    by_hands = depth_agreement(ROTATION, TRANSLATION + [0, 0, 0.03], surface, depth, CAMERA,
                               HandCover(depth, CAMERA, bones))
    assert by_hands.covered_by_hands > 0 and by_hands.covered_by_other < further.covered_by_other


def test_a_hand_at_the_objects_depth_is_no_evidence_for_it():
    """A ball posed on a 'hand' (a slab 1 cm deep at the ball's front) where no ball is: the slab's depth agrees with
    the posed front, but with the hand's bones given those samples are the hand's own surface, not agreement."""
    ball = OBJECTS["synthetic_sphere"]
    surface = sample_surface(ball.vertices, ball.faces)
    radius = float(np.max(np.linalg.norm(ball.vertices, axis=1)))
    centre = np.array([0.0, 0.0, 0.5])
    front = centre[2] - radius
    slab_vertices = np.array([[x, y, z] for x in (-0.15, 0.15) for y in (-0.15, 0.15)
                              for z in (front - 0.005, front + 0.005)])
    slab_faces = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1], [2, 3, 7], [2, 7, 6],
                           [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])
    depth = _depth((slab_vertices, slab_faces))
    # "Fingers" side by side over the slab, 2 cm apart: every slab point within 1 cm of a bone.
    bones = np.array([[[-0.1, y, front], [0.1, y, front]] for y in np.arange(-0.1, 0.101, 0.02)])
    without = depth_agreement(np.eye(3), centre, surface, depth, CAMERA, HandCover(depth, CAMERA, NO_HANDS))
    with_hand = depth_agreement(np.eye(3), centre, surface, depth, CAMERA, HandCover(depth, CAMERA, bones))
    assert without.agreeing > 10 and without.covered_by_hands == 0
    assert with_hand.agreeing < 0.1 * without.agreeing
    assert with_hand.covered_by_hands >= without.agreeing - with_hand.agreeing


def test_start_turns_are_the_24_axis_turns_or_one_for_a_ball():
    assert len(AXIS_TURNS) == 24 and np.allclose(AXIS_TURNS[0], np.eye(3))
    assert np.allclose(np.linalg.det(AXIS_TURNS), 1.0)
    assert len({tuple(np.rint(t).astype(int).ravel()) for t in AXIS_TURNS}) == 24
    assert len(start_turns({"kind": "discrete", "axis": [0, 0, 1], "order": 2})) == 24
    assert len(start_turns({"kind": "spherical"})) == 1


def test_distance_to_segments_is_to_the_nearest_point_of_the_nearest_segment():
    segments = np.array([[[0.0, 0, 0], [1.0, 0, 0]], [[0.0, 2, 0], [0.0, 3, 0]]])
    points = np.array([[0.5, 0.5, 0.0], [2.0, 0.0, 0.0], [0.0, 4.0, 0.0]])
    assert np.allclose(distance_to_segments(points, segments), [0.5, 1.0, 1.0])
    assert np.isinf(distance_to_segments(points, NO_HANDS)).all()


def test_hand_cover_marks_the_pixels_whose_measured_point_is_near_a_bone_and_keeps_them():
    depth = np.full(SIZE[::-1], 0.5, np.float32)
    bone = np.array([[[0.0, 0.0, 0.5], [0.05, 0.0, 0.5]]])   # on the optical axis, 5 cm to the right, at 0.5 m
    cover = HandCover(depth, CAMERA, bone)
    width = SIZE[0]
    centre, right, far = 119 * width + 160, 119 * width + 160 + 30, 119 * width + 160 + 60   # 0, 5, 10 cm
    assert cover.covers(np.array([centre, right, far])).tolist() == [True, True, False]
    depth[:] = 0.6   # asked again: the answers kept, not recomputed
    assert cover.covers(np.array([far, centre])).tolist() == [False, True]
    assert not HandCover(depth, CAMERA, NO_HANDS).covers(np.array([centre])).any()


DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "models" / "default" / "hand_heatmap_r18h.onnx"


def test_the_estimator_fits_the_default_networks_objects_to_the_depth_image():
    """Generated scenes (generator defaults, seed 2001, the calibration split's) through the shipped default networks
    with ground-truth hand boxes: with the depth image the reported objects are fitted ("object_fit" timed) and
    are millimetres from the truth where they are right, where the heat-map pose alone is centimetres off."""
    from hand_object_pose.geometry.camera import box_around_points
    from hand_object_pose.inference.estimator import Estimator, EstimatorConfig
    from hand_object_pose.synthetic.scene import SceneConfig, SceneGenerator

    generator = SceneGenerator(SceneConfig(image_size=(256, 256)))   # the training and evaluation splits' size
    estimator = Estimator(EstimatorConfig(model="hand_heatmap_r18h", model_path=str(DEFAULT_MODEL), warmup_runs=0,
                                          crop_source="roi", threads=1))
    fitted, heatmap_only = [], []
    for index in range(48):
        scene = generator.sample(2001, index)
        if not scene.objects:
            continue
        label = scene.objects[0]
        boxes = {side: box_around_points(hand.joints_2d, enlarge=1.0) for side, hand in scene.hands.items()}
        for depth, errors in ((scene.depth, fitted), (None, heatmap_only)):
            estimator.reset_tracking()
            result = estimator.estimate(scene.rgb, scene.K, depth_m=depth, hand_rois=boxes)
            if result.objects:
                assert ("object_fit" in result.timings_ms) == (depth is not None)
            for obj in result.objects:
                if obj.object_id == label.object_id:
                    errors.append(1000 * np.linalg.norm(obj.translation - label.translation))
    # With the networks of 5 Dec 2026: 10 and 12 objects of the right class; the fit put 5 within 1 mm, the
    # heat-maps none within 5 mm (the rest of the fits: a mug's handle on the wrong side, a box or ball mostly
    # covered by the hands). With the object network of 6 Dec (generator version 12): 14 and 13; the fit 10 within
    # 1 mm (median 0.5 mm), the heat-maps one within 3 mm (median 20.8 mm).
    assert len(fitted) >= 8 and len(heatmap_only) >= 4, (fitted, heatmap_only)
    assert np.sum(np.asarray(fitted) < 1.0) >= 4, fitted
    assert np.median(heatmap_only) > 10.0 and np.sum(np.asarray(heatmap_only) < 3.0) <= 1, heatmap_only
    assert np.median(fitted) < 0.2 * np.median(heatmap_only), (fitted, heatmap_only)


def test_a_pose_out_of_sight_never_wins_over_one_the_depth_image_speaks_against():
    """A pose whose samples all fall outside the image (no visible sample: the depth image says nothing) ranks last,
    below a pose the image contradicts (negative score), so the fit keeps a pose it has seen."""
    box = OBJECTS["synthetic_box"]
    depth = _depth(_posed("synthetic_box", ROTATION, TRANSLATION))
    surface = sample_surface(box.vertices, box.faces)
    no_hands = HandCover(depth, CAMERA, NO_HANDS)
    unseen = depth_agreement(ROTATION, TRANSLATION + [3.0, 0.0, 0.0], surface, depth, CAMERA, no_hands)
    contradicted = depth_agreement(ROTATION, TRANSLATION - [0, 0, 0.03], surface, depth, CAMERA, no_hands)
    assert unseen.visible == 0 and unseen.agreement == 0.0
    assert contradicted.score < 0 and unseen.score < contradicted.score
    fit = fit_to_depth([(ROTATION, TRANSLATION + [3.0, 0.0, 0.0]), (ROTATION, TRANSLATION - [0, 0, 0.03])],
                       surface, depth, CAMERA, NO_HANDS)
    assert fit.agreement.visible > 0 and np.linalg.norm(fit.translation - TRANSLATION) < 0.03   # not 3 m away
