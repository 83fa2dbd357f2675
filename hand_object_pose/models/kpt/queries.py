"""Decoder query layout and the attention masks of Keypoint Transformer.

Query layout per pose representation (official indices):
- "3D": 0-19 right joints 0-19, 20-39 left joints 21-40 (InterHand2.6M order, wrist excluded;
  each predicts the bone vector to its parent), 40 = global (rel. translation, camera);
- "2p5D": 0-41 joints 0-41, 42 = global;
- "angles": 0 right global orientation, 1-15 right MANO joints, 16-31 the same for the left hand,
  32 = global (shape, rel. translation, camera), 33 = a query no head reads (kept: it is in the
  released checkpoint and it attends to the others);
- object configs append two queries: object rotation, then object translation.

Decoder self-attention mask (`tgt_mask`, True = blocked): each query of a group sees only its group;
groups are the fingers (4 joint queries in 3D/2.5D, 3 MANO joints in angles), the global query
alone, and each hand's global orientation alone (angles). Queries in no group (2.5D wrists, the
object queries, angles' query 33) see every query.

Memory mask (cross-attention): the object-rotation query sees only object tokens. If a sample has
no object token at all the row is left open (all valid tokens), instead of the official code's
all-blocked row, which would give NaN.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from .config import KptConfig
from .selection import OBJECT_TOKEN


@dataclass(frozen=True)
class QueryLayout:
    num_queries: int
    joint_queries: int           # queries read by the per-joint pose head(s)
    global_index: int            # rel_trans / cam (/ shape for angles)
    obj_rot_index: Optional[int]
    obj_trans_index: Optional[int]
    groups: tuple                # tuple of tuples of query indices (self-attention groups)


def _finger_groups(start: int, fingers: int, size: int) -> list:
    return [tuple(range(start + f * size, start + (f + 1) * size)) for f in range(fingers)]


def query_layout(config: KptConfig) -> QueryLayout:
    rep = config.pose_representation
    if rep == "3D":
        joints, global_index, count = 40, 40, 41
        groups = _finger_groups(0, 5, 4) + _finger_groups(20, 5, 4) + [(40,)]
    elif rep == "2p5D":
        joints, global_index, count = 42, 42, 43
        groups = _finger_groups(0, 5, 4) + _finger_groups(21, 5, 4) + [(42,)]
    else:  # angles
        joints, global_index, count = 32, 32, 34
        groups = [(0,)] + _finger_groups(1, 5, 3) + [(16,)] + _finger_groups(17, 5, 3) + [(32,)]
    rot = trans = None
    if config.has_object:
        rot, trans, count = count, count + 1, count + 2
    return QueryLayout(count, joints, global_index, rot, trans, tuple(groups))


def self_attention_mask(layout: QueryLayout) -> torch.Tensor:
    """(Q, Q) bool, True = blocked (see module docstring)."""
    mask = torch.zeros(layout.num_queries, layout.num_queries, dtype=torch.bool)
    for group in layout.groups:
        rows = torch.tensor(group)
        mask[rows] = True
        mask[rows[:, None], rows[None, :]] = False
    return mask


def memory_mask(layout: QueryLayout, token_kind: torch.Tensor) -> Optional[torch.Tensor]:
    """(N, Q, S) bool cross-attention mask from token types (N, S), or None without object queries."""
    if layout.obj_rot_index is None:
        return None
    n, s = token_kind.shape
    is_obj = token_kind == OBJECT_TOKEN
    row = (~is_obj) & is_obj.any(dim=1, keepdim=True)           # (N, S)
    select = torch.zeros(layout.num_queries, dtype=torch.bool, device=token_kind.device)
    select[layout.obj_rot_index] = True
    return select.view(1, -1, 1) & row.view(n, 1, s)
