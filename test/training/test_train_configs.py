"""Every shipped paper-setting config loads, names a known preset and builds its training task."""
from pathlib import Path

import pytest

from hand_object_pose.models.registry import get_preset
from hand_object_pose.training.config import load_experiment
from hand_object_pose.training.tasks import build_task

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "config" / "train").glob("*.yaml"))


def test_there_are_paper_configs():
    assert {p.stem for p in CONFIGS} >= {"a2j_ih26m", "kpt_h2o3d_3d", "kpt_ho3d_3d", "kpt_ih26m_2p5d"}


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_builds_its_task(path):
    experiment = load_experiment(path)
    task = build_task(experiment.model, experiment.model_overrides, experiment.augmentation, experiment.task)
    family, config = get_preset(experiment.model)
    # The crop the task trains on is what the node feeds the exported graph (128 px for the CPU-trained ones).
    assert task.input_size == family.input_size(family.with_overrides(config, experiment.model_overrides))
    assert experiment.train.out_dir.startswith("runs/")
    if task.input_size not in (128, 256) and not path.stem.endswith("_coarse"):
        # A coarse stage (64 px) is never exported: its weights only start a config that trains at 128 px. (A coarse
        # network, `*_coarse.yaml`, is exported at its own size: the Estimator reads it from the graph.)
        assert task.input_size == 64
        assert experiment.train.out_dir + "/latest.pt" in _initial_weights_of_other_configs(path)


def _initial_weights_of_other_configs(path: Path) -> set:
    return {load_experiment(other).task.get("initial_weights") for other in CONFIGS if other != path}


def test_overrides_and_unknown_keys(tmp_path):
    path = CONFIGS[0]
    experiment = load_experiment(path, ("train.epochs=3", "dataset.train.root=/elsewhere"))
    assert experiment.train.epochs == 3 and experiment.dataset["train"]["root"] == "/elsewhere"
    bad = tmp_path / "bad.yaml"
    bad.write_text(path.read_text() + "\noptimiser: sgd\n")
    with pytest.raises(ValueError, match="unknown top-level keys \\['optimiser'\\]"):
        load_experiment(bad)


def test_occrobnet_builds_its_training_task_with_parameter_groups():
    task = build_task("occrobnet_h2o3d_r34", dict(enc_layers=1, dec_layers=1))
    model = task.build_model()
    slow, fast = task.parameter_groups(model, 1e-4)
    assert sum(p.numel() for p in slow["params"]) == sum(p.numel() for p in model.backbone.parameters()
                                                        if p.requires_grad)
    assert fast["params"]
