"""Synthetic scenes: ground truth consistent with the pixels, MANO parameters reproduce the hands,
deterministic per (seed, index), with both renderers. (Writing them to disk and reading them back as
Samples: test/training/test_synthetic_dataset.py.)"""
import numpy as np
import pytest
import torch

from hand_object_pose.geometry.mano import ManoLayer
from hand_object_pose.synthetic.objects import default_objects
from hand_object_pose.synthetic.scene import LABEL_IDS, SceneConfig, SceneGenerator
from hand_object_pose.geometry.hand_model_files import standin_hand_path

SIZE = (160, 120)


@pytest.fixture(scope="module", params=["torch", "gl"])
def generator(request):
    torch.set_num_threads(1)
    try:
        return SceneGenerator(SceneConfig(image_size=SIZE), renderer=request.param)
    except RuntimeError as exc:  # no OpenGL here: the torch renderer is still tested
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def samples(generator):
    return [generator.sample(7, i) for i in range(6)]


def test_images_and_labels_have_the_documented_types(samples):
    for s in samples:
        assert s.rgb.shape == (120, 160, 3) and s.rgb.dtype == np.uint8
        assert s.depth.shape == (120, 160) and s.depth.dtype == np.float32
        assert set(np.unique(s.labels)) <= set(LABEL_IDS.values())
        assert ((s.depth > 0) == (s.labels > 0)).all()
        assert 1 <= len(s.hands) <= 2 and list(s.hands) in (["right"], ["left"], ["right", "left"])
        assert s.depth[s.depth > 0].min() > 0.15 and s.depth.max() < 1.2


def test_hand_ground_truth_matches_the_render(samples):
    layers = {side: ManoLayer(standin_hand_path(side)) for side in ("right", "left")}
    for s in samples:
        for side, hand in s.hands.items():
            # MANO-format parameters (camera frame) reproduce the 3D joints.
            out = layers[side](torch.tensor(hand.mano_pose[None, :3], dtype=torch.float32),
                               torch.tensor(hand.mano_pose[None, 3:], dtype=torch.float32),
                               torch.tensor(hand.mano_shape[None], dtype=torch.float32),
                               torch.tensor(hand.mano_trans[None], dtype=torch.float32))
            np.testing.assert_allclose(out.joints[0].numpy(), hand.joints_cam, atol=1e-5)
            # 2D joints are the projection of the 3D joints.
            p = hand.joints_cam @ s.K.T
            np.testing.assert_allclose(hand.joints_2d, p[:, :2] / p[:, 2:], atol=1e-6)
            # A visible joint lies on this hand's pixels, not behind a surface more than 2.5 cm in front
            # (joints are inside the finger; at a silhouette edge the pixel may show a farther part).
            for (u, v), visible, z in zip(hand.joints_2d, hand.joints_visible, hand.joints_cam[:, 2]):
                if visible:
                    row, col = int(round(v)), int(round(u))
                    assert s.labels[row, col] == LABEL_IDS[side]
                    assert s.depth[row, col] > z - 0.025
            assert hand.mask_pixels == int((s.labels == LABEL_IDS[side]).sum())
    visible = [h.joints_visible.mean() for s in samples for h in s.hands.values()]
    assert 0.2 < np.mean(visible) < 0.9  # self- and object occlusion hide some joints, not all


def test_object_pose_matches_the_render(samples):
    meshes = {o.object_id: o for o in default_objects()}
    seen = 0
    for s in samples:
        for obj in s.objects:
            seen += 1
            vertices = meshes[obj.object_id].vertices @ obj.rotation.T + obj.translation
            np.testing.assert_allclose(obj.rotation @ obj.rotation.T, np.eye(3), atol=1e-9)
            if obj.mask_pixels < 50:
                continue
            # The object's pixels lie inside the projection of its posed mesh's bounding box, and its
            # nearest surface depth equals the posed mesh's nearest visible vertex depth.
            uv = vertices @ s.K.T
            uv = uv[:, :2] / uv[:, 2:]
            rows, cols = np.nonzero(s.labels == LABEL_IDS["object"])
            assert cols.min() >= uv[:, 0].min() - 1 and cols.max() <= uv[:, 0].max() + 1
            assert rows.min() >= uv[:, 1].min() - 1 and rows.max() <= uv[:, 1].max() + 1
            assert s.depth[rows, cols].min() >= vertices[:, 2].min() - 1e-3
    assert seen >= 3


