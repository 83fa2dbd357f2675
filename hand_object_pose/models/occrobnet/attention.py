"""OccRobNet's dual (sigmoid ⊙ softmax) attention weights.

The paper (Garg et al., sec. III-C, eqs. 5-7) combines the usual softmax correlation map with a
sigmoid map of the same scaled logits and multiplies them element-wise:

    C = softmax(q kᵀ / √d) ⊙ sigmoid(q kᵀ / √d),   Attention = C V

The sigmoid factor damps keys whose own correlation is low even when they win the softmax, so a
row of C no longer sums to 1. Masked keys (padding tokens, the decoder's finger / object masks)
get weight exactly 0 from both factors. A fully masked row gives all-zero weights (the softmax
factor alone would be uniform, see `common.transformer`), i.e. a zero attention output.

Plugs into `hand_object_pose.models.common.transformer` as its `AttentionWeightFn`.
"""
from __future__ import annotations

from typing import Optional

import torch

from ..common.transformer import masked_logits, softmax_attention


def gated_attention(logits: torch.Tensor, blocked: Optional[torch.Tensor]) -> torch.Tensor:
    """logits (N, H, Q, S) already scaled by 1/√d, blocked (broadcastable bool, True = masked) or None
    -> weights (N, H, Q, S) = softmax ⊙ sigmoid over the keys."""
    masked = masked_logits(logits, blocked)
    return torch.softmax(masked, dim=-1) * torch.sigmoid(masked)


ATTENTION_WEIGHTS = {"gated": gated_attention, "softmax": softmax_attention}
