"""The body of MediaPipe's landmark network as a backbone (models.backbones.landmark_lite) and the hand_heatmap
preset built on it (issue 17's lever: start from real-photo weights)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hand_object_pose.export.check import check_export
from hand_object_pose.export.preset_export import ExportRequest, export_preset
from hand_object_pose.models.backbones.landmark_lite import LandmarkLiteBackbone
from hand_object_pose.models.hand_heatmap.config import NUM_POINTS, HandHeatmapConfig
from hand_object_pose.models.registry import get_preset
from hand_object_pose.training.landmark_weights import load_landmark_lite_weights
from hand_object_pose.training.tasks.hand_heatmap import HandHeatmapTask

MODELS = Path(__file__).resolve().parents[2] / "models" / "hand_detector"
LANDMARK_ONNX = MODELS / "hand_landmark_lite.onnx"
LAST_FEATURES = "t186"  # the graph's last feature map (after the final depthwise ReLU6), before its pooling


def _onnx_features(image_nhwc: np.ndarray) -> np.ndarray:
    """MediaPipe's network as converted, run by ONNX Runtime up to its last feature map."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(LANDMARK_ONNX))
    model.graph.output.append(onnx.helper.make_tensor_value_info(LAST_FEATURES, onnx.TensorProto.FLOAT, None))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run([LAST_FEATURES], {"image": image_nhwc})[0]


def test_the_converted_body_computes_what_the_original_graph_computes():
    """Every convolution, the "SAME" paddings of the stride-2 ones, the max-pooled shortcut and the ReLU6s in the
    right places: one misplaced padding shifts the features and fails this on a random image."""
    image = np.random.default_rng(0).random((1, 224, 224, 3), dtype=np.float32)
    backbone = LandmarkLiteBackbone().eval()
    load_landmark_lite_weights(backbone, LANDMARK_ONNX)
    with torch.no_grad():
        ours = backbone(torch.from_numpy(image).permute(0, 3, 1, 2)).numpy()
    reference = _onnx_features(image)
    assert ours.shape == reference.shape == (1, 672, 7, 7)
    assert np.abs(ours - reference).max() < 1e-4 * np.abs(reference).max()


def test_a_file_of_another_network_is_refused_with_its_name():
    with pytest.raises(ValueError, match="palm_detection_lite.onnx: 53 convolutions, expected 47"):
        load_landmark_lite_weights(LandmarkLiteBackbone(), MODELS / "palm_detection_lite.onnx")


def test_the_landmark_preset_builds_exports_and_matches_torch(tmp_path):
    family, config = get_preset("hand_heatmap_ll")
    assert config.backbone == "landmark_lite"
    model = family.build(config).eval()
    logits, depth, presence, object_class, segmentation = model(torch.rand(2, 3, 128, 128))
    assert logits.shape == depth.shape == (2, NUM_POINTS, 32, 32)
    assert presence.shape == (2, 3) and object_class.shape == (2, len(config.object_ids))
    assert segmentation is None

    path = tmp_path / "hand_heatmap_ll.onnx"
    export_preset(ExportRequest("hand_heatmap_ll", path, weight_storage="compact"))
    torch.manual_seed(0)  # export_preset's random weights
    result = check_export(family, family.build(config), path, threads=1)
    assert result.ok, result


def test_the_task_starts_the_body_from_the_landmark_weights_and_refuses_them_for_resnet():
    family, config = get_preset("hand_heatmap_ll")
    model = HandHeatmapTask(family, config, backbone_init=str(LANDMARK_ONNX)).build_model()
    reference = LandmarkLiteBackbone()
    load_landmark_lite_weights(reference, LANDMARK_ONNX)
    assert torch.equal(model.backbone.stem.weight, reference.stem.weight)
    assert torch.equal(model.backbone.final_depthwise.bias, reference.final_depthwise.bias)
    with pytest.raises(ValueError, match="only the landmark_lite backbone"):
        HandHeatmapTask(*get_preset("hand_heatmap_r18h"), backbone_init=str(LANDMARK_ONNX))


def test_an_unknown_backbone_is_refused():
    with pytest.raises(ValueError, match="backbone must be one of"):
        HandHeatmapConfig(backbone="resnet50")
