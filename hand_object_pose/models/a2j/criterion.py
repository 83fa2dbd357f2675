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

Optional heads (not in the paper nor the official code; only when the model has them and their
logits are passed): binary cross-entropy with logits of

* hand presence (N, 2) [right, left] against "the hand is labelled in this crop" (at least one
  valid joint of that side), averaged over the N x 2 entries;
* joint confidence (N, J) against the joint's validity (annotated and inside the output cube),
  averaged over all N x J entries (invalid joints are the negatives);

added to the total with `presence_weight` / `confidence_weight` (1.0 by default: our choice, untuned).
"""
from __future__ import annotations

from dataclasses import dataclass

from typing import Optional

import torch
from torch import nn
from torch.nn import functional as F


def smooth_l1(diff: torch.Tensor, beta: float) -> torch.Tensor:
    """Elementwise L_beta(diff): diff^2 / (2 beta) below beta, |diff| - beta / 2 above."""
    magnitude = diff.abs()
    return torch.where(magnitude < beta, 0.5 * magnitude * magnitude / beta, magnitude - 0.5 * beta)


@dataclass
class A2JLosses:
    total: torch.Tensor       # anchor + regression_factor * regression (+ weighted head terms)
    anchor: torch.Tensor      # layer-averaged anchor surrounding loss
    regression: torch.Tensor  # layer-averaged joint estimation loss
    presence: Optional[torch.Tensor] = None    # unweighted hand-presence BCE, when its logits were given
    confidence: Optional[torch.Tensor] = None  # unweighted joint-confidence BCE, when its logits were given

    def terms(self) -> dict[str, torch.Tensor]:
        """The named scalar terms that exist (total first), for logging."""
        named = {"total": self.total, "anchor": self.anchor, "regression": self.regression,
                 "presence": self.presence, "confidence": self.confidence}
        return {name: value for name, value in named.items() if value is not None}


class A2JCriterion(nn.Module):
    """A2J-Transformer training loss (module docstring: terms, weights, normalisation).

    Args: the official weights and smooth-L1 thresholds (output-cube units), and the weights of the
    optional head terms.

    forward(joints_per_layer (L, N, J, 3), anchor_positions_per_layer (L, N, J, 3), target (N, J, 3),
    valid (N, J), [hand_presence_logits (N, 2), joint_confidence_logits (N, J)]) -> `A2JLosses` of
    scalar tensors. Coordinates are in the output cube of `A2JOutput` (x, y crop pixels; z mapped
    root-relative depth), the target in the same cube and joint order; invalid joints contribute
    nothing to the regression and anchor terms.
    """

    def __init__(self, regression_factor: float = 3.0, in_plane_weight: float = 0.5, in_plane_beta: float = 1.0,
                 depth_beta: float = 3.0, anchor_beta: float = 1.0, anchor_depth_beta: float = 1.0,
                 presence_weight: float = 1.0, confidence_weight: float = 1.0):
        super().__init__()
        self.presence_weight = presence_weight
        self.confidence_weight = confidence_weight
        self.regression_factor = regression_factor
        self.in_plane_weight = in_plane_weight
        self.in_plane_beta = in_plane_beta
        self.depth_beta = depth_beta
        self.anchor_beta = anchor_beta
        self.anchor_depth_beta = anchor_depth_beta

    def forward(self, joints_per_layer: torch.Tensor, anchor_positions_per_layer: torch.Tensor,
                target: torch.Tensor, valid: torch.Tensor, hand_presence_logits: Optional[torch.Tensor] = None,
                joint_confidence_logits: Optional[torch.Tensor] = None) -> A2JLosses:
        """joints_per_layer, anchor_positions_per_layer: (L, N, J, 3) (from `A2JOutput`, model run
        with all_layers); target: (N, J, 3) in the same output cube; valid: (N, J) bool or 0/1, joints
        right hand first (J / 2 per hand, InterHand order). hand_presence_logits (N, 2) [right, left]
        and joint_confidence_logits (N, J): the optional heads' `A2JOutput` logits, None without them.
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
        losses = A2JLosses(anchor + self.regression_factor * regression, anchor, regression)
        labelled = valid.bool()
        if hand_presence_logits is not None:
            n, j = labelled.shape
            _check_shape("hand_presence_logits", hand_presence_logits, (n, 2))
            hand_labelled = labelled.view(n, 2, j // 2).any(dim=-1)                  # (N, 2) [right, left]
            losses.presence = F.binary_cross_entropy_with_logits(
                hand_presence_logits, hand_labelled.to(hand_presence_logits.dtype))
            losses.total = losses.total + self.presence_weight * losses.presence
        if joint_confidence_logits is not None:
            _check_shape("joint_confidence_logits", joint_confidence_logits, tuple(labelled.shape))
            losses.confidence = F.binary_cross_entropy_with_logits(
                joint_confidence_logits, labelled.to(joint_confidence_logits.dtype))
            losses.total = losses.total + self.confidence_weight * losses.confidence
        return losses


def _check_shape(name: str, tensor: torch.Tensor, expected: tuple) -> None:
    if tuple(tensor.shape) != expected:
        raise ValueError(f"{name} must be {expected} (batch, as `valid`), got {tuple(tensor.shape)}")