def test_grasping_hands_touch_but_do_not_cut_into_the_object(generator):
    meshes = {o.object_id: o for o in default_objects()}
    grasps = 0
    for i in range(12):
        s = generator.sample(11, i)
        for obj in s.objects:
            model = meshes[obj.object_id]
            for hand in s.hands.values():
                depth = model.penetration((hand.vertices - obj.translation) @ obj.rotation)
                assert depth.max() <= 0.0021, (i, hand.side, hand.style, depth.max())
                if hand.style == "grasp":
                    grasps += 1
                    # In reach: some hand vertex within 2 cm of the object's surface region.
                    local = (hand.vertices - obj.translation) @ obj.rotation
                    gap = np.min(np.linalg.norm(local[:, None] - model.vertices[None], axis=2))
                    assert gap < 0.02, (i, gap)
    assert grasps >= 5


def test_scenes_are_deterministic_and_varied(generator, samples):
    again = generator.sample(7, 2)
    np.testing.assert_array_equal(again.rgb, samples[2].rgb)
    np.testing.assert_array_equal(again.depth, samples[2].depth)
    assert not np.array_equal(generator.sample(8, 2).rgb, samples[2].rgb)
    assert len({s.K[0, 0] for s in samples}) == len(samples)


def test_palms_are_lighter_and_nails_sit_on_the_backs_of_the_fingertips(generator):
    layer = generator.layers["right"]
    weights = layer.mano.lbs_weights.numpy()
    template = layer.mano.v_template.numpy()
    distal = np.isin(weights.argmax(axis=1), [3, 6, 9, 12, 15])
    assert generator.nail[~distal].max() == 0.0 and generator.nail[distal].max() == 1.0
    # Fingers (not thumb) point along +y with their backs at -z in the stand-in frame.
    fingers_nails = generator.nail > 0.5
    assert fingers_nails.sum() >= 10
    palm = (generator.layers["right"].mano.lbs_weights.numpy().argmax(axis=1) == 0) & (template[:, 1] > 0.02)
    palmar_side = palm & (template[:, 2] > 0.01)
    dorsal_side = palm & (template[:, 2] < -0.01)
    assert generator.palmar[palmar_side].mean() > 0.9 and generator.palmar[dorsal_side].mean() < 0.1
    skin = np.array([0.4, 0.26, 0.18])
    colors = generator.skin_colors(np.random.default_rng(0), skin, template)
    assert colors[palmar_side].mean() > colors[dorsal_side].mean() + 0.05


def test_hands_that_would_not_be_visible_are_left_out():
    strict = SceneGenerator(SceneConfig(image_size=SIZE, min_hand_pixels=10 ** 9), renderer="torch")
    for i in range(3):
        s = strict.sample(7, i)
        assert s.hands == {}
        assert not np.isin(s.labels, [LABEL_IDS["right"], LABEL_IDS["left"]]).any()
    # The threshold is what decides: the same scenes keep their hands with the default threshold.
    assert any(SceneGenerator(SceneConfig(image_size=SIZE), renderer="torch").sample(7, i).hands for i in range(3))


@pytest.mark.parametrize("field,value", [("p_left", 1.5), ("image_size", (8, 8)), ("distance_range", (0.5, 0.2))])
def test_bad_scene_config_is_named(field, value):
    with pytest.raises(ValueError, match=field):
        SceneConfig(**{field: value})


def test_two_hands_without_an_object_can_face_each_other():
    from hand_object_pose.geometry.rotations import axis_angle_to_matrix

    config = SceneConfig(image_size=SIZE, p_object=0.0, p_right=1.0, p_left=1.0, p_hands_facing=1.0)
    generator = SceneGenerator(config, renderer="torch")
    pairs = 0
    for i in range(6):
        s = generator.sample(9, i)
        if len(s.hands) < 2:
            continue  # one hand hid the other
        pairs += 1
        normals = [axis_angle_to_matrix(h.mano_pose[:3])[:, 2] for h in s.hands.values()]
        assert normals[0] @ normals[1] == pytest.approx(-1.0, abs=1e-6)  # palm towards palm
        palms = [0.5 * (h.joints_cam[0] + h.joints_cam[9]) for h in s.hands.values()]
        assert np.linalg.norm(palms[0] - palms[1]) < 0.15
        assert s.labels[s.labels > 0].size > 0 and set(np.unique(s.labels)) <= {0, 1, 2, 4, 5}  # hands, arms
    assert pairs >= 3
