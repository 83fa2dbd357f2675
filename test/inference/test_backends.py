"""Backends with a real (tiny) ONNX model: outputs, provider check, missing and corrupt files."""
import logging

import numpy as np
import pytest
import torch

from hand_object_pose.export.onnx import export_onnx
from hand_object_pose.inference.backends import (ALLOW_SPINNING_KEY, GpuUnavailableError, OnnxRuntimeBackend,
                                                 TorchBackend, provider_options)


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, image):
        features = self.conv(image)
        return features.mean(dim=(2, 3)), features.amax(dim=(1, 2, 3))


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    torch.manual_seed(0)
    module = Tiny().eval()
    path = export_onnx(module, (torch.rand(1, 3, 16, 16),), tmp_path_factory.mktemp("onnx") / "tiny.onnx",
                       ["image"], ["mean", "peak"])
    return module, path


def test_onnxruntime_matches_torch(tiny_onnx):
    module, path = tiny_onnx
    backend = OnnxRuntimeBackend(str(path), threads=1)
    assert backend.in_use == "onnxruntime:CPUExecutionProvider" and not backend.on_gpu
    image = np.random.default_rng(0).random((1, 3, 16, 16), dtype=np.float32)
    out = backend.run({"image": image})
    torch_out = TorchBackend(module, ["image"], ["mean", "peak"]).run({"image": image})
    assert set(out) == {"mean", "peak"} and torch_out["mean"].shape == (1, 4)
    for name in out:
        np.testing.assert_allclose(out[name], torch_out[name], atol=1e-5)
    with pytest.raises(ValueError, match=r"missing ONNX inputs \['image'\]"):
        backend.run({"img": image})


def test_sessions_do_not_busy_wait_and_report_whether_they_take_batches(tiny_onnx, tmp_path):
    """Idle intra-op workers sleep (on 2 cores a spinning pool steals the CPU from the next network: the default
    pipeline took about twice the CPU time with spinning); a fixed first axis means one crop per call."""
    module, path = tiny_onnx
    backend = OnnxRuntimeBackend(str(path), threads=2)
    assert backend.session.get_session_options().get_session_config_entry(ALLOW_SPINNING_KEY) == "0"
    assert backend.takes_batches
    batch = np.random.default_rng(1).random((3, 3, 16, 16), dtype=np.float32)
    together = backend.run({"image": batch})
    for k in range(3):   # each crop of a batch gets what it gets alone
        alone = backend.run({"image": batch[k:k + 1]})
        for name in together:
            np.testing.assert_allclose(together[name][k:k + 1], alone[name], rtol=1e-5, atol=1e-6)
    fixed = export_onnx(module, (torch.rand(1, 3, 16, 16),), tmp_path / "fixed.onnx", ["image"], ["mean", "peak"],
                        dynamic_batch=False)
    assert not OnnxRuntimeBackend(str(fixed), threads=1).takes_batches
    assert TorchBackend(module, ["image"], ["mean", "peak"]).takes_batches


def test_gpu_request_on_cpu_machine_warns_loudly(tiny_onnx, caplog):
    _, path = tiny_onnx
    with caplog.at_level(logging.WARNING, logger="hand_object_pose.inference.backends"):
        backend = OnnxRuntimeBackend(str(path), providers=("CUDAExecutionProvider", "CPUExecutionProvider"))
    assert backend.in_use == "onnxruntime:CPUExecutionProvider"
    assert any("GPU was requested but the network runs on onnxruntime:CPUExecutionProvider" in r.message
               for r in caplog.records)


def test_gpu_request_with_require_gpu_fails(tiny_onnx):
    _, path = tiny_onnx
    with pytest.raises(GpuUnavailableError, match="require_gpu"):
        OnnxRuntimeBackend(str(path), providers=("TensorrtExecutionProvider", "CUDAExecutionProvider",
                                                 "CPUExecutionProvider"), require_gpu=True)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only fallback")
def test_torch_cuda_request_on_cpu_machine(caplog):
    with pytest.raises(GpuUnavailableError, match="torch:cpu"):
        TorchBackend(Tiny(), ["image"], ["mean", "peak"], device="cuda", require_gpu=True)
    with caplog.at_level(logging.WARNING, logger="hand_object_pose.inference.backends"):
        backend = TorchBackend(Tiny(), ["image"], ["mean", "peak"], device="cuda")
    assert backend.in_use == "torch:cpu" and any("GPU was requested" in r.message for r in caplog.records)


def test_cpu_only_request_does_not_warn(tiny_onnx, caplog):
    _, path = tiny_onnx
    with caplog.at_level(logging.WARNING, logger="hand_object_pose.inference.backends"):
        OnnxRuntimeBackend(str(path), providers=("CPUExecutionProvider",), require_gpu=True)
    assert not caplog.records


def test_missing_and_corrupt_model_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="ONNX model file not found: .*absent.onnx"):
        OnnxRuntimeBackend(str(tmp_path / "absent.onnx"))
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07not a protobuf" * 10)
    with pytest.raises(ValueError, match="cannot load ONNX model .*corrupt.onnx"):
        OnnxRuntimeBackend(str(corrupt))


def test_tensorrt_provider_options(tmp_path):
    cache = tmp_path / "trt"
    options = provider_options("TensorrtExecutionProvider", True, str(cache))
    assert options["trt_fp16_enable"] is True and options["trt_engine_cache_enable"] is True
    assert options["trt_engine_cache_path"] == str(cache) and cache.is_dir()
    assert provider_options("CUDAExecutionProvider", True, str(cache)) == {}
