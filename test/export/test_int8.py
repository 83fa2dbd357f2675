"""int8 exports (export.quantize, tools.export_onnx --precision int8): which operators stay in float, a small
preset's int8 file loads and runs in ONNX Runtime with its outputs within a stated drift of fp32, the file
and the record say int8, and the Estimator reports (and can require) the precision."""
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from hand_object_pose.export.onnx import export_onnx, ort_session
from hand_object_pose.export.quantize import (keep_float_nodes, output_drift, precision_of, quantize_int8,
                                              split_transposed_convolutions)
from hand_object_pose.inference.config import EstimatorConfig
from hand_object_pose.inference.estimator import Estimator
from hand_object_pose.tools import export_onnx as export_cli

PRESET = "kpt_h2o3d_3d_lite"     # the smallest KPT (128 px): keypoint selection, transformer, heads
# Stated drift bound of every float output of the int8 file vs fp32 on rendered crops never calibrated on
# (random weights; measured 0.13 at most): max |int8 - fp32| / max |fp32|. Keypoint tokens must be identical.
FLOAT_DRIFT_BOUND = 0.25


class Picker(torch.nn.Module):
    """conv -> relu -> conv (features) -> head conv -> argmax, and a linear output: a miniature KPT."""

    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(),
                                        torch.nn.Conv2d(16, 16, 3, padding=1), torch.nn.ReLU())
        self.head = torch.nn.Conv2d(16, 1, 1)
        self.fc = torch.nn.Linear(16, 4)

    def forward(self, image):
        features = self.body(image)
        peak = self.head(features).flatten(1).argmax(dim=1)
        return peak, self.fc(features.mean(dim=(2, 3)))


@pytest.fixture(scope="module")
def picker(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("picker")
    path = export_onnx(Picker().eval(), (torch.rand(1, 3, 16, 16),), folder / "picker.onnx", ("image",),
                       ("peak", "out"))
    return folder, path


def test_decisions_and_outputs_stay_in_float_the_body_does_not(picker):
    _, path = picker
    model = onnx.load(str(path))
    kept = set(keep_float_nodes(model))
    by_type = {}
    for node in model.graph.node:
        by_type.setdefault(node.op_type, []).append(node.name)
    convs = by_type["Conv"]
    assert by_type["ArgMax"][0] in kept
    head = [n for n in model.graph.node if n.op_type == "Conv" and n.output[0] in
            {i for m in model.graph.node if m.op_type in ("Reshape", "Flatten") for i in m.input}]
    assert head and head[0].name in kept                     # the last weighted layer before the argmax
    assert convs[0] not in kept and convs[1] not in kept    # the body before it is quantized
    assert by_type["Gemm"][0] in kept                        # its result is a graph output


def test_quantize_int8_small_graph(picker):
    folder, path = picker
    rng = np.random.default_rng(0)
    feeds = [{"image": rng.random((1, 3, 16, 16), dtype=np.float32)} for _ in range(4)]
    report = quantize_int8(path, folder / "picker.int8.onnx", feeds)
    assert report.quantized.get("Conv") == 2 and report.calibration_frames == 4
    int8 = onnx.load(str(folder / "picker.int8.onnx"))
    assert precision_of({m.key: m.value for m in int8.metadata_props}) == "int8"
    drift = output_drift(path, folder / "picker.int8.onnx", feeds)
    assert drift["peak"]["differing"] == 0.0 and drift["out"]["relative"] < 0.05


class BatchedProduct(torch.nn.Module):
    """x @ W with a 3-D constant W (A2J's attention has such products): kept in float, the file runs."""

    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(8, 8)
        self.weight = torch.nn.Parameter(torch.randn(2, 8, 8))

    def forward(self, x):
        return torch.matmul(self.proj(x).view(-1, 2, 4, 8), self.weight).sum(dim=(1, 2))


def test_batched_products_with_3d_constants_stay_float_and_run(tmp_path):
    torch.manual_seed(0)
    path = export_onnx(BatchedProduct().eval(), (torch.rand(1, 8, 8),), tmp_path / "bmm.onnx", ("x",), ("y",))
    model = onnx.load(str(path))
    batched = [n.name for n in model.graph.node if n.op_type == "MatMul" and any(
        len(i.dims) == 3 for i in model.graph.initializer if i.name in n.input)]
    assert batched and set(batched) <= set(keep_float_nodes(model))
    feeds = [{"x": np.random.default_rng(i).random((1, 8, 8), dtype=np.float32)} for i in range(3)]
    quantize_int8(path, tmp_path / "bmm.int8.onnx", feeds)
    drift = output_drift(path, tmp_path / "bmm.int8.onnx", feeds)   # runs (ORT refused per-channel 3-D weights)
    assert drift["y"]["relative"] < 0.05


def _deconvolutions(tmp_path):
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.ConvTranspose2d(8, 6, 4, 2, 1), torch.nn.ReLU(),
                                 torch.nn.ConvTranspose2d(6, 4, 4, 2, 1, bias=False)).eval()
    return export_onnx(module, (torch.rand(1, 8, 5, 7),), tmp_path / "deconv.onnx", ("x",), ("y",))


