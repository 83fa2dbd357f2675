"""CUDA-graph replay (inference/cuda_graph.py): static-batch sessions, inputs overwritten in place, the fallback.

The replay code is the same on every provider; here it runs on the CPU provider with real ONNX Runtime
sessions (no GPU on this machine: the capture itself was measured on an H200 with bench/device_check.py)."""
import logging

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper

from hand_object_pose.export.onnx import export_onnx
from hand_object_pose.inference.backends import OnnxRuntimeBackend
from hand_object_pose.inference.cuda_graph import CaptureUnavailable, CapturedRuns, static_batch_model


class BatchShaped(torch.nn.Module):
    """A convolution whose outputs are reshaped from the batch axis (on a dynamic-batch graph that shape
    computation runs on the host)."""

    def __init__(self):
        super().__init__()
        self.filters = torch.nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, image):
        maps = self.filters(image)
        return maps.reshape(maps.shape[0], -1).mean(dim=1), maps.flatten(1).argmax(dim=1)


@pytest.fixture
def tiny_path(tmp_path):
    torch.manual_seed(0)
    return export_onnx(BatchShaped().eval(), (torch.rand(1, 3, 8, 8),), tmp_path / "tiny.onnx", ("image",),
                       ("mean", "peak"))


def images(batch, seed):
    return {"image": np.random.default_rng(seed).random((batch, 3, 8, 8), dtype=np.float32)}


def test_static_batch_model_fixes_the_batch_axis_and_keeps_the_outputs(tiny_path):
    model = onnx.load(str(tiny_path))
    fixed = static_batch_model(model, 2)
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"   # the original is untouched
    plain = ort.InferenceSession(str(tiny_path), providers=["CPUExecutionProvider"])
    static = ort.InferenceSession(fixed.SerializeToString(), providers=["CPUExecutionProvider"])
    assert static.get_inputs()[0].shape == [2, 3, 8, 8]
    assert [o.shape[0] for o in static.get_outputs()] == [2, 2]
    feed = images(2, 0)
    for a, b in zip(plain.run(None, feed), static.run(None, feed)):
        np.testing.assert_array_equal(a, b)


def test_captured_runs_match_the_plain_session_one_session_per_batch(tiny_path):
    plain = ort.InferenceSession(str(tiny_path), providers=["CPUExecutionProvider"])
    runs = CapturedRuns(tiny_path, ort.SessionOptions(), ["CPUExecutionProvider"], device="cpu", max_batches=2)
    for seed, batch in enumerate((1, 2, 1, 2, 1)):   # new inputs each call: the in-place update must be read
        feed = images(batch, seed)
        got = runs.run(feed, batch)
        for a, b in zip(plain.run(None, feed), got):
            np.testing.assert_array_equal(a, b)
    assert runs.batch_sizes == [1, 2]
    assert runs.run(images(3, 9), 3) is None            # beyond max_batches: the caller's plain session runs it


def string_model(tmp_path):
    """A graph with a string input: no device buffer can hold it, so it cannot be replayed."""
    graph = helper.make_graph([helper.make_node("Identity", ["text"], ["same"])], "g",
                              [helper.make_tensor_value_info("text", TensorProto.STRING, ["batch"])],
                              [helper.make_tensor_value_info("same", TensorProto.STRING, ["batch"])])
    path = tmp_path / "strings.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    return path


def test_a_graph_that_cannot_be_captured_says_why(tmp_path):
    runs = CapturedRuns(string_model(tmp_path), ort.SessionOptions(), ["CPUExecutionProvider"], device="cpu")
    with pytest.raises(CaptureUnavailable, match=r"'text'.*tensor\(string\)"):
        runs.run({"text": np.array(["a"], dtype=object)}, 1)


def test_backend_falls_back_to_its_plain_session_after_a_failed_capture(tmp_path, caplog):
    path = string_model(tmp_path)
    backend = OnnxRuntimeBackend(str(path), threads=1)
    backend._captured = CapturedRuns(path, ort.SessionOptions(), ["CPUExecutionProvider"], device="cpu")
    assert backend.cuda_graph
    with caplog.at_level(logging.WARNING):
        out = backend.run({"text": np.array(["a", "b"], dtype=object)})
    assert list(out["same"]) == ["a", "b"]
    assert not backend.cuda_graph and "CUDA graph capture failed" in caplog.text


def test_cuda_graph_off_the_cuda_provider_warns_and_changes_nothing(tiny_path, caplog):
    with caplog.at_level(logging.WARNING):
        backend = OnnxRuntimeBackend(str(tiny_path), threads=1, cuda_graph=True)
    assert not backend.cuda_graph
    assert "cuda_graph is set but the network runs on CPUExecutionProvider" in caplog.text
    plain = OnnxRuntimeBackend(str(tiny_path), threads=1)
    feed = images(2, 3)
    np.testing.assert_array_equal(backend.run(feed)["mean"], plain.run(feed)["mean"])
