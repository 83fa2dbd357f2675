"""Compact weight storage: int8 / fp16 initializers with casts that ONNX Runtime folds away, outputs close
to the fp32 file, and the size it promises."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, numpy_helper

from hand_object_pose.export.onnx import export_onnx
from hand_object_pose.export.weight_storage import _int8_per_channel, compact_weights


class Small(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 64, 3, padding=1)           # 1728 weights: fp16
        self.big = torch.nn.Linear(1024, 1024)                     # 2^20 weights: int8
        self.head = torch.nn.Linear(1024, 5)

    def forward(self, image):
        x = torch.relu(self.conv(image)).mean(dim=(2, 3))           # (N, 64)
        x = torch.cat([x] * 16, dim=1)                              # (N, 1024)
        return self.head(torch.relu(self.big(x)))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    model = Small().eval()
    folder = tmp_path_factory.mktemp("storage")
    plain = export_onnx(model, (torch.rand(1, 3, 16, 16),), folder / "plain.onnx", ("image",), ("out",))
    compact = export_onnx(model, (torch.rand(1, 3, 16, 16),), folder / "compact.onnx", ("image",), ("out",))
    return model, plain, compact, compact_weights(compact)


def test_large_tensors_become_int8_and_the_rest_fp16(exported):
    _, plain, compact, report = exported
    stored = {t.name: t.data_type for t in onnx.load(str(compact)).graph.initializer}
    assert stored["big.weight__int8"] == TensorProto.INT8 and "big.weight" not in stored
    assert stored["conv.weight__fp16"] == TensorProto.FLOAT16 and stored["head.weight__fp16"] == TensorProto.FLOAT16
    assert not any(t == TensorProto.FLOAT and not n.endswith("__scale") for n, t in stored.items())
    assert report.int8_tensors == 1 and report.fp16_tensors == 5  # conv, big, head weights + biases
    assert report.bytes_before == plain.stat().st_size
    assert report.bytes_after < 0.3 * report.bytes_before         # 4 MiB of fp32 -> 1 MiB of int8
    assert 0 < report.max_relative_weight_error <= 0.5 / 127 + 1e-6  # half an int8 step of the channel range


def test_outputs_stay_close_and_the_casts_are_folded(exported, tmp_path):
    model, plain, compact, _ = exported
    image = np.random.default_rng(1).random((2, 3, 16, 16), dtype=np.float32)
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    got = ort.InferenceSession(str(compact), options, providers=["CPUExecutionProvider"]).run(None, {"image": image})[0]
    ref = ort.InferenceSession(str(plain), providers=["CPUExecutionProvider"]).run(None, {"image": image})[0]
    with torch.no_grad():
        np.testing.assert_allclose(ref, model(torch.from_numpy(image)).numpy(), rtol=1e-5, atol=1e-6)
    relative = np.abs(got - ref).max() / np.abs(ref).max()
    assert 0 < relative < 2e-2                                      # rounded weights: close, not identical
    ops = {node.op_type for node in onnx.load(options.optimized_model_filepath).graph.node}
    assert "Cast" not in ops and "Mul" not in ops                   # folded into fp32 initializers at load


def test_per_channel_scales_round_trip_each_channel():
    weight = np.stack([np.linspace(-1, 1, 12), np.linspace(-0.01, 0.02, 12), np.zeros(12)]).astype(np.float32)
    values, scales = _int8_per_channel(weight.reshape(3, 3, 4))
    assert values.dtype == np.int8 and scales.shape == (3, 1, 1)
    assert np.abs(values).max() == 127 and (values[2] == 0).all()
    restored = (values * scales).reshape(3, 12)
    for channel in range(2):
        step = np.abs(weight[channel]).max() / 127
        assert np.abs(restored[channel] - weight[channel]).max() <= step / 2 + 1e-9