def _split_matches(path, model, tmp_path):
    onnx.checker.check_model(model)
    onnx.save(model, str(tmp_path / "split.onnx"))
    x = np.random.default_rng(0).random((2, 8, 5, 7), dtype=np.float32)
    ref = ort_session(path).run(None, {"x": x})[0]
    got = ort_session(tmp_path / "split.onnx").run(None, {"x": x})[0]
    assert got.shape == ref.shape == (2, 4, 20, 28)
    assert np.abs(got - ref).max() <= 1e-6 * np.abs(ref).max()


def test_split_transposed_convolutions_is_exact(tmp_path):
    path = _deconvolutions(tmp_path)
    model = onnx.load(str(path))
    assert split_transposed_convolutions(model) == 2
    # widths known: the phases are interleaved channels-last (transposes, concatenations, reshapes)
    assert {n.op_type for n in model.graph.node} == {"Conv", "Concat", "Reshape", "Transpose", "Relu"}
    # the ReLU reading the first deconvolution moved onto its four phases (before the interleave)
    relu_inputs = [n.input[0] for n in model.graph.node if n.op_type == "Relu"]
    assert len(relu_inputs) == 4 and all("/phase" in name for name in relu_inputs)
    _split_matches(path, model, tmp_path)


def test_split_falls_back_to_depth_to_space_without_static_widths(tmp_path):
    path = _deconvolutions(tmp_path)
    model = onnx.load(str(path))
    for tensor in [*model.graph.input, *model.graph.output]:
        tensor.type.tensor_type.shape.dim[3].dim_param = "width"     # the width is no longer known
    assert split_transposed_convolutions(model) == 2
    assert {n.op_type for n in model.graph.node} == {"Conv", "Concat", "DepthToSpace", "Relu"}
    _split_matches(path, model, tmp_path)


def test_int8_interleave_moves_uint8_data_without_transposes(tmp_path):
    """In ONNX Runtime's optimized int8 graph the split deconvolutions' interleave is concatenations and
    reshapes between channels-last int8 convolutions: its transposes cancel against the ones ORT inserts."""
    path = _deconvolutions(tmp_path)
    feeds = [{"x": np.random.default_rng(i).random((1, 8, 5, 7), dtype=np.float32)} for i in range(3)]
    quantize_int8(path, tmp_path / "deconv.int8.onnx", feeds)
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    options.log_severity_level = 3
    ort.InferenceSession(str(tmp_path / "deconv.int8.onnx"), options, providers=["CPUExecutionProvider"])
    optimized = onnx.load(str(tmp_path / "optimized.onnx"))
    kinds = [n.op_type for n in optimized.graph.node]
    assert kinds.count("QLinearConv") == 8 and kinds.count("QLinearConcat") == 6
    # only the graph's own boundaries: its input to channels-last, its output back to channels-first
    # (4 with Concat + DepthToSpace instead)
    assert kinds.count("Transpose") == 2 and "DepthToSpace" not in kinds
    assert output_drift(path, tmp_path / "deconv.int8.onnx", feeds)["y"]["relative"] < 0.05


