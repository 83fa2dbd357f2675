"""The ONNX Runtime backend's I/O binding path (used on a GPU: outputs written straight into host arrays)
gives the same outputs as `session.run`; exercised here on the CPU provider, with a real session."""
import numpy as np
import torch

from hand_object_pose.export.onnx import export_onnx
from hand_object_pose.inference.backends import OnnxRuntimeBackend


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, image):
        x = self.conv(image)
        return x.mean(dim=(2, 3)), x.flatten(1).argmax(dim=1)


def test_io_binding_matches_plain_run(tmp_path):
    torch.manual_seed(0)
    path = export_onnx(Tiny().eval(), (torch.rand(1, 3, 8, 8),), tmp_path / "tiny.onnx", ("image",), ("mean", "peak"))
    plain = OnnxRuntimeBackend(str(path), threads=1)
    bound = OnnxRuntimeBackend(str(path), threads=1, io_binding=True)
    assert not plain.io_binding and bound.io_binding          # default: only on a GPU
    assert plain.precision == bound.precision == "fp32"
    for batch in (1, 2):
        image = np.random.default_rng(batch).random((batch, 3, 8, 8), dtype=np.float32)
        a, b = plain.run({"image": image}), bound.run({"image": image})
        assert set(a) == set(b) == {"mean", "peak"}
        np.testing.assert_array_equal(a["mean"], b["mean"])
        np.testing.assert_array_equal(a["peak"], b["peak"])
        assert b["peak"].dtype == np.int64 and b["mean"].shape == (batch, 4)
