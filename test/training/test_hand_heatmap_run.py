"""The per-hand heat-map network's training loop (training/hand_heatmap_run.py): which hands a step crops."""
import numpy as np
import pytest

from hand_object_pose.training.hand_heatmap_run import SyntheticFrames, hand_picks


@pytest.fixture(scope="module")
def two_hand_split(tmp_path_factory):
    """Six rendered synthetic frames (128x96), each with a right and a left hand in view."""
    from hand_object_pose.datasets.synthetic import write_meta, write_sample
    from hand_object_pose.synthetic.objects import default_objects
    from hand_object_pose.synthetic.scene import SceneConfig, SceneGenerator

    root = tmp_path_factory.mktemp("synthetic") / "train"
    generator = SceneGenerator(SceneConfig(image_size=(128, 96), p_left=1.0, p_right=1.0))
    write_meta(root, 9, 6, (128, 96), default_objects())
    for i in range(6):
        write_sample(root, i, generator.sample(9, i))
    return root


def _left_share(frames, picks) -> float:
    return float(np.mean([frames.items[i][2][0] == "left" for i in picks]))


def test_a_left_hand_share_draws_that_share_of_left_hands(two_hand_split):
    frames = SyntheticFrames([two_hand_split], min_visible_joints=1)
    assert frames.left_hands and frames.right_hands
    assert sorted(frames.left_hands + frames.right_hands) == frames.hands
    picks = hand_picks(frames, 20, 0.75, np.random.default_rng(0))
    assert len(picks) == 20 and _left_share(frames, picks) == 0.75
    assert _left_share(frames, hand_picks(frames, 20, 0.2, np.random.default_rng(0))) == 0.2


def test_without_a_share_every_hand_is_drawn_as_before(two_hand_split):
    """Share 0 keeps the draw of the shipped default's recipe: the same RNG calls on the same list of hands."""
    frames = SyntheticFrames([two_hand_split], min_visible_joints=1)
    expected = list(np.random.default_rng(3).choice(frames.hands, 12))
    assert hand_picks(frames, 12, 0.0, np.random.default_rng(3)) == expected