@pytest.fixture(scope="module")
def int8_export(tmp_path_factory):
    folder = tmp_path_factory.mktemp("int8")
    out = folder / f"{PRESET}.int8.onnx"
    status = export_cli.main([PRESET, str(out), "--random-weights", "--precision", "int8", "--calibration-frames",
                              "4"])
    assert status == 0
    return out, json.loads((folder / f"{PRESET}.int8.onnx.json").read_text())


def test_int8_file_records_and_runs_within_the_stated_drift(int8_export):
    out, record = int8_export
    assert record["precision"] == "int8"
    assert record["int8"]["calibration"]["frames"] == 4
    assert record["int8"]["quantized_operators"]["Conv"] >= 20      # the ResNet-18 backbone and decoder
    assert record["int8"]["quantized_operators"]["MatMul"] >= 20    # the transformer's projections
    session = ort_session(out, threads=2)
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["precision"] == "int8"
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    image = np.random.default_rng(3).random((1, 3, 128, 128), dtype=np.float32)
    names = [o.name for o in session.get_outputs()]
    outputs = dict(zip(names, session.run(None, {"image": image})))
    assert all(np.isfinite(v).all() for v in outputs.values() if v.dtype.kind == "f")
    for name, row in record["int8"]["drift_vs_fp32"]["outputs"].items():
        if name.startswith("token_"):
            assert row.get("differing", row.get("relative")) == 0.0, name
        elif "relative" in row:
            assert row["relative"] <= FLOAT_DRIFT_BOUND, (name, row)


def test_estimator_reports_and_requires_the_precision(int8_export):
    out, _ = int8_export
    estimator = Estimator(EstimatorConfig(model=PRESET, model_path=str(out), threads=2, warmup_runs=1))
    assert estimator.precision_in_use == "int8"
    assert Estimator(EstimatorConfig(model=PRESET, model_path=str(out), precision="int8",
                                     warmup_runs=0)).precision_in_use == "int8"
    with pytest.raises(ValueError, match="--precision fp32"):
        Estimator(EstimatorConfig(model=PRESET, model_path=str(out), precision="fp32", warmup_runs=0))


def test_precision_config_and_cli_errors(tmp_path, capsys):
    with pytest.raises(ValueError, match="precision"):
        EstimatorConfig(model=PRESET, model_path="x.onnx", precision="int4").validate()
    with pytest.raises(ValueError, match="precision"):
        EstimatorConfig(model=PRESET, backend="torch", allow_random_weights=True, precision="int8").validate()
    status = export_cli.main([PRESET, str(tmp_path / "m.onnx"), "--random-weights", "--precision", "int8",
                              "--weights", "compact"])
    assert status == 2 and "compact" in capsys.readouterr().err


