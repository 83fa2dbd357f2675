"""MANO layer over smplx that loads only plain `.npz` files and returns 21 joints in canonical order.

Works with the official MANO files (converted once with `python -m hand_object_pose.tools.convert_mano`)
and with the licence-free stand-in hand (`models/standin_hand/`, NOT MANO). smplx's MANO code is under
the MPI non-commercial licence, like MANO itself (see docs/mano.md).

Conventions: metres; the model's own frame (MANO's, or the stand-in's); pose = axis-angle, 3 for the
global orientation (about the wrist joint) + 15 x 3 for the finger joints in MANO joint order, each in
its parent's rest frame, or PCA coefficients with ``use_pca``. ``flat_hand_mean=True`` (default): the
zero pose is the flat template; False adds the model's ``hands_mean`` (a relaxed, curled hand), as
smplx's default does.

Left hands: the official MANO_LEFT file stores un-mirrored ``shapedirs`` (x component with the wrong
sign). Our npz records whether that was fixed (``left_shapedirs_fixed``, written by the converter and the
stand-in); a left file without that flag is fixed here with ``shapedirs[:, 0, :] *= -1``. Pass
``fix_left_shapedirs=False`` to get the official un-mirrored behaviour instead.
"""
from __future__ import annotations

import contextlib
import io
import os
from typing import Mapping, NamedTuple, Optional

import numpy as np
import torch
from torch import nn

from hand_object_pose.geometry.hand_model_files import (
    NUM_HAND_POSE, load_hand_model, validate_hand_model,
)
from hand_object_pose.geometry.skeleton import MANO_TO_CANONICAL

TIP_VERTEX_IDS = (744, 320, 443, 554, 671)
"""Fingertip vertices appended as MANO-order joints 16-20 (thumb, index, middle, ring, pinky); smplx's ids."""


class ManoOutput(NamedTuple):
    vertices: torch.Tensor     # (B, 778, 3) metres
    joints: torch.Tensor       # (B, 21, 3) metres, canonical wrist-first order (tips = vertices)
    mano_joints: torch.Tensor  # (B, 16, 3) metres, MANO's kinematic joints in MANO order
    full_pose: torch.Tensor    # (B, 48) axis-angle actually applied (global + 15 joints, incl. mean)


def _flip_left_shapedirs(arrays: Mapping[str, np.ndarray], side: str, fix: Optional[bool]) -> bool:
    """Whether to negate shapedirs' x so that the left hand gets the requested convention.

    fix=True/None: mirrored (correct) shapedirs; fix=False: the official file's un-mirrored ones, which
    some datasets' left-hand annotations were fitted with (e.g. DexYCB).
    """
    if side != "left":
        return False
    file_is_fixed = bool(arrays.get("left_shapedirs_fixed", False))
    want_fixed = True if fix is None else bool(fix)
    return file_is_fixed != want_fixed


