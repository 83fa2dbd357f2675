"""EstimatorConfig validation: every bad field is named with what is allowed."""
import pytest

from hand_object_pose.inference.config import EstimatorConfig


def make(**kw):
    values = dict(model="kpt_h2o3d_3d", model_path="model.onnx")
    values.update(kw)
    return EstimatorConfig(**values)


def test_defaults_are_valid_and_aliases_expand():
    config = make(providers=["tensorrt", "CUDA", "cpu"]).validate()
    assert config.providers == ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
    assert config.smoothing is False and config.crop_source == "auto"
    make(backend="torch", model_path="", allow_random_weights=True, device="cuda:1", fp16=True).validate()
    make(crop_source="fixed", fixed_roi=[10, 20, 100, 120]).validate()


@pytest.mark.parametrize("field, value, expected", [
    ("model", "", "preset name"),
    ("backend", "tensorflow", "one of"),
    ("model_path", "", "the model file"),
    ("model_path", "model.pt", "a .onnx file"),
    ("device", "gpu", "'cpu', 'cuda' or 'cuda:N'"),
    ("providers", "cuda", "non-empty list"),
    ("providers", ("cuda", "vulkan"), r"not \['vulkan'\]"),
    ("threads", -1, "integer >= 0"),
    ("warmup_runs", 1.5, "integer >= 0"),
    ("model_overrides", {"backbone_depth": 18}, "empty for backend='onnxruntime'"),
    ("crop_source", "yolo", "one of"),
    ("detector_min_score", 1.5, "<= 1.0"),
    ("detector_redetect_interval", -1, "integer >= 0"),
    ("camera_mirrored", "yes", "true or false"),
    ("fixed_roi", (1, 2, 3), r"\(x, y, width, height\)"),
    ("crop_margin", 0.9, ">= 1.0"),
    ("min_crop_size_px", 2.0, ">= 8.0"),
    ("presence_threshold", 1.5, "<= 1.0"),
    ("track_lost_after", 0, "integer >= 1"),
    ("depth_sources", ("default", "fit_2d"), "'default' \\(if given\\) last"),
    ("depth_sources", ("lidar",), "distinct names"),
    ("depth_joints", (0, 21), "0..20"),
    ("depth_window_px", -1, "integer >= 0"),
    ("depth_min_m", 0.0, "> 0.0"),
    ("depth_max_m", 0.05, "> 0.1"),
    ("depth_min_valid", 0, "integer >= 1"),
    ("hand_surface_offset_m", 0.5, "<= 0.1"),
    ("fit_min_joint_confidence", float("nan"), "finite number"),
    ("hand_size_m", 5.0, "<= 2.0"),
    ("default_depth_m", -1.0, "> 0.0"),
    ("object_catalogue", None, "a string"),
    ("one_euro_min_cutoff_hz", 0.0, "> 0.0"),
    ("one_euro_beta", -1.0, ">= 0.0"),
    ("smoothing", "yes", "true or false"),
])
def test_invalid_field_is_named(field, value, expected):
    with pytest.raises(ValueError, match=rf"EstimatorConfig\.{field}=.* is invalid: expected .*{expected}"):
        make(**{field: value}).validate()


def test_fixed_crop_needs_roi_and_fp16_torch_needs_cuda():
    with pytest.raises(ValueError, match="fixed_roi"):
        make(crop_source="fixed").validate()
    with pytest.raises(ValueError, match="fp16"):
        make(backend="torch", model_path="m.pt", fp16=True).validate()


def test_from_dict_rejects_unknown_keys_and_converts_lists():
    config = EstimatorConfig.from_dict({"model": "a2j_ih26m", "model_path": "a.onnx", "depth_joints": [0, 9]})
    assert config.validate().depth_joints == (0, 9)
    with pytest.raises(ValueError, match=r"unknown EstimatorConfig field\(s\) \['crop_sorce'\]"):
        EstimatorConfig.from_dict({"model": "x", "crop_sorce": "auto"})
