"""`python -m hand_object_pose.tools.package_default_model`: a training checkpoint becomes models/default
(compact ONNX + metadata.json with held-out metrics beside the mean-pose baseline's), which the demo
reads; a held-out split rendered with the training seed is refused."""
import dataclasses
import json

import pytest
import torch

from hand_object_pose.models.kpt import PRESETS, build
from hand_object_pose.synthetic.objects import default_objects
from hand_object_pose.synthetic.scene import SceneConfig, SceneGenerator
from hand_object_pose.tools.demo import read_metadata
from hand_object_pose.tools.package_default_model import main
from hand_object_pose.datasets.synthetic import write_meta, write_sample
from hand_object_pose.synthetic.scene import GENERATOR_VERSION

TINY = {"enc_layers": 1}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Synthetic train (seed 3) / test (seed 4) splits, a tiny lite checkpoint and its training YAML."""
    root = tmp_path_factory.mktemp("package")
    generator = SceneGenerator(SceneConfig(image_size=(128, 96)))
    for split, seed, count in (("train", 3, 4), ("test", 4, 3), ("same_seed", 3, 2)):
        write_meta(root / "data" / split, seed, count, (128, 96), default_objects(), GENERATOR_VERSION)
        for i in range(count):
            write_sample(root / "data" / split, i, generator.sample(seed, i))
    torch.manual_seed(0)
    model = build(dataclasses.replace(PRESETS["kpt_h2o3d_3d_lite"], **TINY))
    checkpoint = root / "latest.pt"
    torch.save({"model": model.state_dict(), "optimizer": {}, "epoch": 5, "step": 6250, "task": "kpt"}, checkpoint)
    config = root / "train.yaml"
    config.write_text("model: kpt_h2o3d_3d_lite\nmodel_overrides: {enc_layers: 1}\n"
                      "dataset:\n  train: {type: synthetic, root: data/train}\ntrain: {epochs: 5, batch_size: 16}\n")
    return root, checkpoint, config


def test_checkpoint_becomes_the_default_model_with_its_numbers(run):
    root, checkpoint, config = run
    out = root / "default"
    assert main([str(checkpoint), "--train-config", str(config), "--data", str(root / "data"),
                 "--out", str(out)]) == 0
    onnx_path = out / "kpt_h2o3d_3d_lite.onnx"
    meta = json.loads((out / "metadata.json").read_text())
    assert read_metadata(onnx_path)["preset"] == "kpt_h2o3d_3d_lite"  # what the demo reads
    assert meta["trained"] is True and meta["model_file"] == onnx_path.name
    assert meta["input"]["size"] == 128 and meta["joint_order"]["joints"][20] == "wrist"
    assert meta["weight_storage"]["bytes_after"] == onnx_path.stat().st_size
    assert meta["training"]["steps"] == 6250 and meta["training"]["config"]["model_overrides"] == TINY
    assert "4 frames rendered with seed 3" in meta["training"]["data"]
    assert f"3 frames, seed 4, generator version {GENERATOR_VERSION}" in meta["evaluation"]["test_data"]
    evaluation = meta["evaluation"]
    for name in ("model_gt_crop", "model_pipeline_crop", "mean_pose_baseline"):
        assert evaluation[name]["counts"]["frames"] == 3, name
        assert 0.0 <= evaluation[name]["hand_presence_accuracy"] <= 1.0
    assert evaluation["mean_pose_baseline"]["mpjpe_mm"]  # the labelled sides, scored
    assert meta["date"]


def test_the_stages_that_started_the_run_are_recorded_with_it(run, capsys):
    root, checkpoint, config = run
    earlier = root / "stage1.yaml"
    earlier.write_text("model: kpt_h2o3d_3d_lite\nmodel_overrides: {input_size: 64}\ntrain: {out_dir: runs/stage1}\n")
    out = root / "staged"
    assert main([str(checkpoint), "--train-config", str(config), "--earlier-stage-config", str(earlier),
                 "--data", str(root / "data"), "--out", str(out), "--limit", "1"]) == 0
    training = json.loads((out / "metadata.json").read_text())["training"]
    assert training["earlier_stages"] == [{"model": "kpt_h2o3d_3d_lite", "model_overrides": {"input_size": 64},
                                           "train": {"out_dir": "runs/stage1"}}]
    assert main([str(checkpoint), "--train-config", str(config), "--earlier-stage-config", str(root / "gone.yaml"),
                 "--data", str(root / "data"), "--out", str(out)]) == 2
    assert "gone.yaml is not a file" in capsys.readouterr().err


def test_a_test_split_with_the_training_seed_is_refused(run, capsys):
    root, checkpoint, config = run
    assert main([str(checkpoint), "--train-config", str(config), "--data", str(root / "data"),
                 "--test-split", "same_seed", "--out", str(root / "refused")]) == 2
    assert "has the training seed 3" in capsys.readouterr().err
    assert not (root / "refused").exists()


def test_an_object_network_ships_beside_the_model_and_is_named_in_its_record(run):
    """--object-checkpoint: a second run of the same (per-hand-crop) preset is exported beside the model and named in
    its export record, so that an Estimator of the model runs its object crops there; packaging again without it
    leaves no stale object network behind."""
    from hand_object_pose.inference.estimator import Estimator, EstimatorConfig
    from hand_object_pose.models.registry import get_preset

    root, _, _ = run
    family, config = get_preset("hand_heatmap_r18h")
    checkpoints = []
    for seed, step in ((0, 100), (1, 200)):
        torch.manual_seed(seed)
        checkpoints.append(root / f"hand_heatmap_{seed}.pt")
        torch.save({"model": family.build(config).state_dict(), "step": step, "task": "hand_heatmap"}, checkpoints[-1])
    train_config = root / "hand_heatmap.yaml"
    train_config.write_text("model: hand_heatmap_r18h\ndataset:\n  train: {type: synthetic, root: data/train}\n"
                            "train: {epochs: 1, batch_size: 4}\n")
    out = root / "with_object"
    assert main([str(checkpoints[0]), "--train-config", str(train_config), "--object-checkpoint", str(checkpoints[1]),
                 "--object-train-config", str(train_config), "--data", str(root / "data"), "--out", str(out)]) == 0
    meta = json.loads((out / "metadata.json").read_text())
    record = json.loads((out / "hand_heatmap_r18h.onnx.json").read_text())
    assert meta["object_model_file"] == record["object_model_file"] == "hand_heatmap_r18h_object.onnx"
    assert meta["object_training"]["steps"] == 200 and meta["training"]["steps"] == 100
    estimator = Estimator(EstimatorConfig(model="hand_heatmap_r18h", model_path=str(out / "hand_heatmap_r18h.onnx"),
                                          warmup_runs=0, threads=1))
    assert estimator.object_model_in_use == str(out / "hand_heatmap_r18h_object.onnx")
    assert main([str(checkpoints[0]), "--train-config", str(train_config), "--data", str(root / "data"),
                 "--out", str(out), "--limit", "1"]) == 0
    assert not (out / "hand_heatmap_r18h_object.onnx").exists()
    assert "object_model_file" not in json.loads((out / "metadata.json").read_text())
    assert main([str(checkpoints[0]), "--train-config", str(train_config), "--object-checkpoint", str(checkpoints[1]),
                 "--data", str(root / "data"), "--out", str(root / "refused")]) == 2   # no --object-train-config
    assert not (root / "refused").exists()


def test_a_coarse_network_ships_at_its_own_input_size_and_is_named_in_the_record(run):
    """--coarse-checkpoint: a run of the same preset at another input size (its training config's model_overrides)
    is exported beside the model as its coarse network and named in its record; an Estimator of the packaged model
    runs its coarse pass there."""
    from hand_object_pose.inference.estimator import Estimator, EstimatorConfig
    from hand_object_pose.models.registry import get_preset

    root, _, _ = run
    family, config = get_preset("hand_heatmap_r18h")
    torch.manual_seed(0)
    checkpoint = root / "hand_heatmap_coarse.pt"
    torch.save({"model": family.build(config).state_dict(), "step": 300, "task": "hand_heatmap"}, checkpoint)
    train_config, coarse_config = root / "hand.yaml", root / "coarse.yaml"
    dataset = "dataset:\n  train: {type: synthetic, root: data/train}\ntrain: {epochs: 1, batch_size: 4}\n"
    train_config.write_text("model: hand_heatmap_r18h\n" + dataset)
    coarse_config.write_text("model: hand_heatmap_r18h\nmodel_overrides: {input_size: 160}\n" + dataset)
    out = root / "with_coarse"
    assert main([str(checkpoint), "--train-config", str(train_config), "--coarse-checkpoint", str(checkpoint),
                 "--coarse-train-config", str(coarse_config), "--data", str(root / "data"), "--out", str(out),
                 "--limit", "1"]) == 0
    meta = json.loads((out / "metadata.json").read_text())
    record = json.loads((out / "hand_heatmap_r18h.onnx.json").read_text())
    assert meta["coarse_model_file"] == record["coarse_model_file"] == "hand_heatmap_r18h_coarse.onnx"
    assert meta["coarse_training"]["steps"] == 300 and meta["coarse_training"]["seeds"] == []
    assert "object_model_file" not in meta
    estimator = Estimator(EstimatorConfig(model="hand_heatmap_r18h", model_path=str(out / "hand_heatmap_r18h.onnx"),
                                          warmup_runs=0, threads=1))
    assert estimator.coarse_model_in_use == str(out / "hand_heatmap_r18h_coarse.onnx")
    assert estimator._per_hand.coarse_adapter.input_size == 160
    # A companion trained on the held-out split's seed is refused too (here the coarse run trained on the test split).
    leaky = root / "coarse_on_test.yaml"
    leaky.write_text("model: hand_heatmap_r18h\nmodel_overrides: {input_size: 160}\n"
                     f"dataset:\n  train: {{type: synthetic, root: {root / 'data' / 'test'}}}\n"
                     "train: {epochs: 1, batch_size: 4}\n")
    assert main([str(checkpoint), "--train-config", str(train_config), "--coarse-checkpoint", str(checkpoint),
                 "--coarse-train-config", str(leaky), "--data", str(root / "data"), "--out", str(root / "leaky")]) == 2
    assert not (root / "leaky").exists()


def test_a_network_trained_for_handedness_is_recorded_so_and_the_pipeline_reads_its_presence(run):
    """A training config with side_crops (the crops' presence trained to tell a right from a left hand): the export
    record says hand_side_cue "presence", and an Estimator of the packaged model checks new hands' sides with it;
    without side_crops, the heat-maps' peakedness."""
    from hand_object_pose.inference.estimator import Estimator, EstimatorConfig
    from hand_object_pose.inference.per_hand import SIDE_CUE_PEAKEDNESS, SIDE_CUE_PRESENCE
    from hand_object_pose.models.registry import get_preset

    root, _, _ = run
    family, config = get_preset("hand_heatmap_r18h")
    torch.manual_seed(0)
    checkpoint = root / "hand_heatmap_sides.pt"
    torch.save({"model": family.build(config).state_dict(), "step": 10, "task": "hand_heatmap"}, checkpoint)
    for side_crops, cue in ((8, SIDE_CUE_PRESENCE), (0, SIDE_CUE_PEAKEDNESS)):
        train_config = root / f"sides_{side_crops}.yaml"
        train_config.write_text(f"model: hand_heatmap_r18h\ntask: {{side_crops: {side_crops}}}\n"
                                "dataset:\n  train: {type: synthetic, root: data/train}\ntrain: {epochs: 1, batch_size: 4}\n")
        out = root / f"sides_{side_crops}"
        assert main([str(checkpoint), "--train-config", str(train_config), "--data", str(root / "data"),
                     "--out", str(out), "--limit", "1"]) == 0
        record = json.loads((out / "hand_heatmap_r18h.onnx.json").read_text())
        assert record.get("hand_side_cue", SIDE_CUE_PEAKEDNESS) == cue
        estimator = Estimator(EstimatorConfig(model="hand_heatmap_r18h", model_path=str(out / "hand_heatmap_r18h.onnx"),
                                              warmup_runs=0, threads=1))
        assert estimator._per_hand.side_cue == cue
    record["hand_side_cue"] = "vote"
    (out / "hand_heatmap_r18h.onnx.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match=r"hand_side_cue 'vote' is not one of \('peakedness', 'presence'\)"):
        Estimator(EstimatorConfig(model="hand_heatmap_r18h", model_path=str(out / "hand_heatmap_r18h.onnx"),
                                  warmup_runs=0, threads=1))


def test_rescore_replaces_the_models_numbers_with_todays_pipelines_and_keeps_the_rest(run, capsys):
    """--rescore: the packaged model's held-out numbers are computed again (here the same pipeline: the same numbers
    where a sentinel was written), `evaluation.rescored` says when, the training record and baseline are kept; a
    split with a training seed, or an OUT without a model, is refused."""
    root, checkpoint, config = run
    out = root / "rescored"
    assert main([str(checkpoint), "--train-config", str(config), "--data", str(root / "data"), "--out", str(out)]) == 0
    path = out / "metadata.json"
    packaged = json.loads(path.read_text())
    edited = json.loads(path.read_text())
    edited["evaluation"]["model_gt_crop"] = {"sentinel": True}
    edited["evaluation"]["mean_pose_baseline"]["sentinel"] = True
    path.write_text(json.dumps(edited))
    assert main(["--rescore", "--data", str(root / "data"), "--out", str(out)]) == 0
    rescored = json.loads(path.read_text())
    assert rescored["evaluation"]["model_gt_crop"] == packaged["evaluation"]["model_gt_crop"]
    assert rescored["evaluation"]["model_pipeline_crop"] == packaged["evaluation"]["model_pipeline_crop"]
    assert rescored["evaluation"]["mean_pose_baseline"]["sentinel"] is True   # kept as packaged
    assert rescored["evaluation"]["rescored"]["date"] and rescored["training"] == packaged["training"]
    assert main(["--rescore", "--data", str(root / "data"), "--test-split", "same_seed", "--out", str(out)]) == 2
    assert "has the training seed 3" in capsys.readouterr().err
    assert main(["--rescore", "--data", str(root / "data"), "--out", str(root / "nothing")]) == 2
    assert "no packaged model to re-score" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--rescore", str(checkpoint), "--data", str(root / "data"), "--out", str(out)])
    with pytest.raises(SystemExit):
        main(["--data", str(root / "data"), "--out", str(out)])
