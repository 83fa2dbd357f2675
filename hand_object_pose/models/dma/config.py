"""Configuration of the Dense Mutual Attention model (Wang, Mao, Li, WACV 2023).

Values follow the authors' released HO-3D test path (`model_no_render.py`, `simple_meshnet=True`);
see shared/reference/models.md section 4.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DMAConfig:
    """Sizes and conventions of one DMA variant.

    Attributes:
        num_hand_vertices: MANO hand mesh size (778).
        num_object_vertices: object template size after ACVD resampling (1000).
        num_joints: hand joints from the 21x778 regressor (and the training-only PoseNet).
        lixel_bins: soft-argmax bins per axis of the rough meshes (64 -> a 64^3 grid).
        input_size: square crop side in pixels (256); grid x, y times input_size / lixel_bins = crop px.
        depth_radius_m: D of the paper: grid z in [0, 64) spans [root depth - D, root depth + D]
            (official `bbox_3d_size` 0.3 m / 2).
        gcn_hidden: node feature width inside the mutual-attention GCN (64).
        global_feature_dim: width of the fused global image feature appended to each node (512).
        object_face_rows: the official code zero-pads every object face array to this many rows
            before building the graph, which adds the self-loop (0, 0) (kept for parity).
        compute_discarded_blocks: run the three residual GIN blocks per branch whose outputs the
            official forward computes and then ignores. They cannot change any output; on only for
            the parity check (which compares one of them), off for inference and ONNX.
    """

    name: str = "dma_ho3d"
    num_hand_vertices: int = 778
    num_object_vertices: int = 1000
    num_joints: int = 21
    lixel_bins: int = 64
    input_size: int = 256
    depth_radius_m: float = 0.15
    gcn_hidden: int = 64
    global_feature_dim: int = 512
    object_face_rows: int = 2007
    compute_discarded_blocks: bool = False

    @property
    def node_feature_dim(self) -> int:
        """Per-vertex GCN input: rough xyz 3 + image 3 + stem 64 + max-pool 64 + layer1 256 + global."""
        return 3 + 3 + 64 + 64 + 256 + self.global_feature_dim
