"""A2J-Transformer training losses (paper eq. 8-11, weights and normalisation as in the official code).

With L_tau(x) = x^2 / (2 tau) for |x| < tau, |x| - tau / 2 otherwise (smooth-L1 with beta = tau),
per decoder layer and over the valid joints j of the batch, in output-cube units:

* joint estimation (regression) loss: sum_j alpha * (L_1(dx) + L_1(dy)) + L_3(dz), alpha = 0.5,
  between the aggregated joint and the target;
* anchor surrounding loss: sum_j L_1 over x, y and z between the weighted anchor position
  sum_a w_aj anchor_a and the target (the official code uses beta = 1 on all three axes; the paper
  writes tau_2 = 3 for depth: `anchor_depth_beta` selects);

each divided by 3 x (number of valid joints), then averaged over the decoder layers;
total = anchor + 3 * regression.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


def smooth_l1(diff: torch.Tensor, beta: float) -> torch.Tensor:
    """Elementwise L_beta(diff): diff^2 / (2 beta) below beta, |diff| - beta / 2 above."""
    magnitude = diff.abs()
    return torch.where(magnitude < beta, 0.5 * magnitude * magnitude / beta, magnitude - 0.5 * beta)


@dataclass
class A2JLosses:
    total: torch.Tensor       # anchor + regression_factor * regression
    anchor: torch.Tensor      # layer-averaged anchor surrounding loss
    regression: torch.Tensor  # layer-averaged joint estimation loss


class A2JCriterion(nn.Module):
    def __init__(self, regression_factor: float = 3.0, in_plane_weight: float = 0.5, in_plane_beta: float = 1.0,
                 depth_beta: float = 3.0, anchor_beta: float = 1.0, anchor_depth_beta: float = 1.0):
        super().__init__()
        self.regression_factor = regression_factor
        self.in_plane_weight = in_plane_weight
        self.in_plane_beta = in_plane_beta
        self.depth_beta = depth_beta
        self.anchor_beta = anchor_beta
        self.anchor_depth_beta = anchor_depth_beta

    def forward(self, joints_per_layer: torch.Tensor, anchor_positions_per_layer: torch.Tensor,
                target: torch.Tensor, valid: torch.Tensor) -> A2JLosses:
        """joints_per_layer, anchor_positions_per_layer: (L, N, J, 3) (from `A2JOutput`, model run
        with all_layers); target: (N, J, 3) in the same output cube; valid: (N, J) bool or 0/1.
        """
        if joints_per_layer.dim() != 4 or joints_per_layer.shape[1:] != target.shape:
            raise ValueError(f"joints_per_layer must be (L, {', '.join(map(str, target.shape))}), "
                             f"got {tuple(joints_per_layer.shape)}")
        if anchor_positions_per_layer.shape != joints_per_layer.shape:
            raise ValueError("anchor_positions_per_layer must have the shape of joints_per_layer, "
                             f"got {tuple(anchor_positions_per_layer.shape)} vs {tuple(joints_per_layer.shape)}")
        if valid.shape != target.shape[:2]:
            raise ValueError(f"valid must be {tuple(target.shape[:2])}, got {tuple(valid.shape)}")
        keep = valid.bool()[None, ..., None]                                          # (1, N, J, 1)

        # Invalid targets may hold anything (NaN included): zero them before they reach a gradient.
        target = torch.where(keep[0], target, torch.zeros_like(target))

        def masked_sum(loss):
            return torch.where(keep, loss, torch.zeros_like(loss)).sum()

        norm = 3 * valid.to(target.dtype).sum().clamp_min(1.0)
        layers = joints_per_layer.shape[0]

        joint_err = joints_per_layer - target[None]
        anchor_err = anchor_positions_per_layer - target[None]
        regression = self.in_plane_weight * masked_sum(smooth_l1(joint_err[..., :2], self.in_plane_beta)) \
            + masked_sum(smooth_l1(joint_err[..., 2:], self.depth_beta))
        anchor = masked_sum(smooth_l1(anchor_err[..., :2], self.anchor_beta)) \
            + masked_sum(smooth_l1(anchor_err[..., 2:], self.anchor_depth_beta))
        regression = regression / norm / layers
        anchor = anchor / norm / layers
        return A2JLosses(anchor + self.regression_factor * regression, anchor, regression)