class ManoLayer(nn.Module):
    """Differentiable MANO forward: (global_orient, hand_pose, betas, transl) -> ManoOutput.

    model: path to a MANO-layout `.npz` or its arrays (see `geometry.hand_model_files`).
    side: 'right' | 'left'; taken from the file when it records one (must agree when both are given).
    use_pca / num_pca_comps: hand_pose holds that many PCA coefficients instead of 45 axis-angle values.
    fix_left_shapedirs: left hands only. None/True: mirrored (correct) shapedirs whatever the file holds;
        False: the official file's un-mirrored shapedirs (to reproduce annotations fitted with them).
    """

    def __init__(self, model, side: Optional[str] = None, use_pca: bool = False, num_pca_comps: int = 45,
                 flat_hand_mean: bool = True, num_betas: int = 10, fix_left_shapedirs: Optional[bool] = None,
                 dtype: torch.dtype = torch.float32):
        super().__init__()
        import smplx  # MPI non-commercial licence; imported only when a MANO layer is built
        from smplx.utils import Struct

        if isinstance(model, (str, os.PathLike)):
            arrays = load_hand_model(model)
        else:
            arrays = validate_hand_model(model, source="hand model arrays")
        file_side = str(arrays["side"]) if "side" in arrays else None
        if side is None and file_side is None:
            raise ValueError("the hand model does not record its side: pass side='right' or side='left'")
        if side is not None and side not in ("right", "left"):
            raise ValueError(f"side must be 'right' or 'left', got {side!r}")
        if side is not None and file_side is not None and side != file_side:
            raise ValueError(f"side={side!r} but the hand model file is a {file_side} hand")
        self.side = side or file_side
        if not 1 <= num_pca_comps <= NUM_HAND_POSE:
            raise ValueError(f"num_pca_comps must be in 1..{NUM_HAND_POSE}, got {num_pca_comps}")
        shapedirs = arrays["shapedirs"].copy()
        if num_betas > shapedirs.shape[2]:
            raise ValueError(f"num_betas={num_betas} but the model has {shapedirs.shape[2]} shape components")
        if _flip_left_shapedirs(arrays, self.side, fix_left_shapedirs):
            shapedirs[:, 0, :] *= -1.0
        struct = Struct(**{**arrays, "shapedirs": shapedirs})
        # smplx prints a warning about MANO's 10 shape coefficients on every construction: keep stdout clean.
        with contextlib.redirect_stdout(io.StringIO()):
            self.mano = smplx.MANO(
                model_path="", data_struct=struct, is_rhand=self.side == "right", use_pca=False,
                flat_hand_mean=flat_hand_mean, num_betas=num_betas,
                create_global_orient=False, create_hand_pose=False, create_betas=False,
                create_transl=False, create_body_pose=False, dtype=dtype)
        # The PCA projection is done here: smplx silently ignores use_pca when num_pca_comps == 45.
        self.use_pca = use_pca
        self.num_pose = num_pca_comps if use_pca else NUM_HAND_POSE
        self.register_buffer("hand_components",
                             torch.tensor(arrays["hands_components"][:num_pca_comps], dtype=dtype), persistent=False)
        self.num_betas = num_betas
        self.register_buffer("tip_ids", torch.tensor(TIP_VERTEX_IDS, dtype=torch.long), persistent=False)
        self.register_buffer("canonical_order", torch.tensor(MANO_TO_CANONICAL, dtype=torch.long),
                             persistent=False)

    @property
    def faces(self) -> torch.Tensor:
        """(1538, 3) int64 triangles."""
        return self.mano.faces_tensor

    def _check(self, name: str, value: Optional[torch.Tensor], width: int, batch: int) -> torch.Tensor:
        if value is None:
            return torch.zeros(batch, width, dtype=self.mano.v_template.dtype, device=self.mano.v_template.device)
        if value.ndim != 2 or value.shape != (batch, width):
            raise ValueError(f"{name} must have shape ({batch}, {width}), got {tuple(value.shape)}")
        return value.to(self.mano.v_template.dtype)

    def forward(self, global_orient: torch.Tensor, hand_pose: torch.Tensor, betas: Optional[torch.Tensor] = None,
                transl: Optional[torch.Tensor] = None) -> ManoOutput:
        """global_orient (B, 3) axis-angle; hand_pose (B, 45) axis-angle or (B, num_pca_comps);
        betas (B, num_betas) or None (mean shape); transl (B, 3) metres or None."""
        if global_orient.ndim != 2:
            raise ValueError(f"global_orient must have shape (B, 3), got {tuple(global_orient.shape)}")
        batch = global_orient.shape[0]
        global_orient = self._check("global_orient", global_orient, 3, batch)
        hand_pose = self._check("hand_pose", hand_pose, self.num_pose, batch)
        if self.use_pca:
            hand_pose = hand_pose @ self.hand_components
        betas = self._check("betas", betas, self.num_betas, batch)
        transl = self._check("transl", transl, 3, batch)
        out = self.mano(betas=betas, global_orient=global_orient, hand_pose=hand_pose, return_full_pose=True)
        vertices = out.vertices + transl[:, None]
        mano_joints = out.joints + transl[:, None]
        mano21 = torch.cat([mano_joints, vertices[:, self.tip_ids]], dim=1)
        return ManoOutput(vertices, mano21[:, self.canonical_order], mano_joints, out.full_pose)

