"""Keypoint Transformer training task: batches from real crops, ground-truth tokens early on, the
official per-group learning rates, and a short run that lowers the loss (small real KPT)."""
import numpy as np
import pytest
import torch

from dataset_fixtures import write_ho3d
from hand_object_pose.datasets import H2O3DDataset
from hand_object_pose.training.distributed import init_distributed
from hand_object_pose.training.engine import CropDataset, TrainConfig, Trainer
from hand_object_pose.training.tasks import build_task
from hand_object_pose.training.tasks.kpt import _object_mask

SMALL = dict(backbone_depth=18, enc_layers=1, dec_layers=1, dropout=0.0)


def _task(gt_token_epochs=25):
    return build_task("kpt_h2o3d_3d", SMALL, dict(enabled=False), dict(gt_token_epochs=gt_token_epochs))


def test_batch_targets_and_object_mask(tmp_path):
    write_ho3d(tmp_path, two_hands=True)
    task = _task()
    crops = [CropDataset(H2O3DDataset(tmp_path, "train"), task.augmentation, 0, task.input_size)[0]]
    batch = task.collate(crops)
    assert batch["image"].shape == (1, 3, 256, 256)
    assert batch["joint_valid"][0, 0].all() and not batch["joint_valid"][0, 1].any()  # left hand absent
    assert float(batch["obj_weight"][0]) == 1.0
    mask = batch["obj_mask"][0].numpy()
    obj = crops[0].objects[0]
    centre = crops[0].intrinsics @ obj.translation
    u, v = (centre[:2] / centre[2]) / 2  # crop px -> 128 grid
    assert mask.sum() > 10 and 0 <= round(v) < 128 and mask[int(round(v)), int(round(u))] == 1.0
    targets = task.targets(batch)
    assert targets.heatmap.shape == (1, 128, 128) and float(targets.heatmap.max()) > 100  # Gaussians x 255
    assert _object_mask(crops[0], obj, 64).shape == (64, 64)


def test_loss_weights_replace_official_terms_by_name(tmp_path):
    write_ho3d(tmp_path, two_hands=True)
    official, weighted = _task(), build_task("kpt_h2o3d_3d", SMALL, dict(enabled=False),
                                             dict(loss_weights={"hand_type": 1.0}))
    assert official.criterion.weights.hand_type == 0.0 and weighted.criterion.weights.hand_type == 1.0
    assert weighted.criterion.weights.joint_vec == official.criterion.weights.joint_vec
    batch = weighted.collate([CropDataset(H2O3DDataset(tmp_path, "train"), weighted.augmentation, 0,
                                          weighted.input_size)[0]])
    torch.manual_seed(0)
    losses = weighted.loss(weighted.build_model(), batch)
    assert float(losses["hand_type"].detach()) > 0.0  # the presence head now learns (left hand absent here)
    with pytest.raises(ValueError, match="task.loss_weights: .*hand_tipe.*allowed: heatmap"):
        build_task("kpt_h2o3d_3d", SMALL, None, dict(loss_weights={"hand_tipe": 1.0}))


def test_parameter_groups_follow_the_official_learning_rates():
    task = _task()
    model = task.build_model()
    slow, fast = task.parameter_groups(model, 1e-4)
    assert slow["lr"] == 1e-5 and fast["lr"] == 1e-4
    n_slow, n_fast = sum(p.numel() for p in slow["params"]), sum(p.numel() for p in fast["params"])
    assert n_slow > 0 and n_fast > 0
    assert n_slow + n_fast == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert all(not p.requires_grad for n, p in model.backbone.named_parameters() if "bn" in n)


def test_short_kpt_run_lowers_the_loss_and_reports_metrics(tmp_path):
    torch.set_num_threads(1)
    write_ho3d(tmp_path / "h2o", two_hands=True)
    reader = H2O3DDataset(tmp_path / "h2o", "train")
    task = _task(gt_token_epochs=100)
    config = TrainConfig(epochs=8, batch_size=1, lr=3e-4, out_dir=str(tmp_path / "run"), progress_bar=False,
                         tensorboard=False, log_every_steps=1)
    result = Trainer(task, config, init_distributed("cpu"), reader, reader).fit()
    losses = [h["total"] for h in result.history]
    assert len(losses) == 8 and np.mean(losses[-2:]) < 0.7 * np.mean(losses[:2]), losses
    metrics = result.evaluations[-1]
    assert np.isfinite(metrics["mpjpe_right_mm"]) and 0.0 <= metrics["hand_presence_accuracy"] <= 1.0


def test_2p5d_evaluation_lifts_ground_truth_bins_to_the_labels(tmp_path):
    """The 2.5D evaluation (bins -> crop px and parent-relative depth -> camera joints at the true wrist depth,
    through intrinsics recovered from the labels) gives back the labelled hands from the ground-truth bins, up
    to the bins' quantisation (64 grid: 2 px of a 128 px crop; depth bins of 4.7 mm per bone)."""
    write_ho3d(tmp_path, two_hands=True)
    task = build_task("kpt_ih26m_2p5d_r18", {**SMALL, "heatmap_size": 64}, dict(enabled=False),
                      dict(joint_2p5d_loss="cross_entropy"))
    assert task.criterion.joint_2p5d_loss == "cross_entropy" and task.input_size == 128
    dataset = CropDataset(H2O3DDataset(tmp_path, "train"), task.augmentation, 0, task.input_size)
    batch = task.collate([dataset[i] for i in range(min(len(dataset), 4))])
    bins = task.targets(batch).joint_2p5d.round()
    lifted = task._lift_2p5d(bins, batch)
    gt, valid = batch["joints_cam"], batch["joint_valid"]
    error = ((lifted - lifted[..., :1, :]) - (gt - gt[..., :1, :])).norm(dim=-1)[valid]
    assert valid.sum() > 0 and float(error.mean()) < 0.006 and float(error.max()) < 0.02
    shifted = bins.clone()
    shifted[:, 3, 0] += 5                        # one joint of the right hand (IH order) 10 px off in x
    moved = task._lift_2p5d(shifted, batch)
    changed = (moved - lifted).norm(dim=-1)
    solved = valid.flatten(1).sum(dim=1) >= 3                         # samples whose intrinsics were recovered
    assert (changed > 0.003).sum(dim=(1, 2))[solved].tolist() == [1] * int(solved.sum())   # that joint alone
