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


def test_a_short_handedness_run_from_an_export_trains_and_scores_the_side(two_hand_split, tmp_path):
    """The shipped default's fine-tuning path: a (random) export's weights recovered (tools.weights_from_onnx), then
    a few steps with side_crops and frozen norms; the held-out log has the side accuracy, the norms' statistics are
    the recovered ones, and the checkpoint resumes."""
    import json

    import torch

    from hand_object_pose.export.preset_export import ExportRequest, export_preset
    from hand_object_pose.tools.weights_from_onnx import main as recover
    from hand_object_pose.training.hand_heatmap_run import main as train

    export = export_preset(ExportRequest("hand_heatmap_r18h", tmp_path / "default.onnx", weight_storage="compact"))
    assert recover([str(export.onnx_path), str(tmp_path / "recovered.pt")]) == 0
    recovered = torch.load(tmp_path / "recovered.pt", weights_only=True)["model"]
    config = tmp_path / "side.yaml"
    config.write_text(
        "model: hand_heatmap_r18h\n"
        f"task: {{initial_weights: {tmp_path / 'recovered.pt'}, steps: 3, warmup_steps: 1, hand_crops: 2, side_crops: 2,"
        " freeze_norm: true, object_crops: 1, frame_crops: 1, threads: 1, eval_every_steps: 3, eval_limit: 4,"
        " min_visible_joints: 1}\n"
        f"dataset:\n  train: {{type: synthetic, roots: [{two_hand_split}]}}\n  val: {{type: synthetic, root: {two_hand_split}}}\n"
        f"train: {{batch_size: 4, lr: 1.0e-4, amp: false, progress_bar: false, tensorboard: false, out_dir: {tmp_path / 'run'}}}\n")
    assert train([str(config)]) == 0
    log = [json.loads(line) for line in (tmp_path / "run" / "heldout.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in log] == [0, 3] and all(0.0 <= entry["side_acc"] <= 1.0 for entry in log)
    state = torch.load(tmp_path / "run" / "latest.pt", weights_only=True)
    assert state["step"] == 3
    assert torch.equal(state["model"]["backbone.bn1.running_var"], recovered["backbone.bn1.running_var"])
    assert not torch.equal(state["model"]["presence.weight"], recovered["presence.weight"])
