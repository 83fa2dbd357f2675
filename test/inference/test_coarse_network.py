"""A coarse network (EstimatorConfig.coarse_model_path): a second export of the per-hand-crop preset, at its own input
size, that runs the pipeline's coarse pass (the whole-frame crop that finds the hands); the hand crops stay on the
model. Real ONNX Runtime sessions over real exports (random weights: only which network sees which crop is checked)."""
import json
from pathlib import Path

import numpy as np
import pytest

from hand_object_pose.export.preset_export import ExportError, ExportRequest, export_preset
from hand_object_pose.inference.config import EstimatorConfig
from hand_object_pose.inference.estimator import Estimator
from hand_object_pose.synthetic.scene import SceneConfig, SceneGenerator

MODEL = Path(__file__).resolve().parents[2] / "models" / "default" / "hand_heatmap_r18h.onnx"


@pytest.fixture(scope="module")
def coarse_network(tmp_path_factory):
    path = tmp_path_factory.mktemp("coarse") / "coarse.onnx"
    export_preset(ExportRequest("hand_heatmap_r18h", path, weight_storage="compact", overrides={"input_size": 160},
                                coarse_network=True))
    return path


@pytest.fixture(scope="module")
def scene():
    return SceneGenerator(SceneConfig(image_size=(256, 256))).sample(2001, 0)


def _spy(estimator) -> list:
    """The image sides each network of the estimator's pipeline is called with: [("coarse" | "model", side)]."""
    calls = []
    per_hand = estimator._per_hand
    for name, attribute in (("coarse", "coarse_run"), ("model", "run")):
        real = getattr(per_hand, attribute)
        if real is None:   # no coarse network: the model runs the coarse pass
            continue

        def spied(inputs, real=real, name=name):
            calls.append((name, inputs["image"].shape[-1]))
            return real(inputs)

        setattr(per_hand, attribute, spied)
    return calls


def test_the_coarse_pass_runs_on_the_coarse_network_at_its_own_size(coarse_network, scene):
    estimator = Estimator(EstimatorConfig(model="hand_heatmap_r18h", model_path=str(MODEL), warmup_runs=0,
                                          object_model_path="none", coarse_model_path=str(coarse_network), threads=1))
    assert estimator.coarse_model_in_use == str(coarse_network)
    calls = _spy(estimator)
    estimator.estimate(scene.rgb, scene.K, depth_m=scene.depth)
    assert calls[0] == ("coarse", 160)                      # the whole frame, once, on the coarse network
    assert calls.count(("coarse", 160)) == 1
    assert calls[1:] and all(call == ("model", 128) for call in calls[1:])   # every hand crop on the model


def test_a_record_names_the_coarse_network_and_none_keeps_the_model(coarse_network, scene, tmp_path):
    model = tmp_path / "model.onnx"
    model.write_bytes(MODEL.read_bytes())
    record = json.loads(Path(f"{MODEL}.json").read_text())
    record.pop("object_model_file", None)
    record["coarse_model_file"] = str(coarse_network)
    Path(f"{model}.json").write_text(json.dumps(record))
    named = Estimator(EstimatorConfig(model="hand_heatmap_r18h", model_path=str(model), warmup_runs=0, threads=1))
    assert named.coarse_model_in_use == str(coarse_network)
    plain = Estimator(EstimatorConfig(model="hand_heatmap_r18h", model_path=str(model), warmup_runs=0, threads=1,
                                      coarse_model_path="none"))
    assert plain.coarse_model_in_use == ""
    assert plain._per_hand.coarse_run is None and plain._per_hand.coarse_adapter is plain._adapter
    calls = _spy(plain)
    plain.estimate(scene.rgb, scene.K, depth_m=scene.depth)
    assert calls and all(call == ("model", 128) for call in calls)


def test_bad_coarse_settings_are_refused_with_their_name(coarse_network):
    with pytest.raises(ValueError, match="coarse_model_path"):
        EstimatorConfig(model="hand_heatmap_r18h", model_path=str(MODEL), coarse_model_path="coarse.pt").validate()
    with pytest.raises(ValueError, match="coarse_model_path.*hand_heatmap"):
        Estimator(EstimatorConfig(model="kpt_h2o3d_3d_lite", model_path="kpt.onnx", warmup_runs=0,
                                  coarse_model_path=str(coarse_network)))


def test_only_a_coarse_network_may_change_the_input_size(tmp_path):
    with pytest.raises(ExportError, match="input 160 px"):
        export_preset(ExportRequest("hand_heatmap_r18h", tmp_path / "x.onnx", overrides={"input_size": 160}))
    assert not (tmp_path / "x.onnx").exists()
