"""A2J anchor-to-joint aggregation and the joint-confidence / hand-presence estimates.

Per decoder layer, every anchor a predicts a 3D offset to every joint j and a weight logit; the
weights are softmax-normalised over the anchors for each joint and the joint is the weighted sum
of anchor + offset. All coordinates live in the output cube (x, y crop pixels, z mapped depth).
"""
from __future__ import annotations

import math

import torch


def aggregate(anchors: torch.Tensor, offsets: torch.Tensor, weight_logits: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A2J aggregation.

    anchors: (A, 3) or (N, A, 3); offsets: (N, A, J, 3) (already in output units);
    weight_logits: (N, A, J). Returns (joints (N, J, 3), anchor_positions (N, J, 3) = the
    weighted anchor positions alone, weights (N, A, J) softmaxed over A).
    """
    weights = weight_logits.softmax(dim=1)
    if anchors.dim() == 2:
        anchors = anchors[None]
    w = weights[..., None]                                                        # (N, A, J, 1)
    joints = (w * (anchors[:, :, None, :] + offsets)).sum(dim=1)
    anchor_positions = (w * anchors[:, :, None, :]).sum(dim=1)
    return joints, anchor_positions, weights


def weight_peakedness(weights: torch.Tensor) -> torch.Tensor:
    """Per-joint confidence derived from the anchor-weight distribution, (N, A, J) -> (N, J) in [0, 1].

    1 - H(w_j) / log(A): 1 when one anchor carries all the weight, 0 when the weights are uniform.
    It measures how decisively the network picked its anchors for that joint, not the probability
    that the joint is where it says; it is uncalibrated and only comparable within one model.
    """
    entropy = -(weights * weights.clamp_min(1e-30).log()).sum(dim=1)
    return (1 - entropy / math.log(weights.shape[1])).clamp(0.0, 1.0)


def presence_from_confidence(joint_confidence: torch.Tensor) -> torch.Tensor:
    """(N, 2*K) per-joint confidence of a right-then-left pair -> (N, 2) [right, left]: the mean per hand."""
    n, j = joint_confidence.shape
    return joint_confidence.view(n, 2, j // 2).mean(dim=-1)
