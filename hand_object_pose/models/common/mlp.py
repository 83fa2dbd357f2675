"""DETR-style multi-layer perceptron with official-checkpoint-compatible names (`layers.{k}`)."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class MLP(nn.Module):
    """Stack of Linear layers stored as `layers.{k}.weight/bias`, ReLU between them.

    Args:
        in_dim, hidden_dim, out_dim: feature sizes; `hidden_dim` may be an int (repeated
            `num_layers - 1` times) or a sequence of hidden widths (then `num_layers` is implied).
        num_layers: number of Linear layers when `hidden_dim` is an int.
        relu_last: also apply ReLU after the last layer (Keypoint Transformer's token MLPs do).

    Shapes: (..., in_dim) -> (..., out_dim).
    """

    def __init__(self, in_dim: int, hidden_dim, out_dim: int, num_layers: int | None = None,
                 relu_last: bool = False):
        super().__init__()
        if isinstance(hidden_dim, int):
            if num_layers is None or num_layers < 1:
                raise ValueError("num_layers must be >= 1 when hidden_dim is an int")
            hidden = [hidden_dim] * (num_layers - 1)
        else:
            hidden = list(hidden_dim)
        dims = [in_dim, *hidden, out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.relu_last = relu_last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < last or self.relu_last:
                x = F.relu(x)
        return x
