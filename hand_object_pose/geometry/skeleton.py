"""The canonical 21-joint hand skeleton and the index maps to and from dataset/model joint orders.

Canonical order (messages, results, everything outside a model's internals): wrist first, then
thumb, index, middle, ring, pinky, each finger base -> tip. This is the DexYCB / manopth / MediaPipe
numbering::

    0 wrist
    1 thumb1 (CMC)   2 thumb2 (MCP)   3 thumb3 (IP)    4 thumb4 (tip)
    5 index1 (MCP)   6 index2 (PIP)   7 index3 (DIP)   8 index4 (tip)
    9 middle1 ...   13 ring1 ...     17 pinky1 ... 20 pinky4 (tip)

Every other order is written down once as a tuple of canonical joint *names*; the integer maps are
derived from the names, so a map cannot disagree with the order it claims to describe.

Map convention: ``A_TO_B`` is a gather index, ``joints_b = joints_a[..., A_TO_B, :]``. Every map here
has its inverse ``B_TO_A``. The ``*_to_*`` functions apply a map to arrays of shape (..., J, D) with
J = 21 (one hand) or J = 42 (a right-then-left pair, each hand mapped separately); they accept numpy
arrays and torch tensors alike and never mix the two hands.

Note: the same joint *name* is not the same 3D point in every dataset (InterHand2.6M and the Keypoint
Transformer regress joints from MANO with their own regressor); these maps fix order, not anatomy.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

NUM_JOINTS = 21
"""Joints per hand."""

FINGER_NAMES = ("thumb", "index", "middle", "ring", "pinky")
"""Fingers in canonical order."""

JOINT_NAMES = ("wrist",) + tuple(f"{finger}{k}" for finger in FINGER_NAMES for k in range(1, 5))
"""Canonical joint names; ``JOINT_NAMES[i]`` is canonical joint i. Suffix 1 is the finger's base
(CMC for the thumb, MCP for the others), 4 its tip."""

JOINT_INDEX = {name: i for i, name in enumerate(JOINT_NAMES)}
"""Canonical joint name -> canonical index."""

WRIST = 0
"""Canonical index of the wrist (the root)."""

PARENTS = (-1,) + tuple(0 if k == 0 else 1 + 4 * f + k - 1 for f in range(5) for k in range(4))
"""``PARENTS[i]`` is the canonical index of joint i's parent; -1 for the wrist. In the canonical
order parents always precede their children."""

FINGERS = {finger: tuple(range(1 + 4 * f, 5 + 4 * f)) for f, finger in enumerate(FINGER_NAMES)}
"""Finger name -> its four canonical joint indices, base -> tip."""

FINGERTIPS = tuple(chain[-1] for chain in FINGERS.values())
"""Canonical indices of the five tips (thumb, index, middle, ring, pinky): (4, 8, 12, 16, 20)."""

BONES = tuple((PARENTS[i], i) for i in range(1, NUM_JOINTS))
"""The 20 (parent, child) canonical index pairs, e.g. for drawing a skeleton."""

HAND_SIDES = ("right", "left")
"""Order of the two hands wherever a pair is stored (42 joints = right 0-20, then left 21-41)."""

# --- Other orders, as canonical names -------------------------------------------------------------

INTERHAND_JOINT_NAMES = tuple(
    f"{finger}{k}" for finger in FINGER_NAMES for k in range(4, 0, -1)
) + ("wrist",)
"""InterHand2.6M order (also the Keypoint Transformer's and A2J-Transformer's native order):
per finger tip -> base (thumb4, thumb3, thumb2, thumb1, index4, ..., pinky1), wrist last at index 20.
A pair is 42 joints, right 0-20 then left 21-41 (wrists at 20 and 41)."""

MANO_JOINT_NAMES = (
    "wrist",
    "index1", "index2", "index3",
    "middle1", "middle2", "middle3",
    "pinky1", "pinky2", "pinky3",
    "ring1", "ring2", "ring3",
    "thumb1", "thumb2", "thumb3",
    "thumb4", "index4", "middle4", "ring4", "pinky4",
)
"""MANO order: MANO's 16 kinematic joints (wrist, index1-3, middle1-3, pinky1-3, ring1-3, thumb1-3),
then the 5 fingertips appended in the order thumb, index, middle, ring, pinky. The first 16 are what
a MANO layer returns; the tips are mesh vertices appended by the caller."""

HO3D_JOINT_NAMES = MANO_JOINT_NAMES
"""HO-3D v2/v3 order = raw MANO order + tips, as in ``MANO_JOINT_NAMES``. (HO-3D's OpenGL camera frame
is a frame concern handled by the camera/data code, not an order concern.)"""

DEXYCB_JOINT_NAMES = JOINT_NAMES
"""DexYCB order (``_MANO_JOINTS`` of dex-ycb-toolkit) = the canonical order."""


def _gather_index(source_names: Sequence[str], target_names: Sequence[str]) -> tuple[int, ...]:
    """Index ``idx`` with ``target = source[idx]``, matched by joint name."""
    position = {name: i for i, name in enumerate(source_names)}
    return tuple(position[name] for name in target_names)


INTERHAND_TO_CANONICAL = _gather_index(INTERHAND_JOINT_NAMES, JOINT_NAMES)
"""``canonical = interhand[..., INTERHAND_TO_CANONICAL, :]`` (per hand):
(20, 3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12, 19, 18, 17, 16)."""

CANONICAL_TO_INTERHAND = _gather_index(JOINT_NAMES, INTERHAND_JOINT_NAMES)
"""``interhand = canonical[..., CANONICAL_TO_INTERHAND, :]`` (per hand):
(4, 3, 2, 1, 8, 7, 6, 5, 12, 11, 10, 9, 16, 15, 14, 13, 20, 19, 18, 17, 0)."""

MANO_TO_CANONICAL = _gather_index(MANO_JOINT_NAMES, JOINT_NAMES)
"""``canonical = mano21[..., MANO_TO_CANONICAL, :]``:
(0, 13, 14, 15, 16, 1, 2, 3, 17, 4, 5, 6, 18, 10, 11, 12, 19, 7, 8, 9, 20)."""

CANONICAL_TO_MANO = _gather_index(JOINT_NAMES, MANO_JOINT_NAMES)
"""``mano21 = canonical[..., CANONICAL_TO_MANO, :]``:
(0, 5, 6, 7, 9, 10, 11, 17, 18, 19, 13, 14, 15, 1, 2, 3, 4, 8, 12, 16, 20)
(the map Dense Mutual Attention's ``test.py`` uses to write HO-3D predictions)."""

HO3D_TO_CANONICAL = MANO_TO_CANONICAL
"""``canonical = ho3d[..., HO3D_TO_CANONICAL, :]`` (HO-3D order = MANO order + tips)."""

CANONICAL_TO_HO3D = CANONICAL_TO_MANO
"""``ho3d = canonical[..., CANONICAL_TO_HO3D, :]``."""

DEXYCB_TO_CANONICAL = tuple(range(NUM_JOINTS))
"""DexYCB order is the canonical order: the identity map."""

CANONICAL_TO_DEXYCB = DEXYCB_TO_CANONICAL
"""The identity map."""

INTERHAND_TO_HO3D = _gather_index(INTERHAND_JOINT_NAMES, HO3D_JOINT_NAMES)
"""``ho3d = interhand[..., INTERHAND_TO_HO3D, :]``: the Keypoint Transformer's HO-3D submission map,
(20, 7, 6, 5, 11, 10, 9, 19, 18, 17, 15, 14, 13, 3, 2, 1, 0, 4, 8, 12, 16)."""

HO3D_TO_INTERHAND = _gather_index(HO3D_JOINT_NAMES, INTERHAND_JOINT_NAMES)
"""``interhand = ho3d[..., HO3D_TO_INTERHAND, :]``: inverse of ``INTERHAND_TO_HO3D``."""

MANO_PARENTS = tuple(
    -1 if PARENTS[JOINT_INDEX[name]] < 0
    else MANO_JOINT_NAMES.index(JOINT_NAMES[PARENTS[JOINT_INDEX[name]]])
    for name in MANO_JOINT_NAMES
)
"""Parents in MANO order (21 joints); the first 16 are MANO's kinematic tree
(-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14)."""

INTERHAND_PARENTS = tuple(
    -1 if PARENTS[JOINT_INDEX[name]] < 0
    else INTERHAND_JOINT_NAMES.index(JOINT_NAMES[PARENTS[JOINT_INDEX[name]]])
    for name in INTERHAND_JOINT_NAMES
)
"""Parents in InterHand2.6M order (21 joints), e.g. thumb1 (index 3) -> wrist (20)."""


# --- Applying maps ---------------------------------------------------------------------------------

def reorder(joints, index_map: Sequence[int]):
    """Gather joints along axis -2 with ``index_map`` (one of this module's ``*_TO_*`` maps).

    joints: numpy array or torch tensor of shape (..., J, D) with J = len(index_map) (one hand) or
    J = 2 * len(index_map) (a right-then-left pair; each hand is mapped on its own).
    Returns the same type, shape (..., J, D).
    """
    n = len(index_map)
    shape = tuple(joints.shape)
    if len(shape) < 2 or shape[-2] not in (n, 2 * n):
        raise ValueError(
            f"expected joints of shape (..., {n}, D) or (..., {2 * n}, D) for a right-then-left pair, "
            f"got shape {shape}")
    index = list(index_map)
    if shape[-2] == 2 * n:
        index = index + [i + n for i in index_map]
    return joints[..., index, :]


def interhand_to_canonical(joints):
    """InterHand2.6M order (..., 21|42, D) -> canonical order (..., 21|42, D)."""
    return reorder(joints, INTERHAND_TO_CANONICAL)


def canonical_to_interhand(joints):
    """Canonical order (..., 21|42, D) -> InterHand2.6M order (..., 21|42, D)."""
    return reorder(joints, CANONICAL_TO_INTERHAND)


def mano_to_canonical(joints):
    """MANO order with appended tips (..., 21|42, D) -> canonical order (..., 21|42, D)."""
    return reorder(joints, MANO_TO_CANONICAL)


def canonical_to_mano(joints):
    """Canonical order (..., 21|42, D) -> MANO order with appended tips (..., 21|42, D)."""
    return reorder(joints, CANONICAL_TO_MANO)


def ho3d_to_canonical(joints):
    """HO-3D order (..., 21|42, D) -> canonical order. Does not change the (OpenGL) frame."""
    return reorder(joints, HO3D_TO_CANONICAL)


def canonical_to_ho3d(joints):
    """Canonical order (..., 21|42, D) -> HO-3D order. Does not change the frame."""
    return reorder(joints, CANONICAL_TO_HO3D)


def dexycb_to_canonical(joints):
    """DexYCB order (..., 21|42, D) -> canonical order (the identity; shape is still checked)."""
    return reorder(joints, DEXYCB_TO_CANONICAL)


def canonical_to_dexycb(joints):
    """Canonical order (..., 21|42, D) -> DexYCB order (the identity; shape is still checked)."""
    return reorder(joints, CANONICAL_TO_DEXYCB)


def interhand_to_ho3d(joints):
    """InterHand2.6M order (..., 21|42, D) -> HO-3D order (the Keypoint Transformer submission map)."""
    return reorder(joints, INTERHAND_TO_HO3D)


def ho3d_to_interhand(joints):
    """HO-3D order (..., 21|42, D) -> InterHand2.6M order."""
    return reorder(joints, HO3D_TO_INTERHAND)


# --- Pairs of hands --------------------------------------------------------------------------------

def split_hands(joints):
    """(..., 42, D) right-then-left pair -> (right (..., 21, D), left (..., 21, D))."""
    if len(joints.shape) < 2 or joints.shape[-2] != 2 * NUM_JOINTS:
        raise ValueError(f"expected a right-then-left pair of shape (..., 42, D), got {tuple(joints.shape)}")
    return joints[..., :NUM_JOINTS, :], joints[..., NUM_JOINTS:, :]


def join_hands(right, left):
    """right (..., 21, D), left (..., 21, D) -> (..., 42, D), right first. numpy or torch."""
    if tuple(right.shape) != tuple(left.shape) or len(right.shape) < 2 or right.shape[-2] != NUM_JOINTS:
        raise ValueError(
            f"expected right and left hands of equal shape (..., 21, D), got {tuple(right.shape)} "
            f"and {tuple(left.shape)}")
    if isinstance(right, np.ndarray):
        return np.concatenate([right, left], axis=-2)
    import torch  # only reached with torch tensors, so torch is already imported

    return torch.cat([right, left], dim=-2)


# --- Bone vectors ----------------------------------------------------------------------------------

def _topological_order(shape, parents: Sequence[int]) -> list[int]:
    """Joint indices ordered so that every parent comes before its children; validates the tree."""
    n = len(parents)
    if len(shape) < 2 or shape[-2] != n:
        raise ValueError(f"expected shape (..., {n}, D) for a {n}-joint tree, got {tuple(shape)}")
    depth: dict[int, int] = {}
    for start in range(n):
        chain, j = [], start
        while j >= 0 and j not in depth:
            if j in chain or not -1 <= parents[j] < n:
                raise ValueError(f"parents {tuple(parents)} do not form a tree (at joint {j})")
            chain.append(j)
            j = parents[j]
        base = -1 if j < 0 else depth[j]
        for k, joint in enumerate(reversed(chain)):
            depth[joint] = base + 1 + k
    return sorted(range(n), key=lambda i: depth[i])


def _stack(items, like):
    if isinstance(like, np.ndarray):
        return np.stack(items, axis=-2)
    import torch  # only reached with torch tensors, so torch is already imported

    return torch.stack(items, dim=-2)


def joints_to_bones(joints, parents: Sequence[int] = PARENTS):
    """Joint positions -> parent-relative bone vectors.

    joints: (..., J, D), numpy or torch. Returns (..., J, D) with ``bones[..., i, :] =
    joints[..., i, :] - joints[..., parents[i], :]`` and, for a root (parent -1), the root position
    itself. Default tree: canonical ``PARENTS``; pass ``MANO_PARENTS`` or ``INTERHAND_PARENTS`` for
    the other orders (any tree, in any joint order).
    """
    _topological_order(joints.shape, parents)  # validates shape and tree
    items = [joints[..., i, :] if p < 0 else joints[..., i, :] - joints[..., p, :]
             for i, p in enumerate(parents)]
    return _stack(items, joints)


def bones_to_joints(bones, parents: Sequence[int] = PARENTS):
    """Parent-relative bone vectors -> joint positions (inverse of ``joints_to_bones``).

    bones: (..., J, D), numpy or torch; a root's row is its position (zeros give root-relative joints).
    Each joint is its parent's position plus its bone, summed from the root outward. Differentiable
    for torch (no in-place writes).
    """
    positions: dict[int, object] = {}
    for i in _topological_order(bones.shape, parents):
        p = parents[i]
        positions[i] = bones[..., i, :] if p < 0 else positions[p] + bones[..., i, :]
    return _stack([positions[i] for i in range(len(parents))], bones)