def test_an_fp32_export_run_in_int8_is_quantized_once_into_the_cache(tmp_path):
    """precision int8 with an fp32 export (the shipped default): the node's model path becomes the int8
    quantization, made once into the export cache (calibrated on rendered crops as `export_onnx --precision
    int8`) and reused on the next start; the Estimator then runs and reports int8."""
    from pathlib import Path

    from hand_object_pose.export.cache import file_precision, resolve_model_path
    from hand_object_pose.export.preset_export import ExportRequest, export_preset
    from hand_object_pose.ros.pose_node import int8_calibration

    preset = "hand_heatmap_r18h"
    fp32 = tmp_path / "default.onnx"
    export_preset(ExportRequest(preset, fp32, weight_storage="compact"))
    values = {"model": preset, "backend": "onnxruntime", "model_path": str(fp32), "precision": "int8"}
    said: list = []
    path = resolve_model_path(values, tmp_path / "cache", say=said.append, calibration_of=int8_calibration)
    assert Path(path).parent == tmp_path / "cache" and file_precision(path) == "int8" and file_precision(fp32) == "fp32"
    record = json.loads(Path(f"{path}.json").read_text())
    assert record["precision"] == "int8" and record["int8"]["calibration"]["frames"] == 16
    assert record["int8"]["quantized_operators"]["Conv"] >= 20 and set(record["int8"]["drift_vs_fp32"]["outputs"]) == \
        {"points_uv", "points_rel_depth", "points_confidence", "presence", "object_class", "object_heatmap"}
    modified = Path(path).stat().st_mtime_ns
    assert resolve_model_path(values, tmp_path / "cache", say=said.append, calibration_of=int8_calibration) == path
    assert "cache hit" in said[-1] and Path(path).stat().st_mtime_ns == modified
    assert resolve_model_path({**values, "precision": "auto"}, tmp_path / "cache", calibration_of=int8_calibration) \
        == str(fp32)
    estimator = Estimator(EstimatorConfig(model=preset, model_path=path, precision="int8", warmup_runs=0, threads=1))
    assert estimator.precision_in_use == "int8"
    image = np.random.default_rng(0).integers(0, 255, size=(240, 320, 3), dtype=np.uint8)
    K = np.array([[300.0, 0, 160], [0, 300.0, 120], [0, 0, 1]])
    result = estimator.estimate(image, K, hand_rois={"right": np.array([40.0, 60, 70, 80])})
    assert [h.side for h in result.hands] == ["right"] and np.isfinite(result.hands[0].joints_xyz).all()
    # An object network named in the fp32 file's record (the shipped default's) is quantized too (here the same
    # bytes: its int8 file is the cached one above) and named in the int8 file's record by its cached path.
    (tmp_path / "object.onnx").write_bytes(fp32.read_bytes())
    record = json.loads(Path(f"{fp32}.json").read_text())
    Path(f"{fp32}.json").write_text(json.dumps({**record, "object_model_file": "object.onnx"}))
    with_object = resolve_model_path(values, tmp_path / "cache", say=said.append, calibration_of=int8_calibration)
    assert with_object != path and json.loads(Path(f"{with_object}.json").read_text())["object_model_file"] == path
    estimator = Estimator(EstimatorConfig(model=preset, model_path=with_object, warmup_runs=0, threads=1))
    assert estimator.precision_in_use == "int8" and estimator.object_model_in_use == path
    # How the network tells a hand's side (a network trained for handedness) is the same in int8: the int8 record
    # carries the fp32 record's hand_side_cue, and it is part of the cache key.
    Path(f"{fp32}.json").write_text(json.dumps({**record, "object_model_file": "object.onnx", "hand_side_cue": "presence"}))
    sided = resolve_model_path(values, tmp_path / "cache", say=said.append, calibration_of=int8_calibration)
    assert sided != with_object and json.loads(Path(f"{sided}.json").read_text())["hand_side_cue"] == "presence"
    estimator = Estimator(EstimatorConfig(model=preset, model_path=sided, warmup_runs=0, threads=1))
    assert estimator._per_hand.side_cue == "presence"


def test_a_coarse_network_named_in_the_record_is_quantized_at_its_own_input_size(tmp_path):
    """precision int8 with an fp32 export whose record names a coarse network of another input size: the coarse
    network is quantized too (calibrated on the same crops resized to its size), named in the int8 file's record,
    and the Estimator runs its coarse pass there, in int8."""
    from pathlib import Path

    from hand_object_pose.export.cache import file_precision, resolve_model_path
    from hand_object_pose.export.preset_export import ExportRequest, export_preset
    from hand_object_pose.ros.pose_node import int8_calibration

    preset = "hand_heatmap_r18h"
    fp32, coarse = tmp_path / "default.onnx", tmp_path / "coarse.onnx"
    export_preset(ExportRequest(preset, fp32, weight_storage="compact"))
    export_preset(ExportRequest(preset, coarse, weight_storage="compact", overrides={"input_size": 160},
                                coarse_network=True))
    record = json.loads(Path(f"{fp32}.json").read_text())
    Path(f"{fp32}.json").write_text(json.dumps({**record, "coarse_model_file": "coarse.onnx"}))
    values = {"model": preset, "backend": "onnxruntime", "model_path": str(fp32), "precision": "int8"}
    path = resolve_model_path(values, tmp_path / "cache", calibration_of=int8_calibration)
    coarse_int8 = json.loads(Path(f"{path}.json").read_text())["coarse_model_file"]
    assert Path(coarse_int8).parent == tmp_path / "cache" and file_precision(coarse_int8) == "int8"
    estimator = Estimator(EstimatorConfig(model=preset, model_path=path, warmup_runs=0, threads=1))
    assert estimator.precision_in_use == "int8" and estimator.coarse_model_in_use == coarse_int8
    assert estimator._per_hand.coarse_adapter.input_size == 160
