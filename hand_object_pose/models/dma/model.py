"""Dense Mutual Attention network (Wang, Mao, Li, WACV 2023), as the authors' released test code computes it.

Pipeline (shared/reference/models.md section 4.1, parity kit README section 6.3):
two ResNet-50 encoders without stem/downsample BN (hand = `pose_backbone`, object = `mask_backbone`)
-> lixel MeshNets give rough hand (778) and object (1000) vertices in a 64^3 grid
-> per-vertex features sampled from the image, stem, max-pool and layer1 maps + a global feature
-> GIN heads, dense mutual attention, GIN tails -> hand vertex offsets and per-vertex object poses
-> refined hand mesh and joints (21x778 regressor), object rotation/translation, all in camera metres.

Input image: the 256x256 crop in **BGR** channel order, values /255, no mean/std, as the official
HO-3D pipeline feeds it (cv2 without colour conversion). The hand root (wrist) position in the crop
camera frame is an input (the official code used the ground truth; our inference pipeline estimates
it), and so is the object's index in the catalogue the model was built with.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn

from hand_object_pose.models.backbones.resnet import ResNet
from hand_object_pose.models.dma.assets import HandTopology, ObjectTemplate
from hand_object_pose.models.dma.attention import DenseMutualAttention
from hand_object_pose.models.dma.config import DMAConfig
from hand_object_pose.models.dma.graph import (BatchedGraph, GINBlock, GraphResBlock, edge_index_from_table,
                                               faces_to_edge_index, neighbour_table, pad_faces,
                                               pad_neighbour_tables)
from hand_object_pose.models.dma.mesh_net import LixelNet, PoseNet, SegmentationNet
from hand_object_pose.models.dma.output import DMAOutput
from hand_object_pose.models.dma.sampling import grid_to_sampling_coords, sample_vertex_features


def quaternion_to_matrix(quaternion: torch.Tensor) -> torch.Tensor:
    """(..., 4) w, x, y, z -> (..., 3, 3), normalising implicitly through 2 / |q|^2.

    Written out here (not taken from geometry.rotations) because parity needs this exact formula: the
    official code applies pytorch3d's `quaternion_to_matrix` to the un-normalised vertex-mean quaternion.
    """
    w, x, y, z = quaternion.unbind(-1)
    two_s = 2.0 / (quaternion * quaternion).sum(-1)
    rows = [1 - two_s * (y * y + z * z), two_s * (x * y - z * w), two_s * (x * z + y * w),
            two_s * (x * y + z * w), 1 - two_s * (x * x + z * z), two_s * (y * z - x * w),
            two_s * (x * z - y * w), two_s * (y * z + x * w), 1 - two_s * (x * x + y * y)]
    return torch.stack(rows, -1).reshape(quaternion.shape[:-1] + (3, 3))


class MutualAttentionGCN(nn.Module):
    """`gcn_a` of the official model: GIN heads -> dense mutual attention -> GIN tails.

    Hand branch: (N*778, 902) -> offsets (N*778, 3). Object branch: (N*1000, 902) -> per-vertex
    [quaternion w, x, y, z, translation] (N*1000, 7). The residual blocks `res{1,2,3}_{h,o}` run only
    when `compute_discarded_blocks` (their outputs never reach the tails, as in the official forward).
    """

    def __init__(self, in_dim: int, hidden: int = 64, compute_discarded_blocks: bool = False):
        super().__init__()
        self.compute_discarded_blocks = compute_discarded_blocks
        self.head_h = GINBlock(in_dim, 256, hidden, norm_relu=True)
        self.head_o = GINBlock(in_dim, 256, hidden, norm_relu=True)
        for side in ("h", "o"):
            for k in (1, 2, 3):
                setattr(self, f"res{k}_{side}", GraphResBlock(hidden))
        self.tail_h = GINBlock(hidden, 32, 3, norm_relu=False)
        self.tail_o = GINBlock(hidden, 32, 7, norm_relu=False)
        self.a1 = DenseMutualAttention(hidden)

    def forward(self, hand_nodes, obj_nodes, hand_graph: BatchedGraph, obj_graph: BatchedGraph, batch: int,
                trace: Optional[dict] = None):
        head_h = self.head_h(hand_nodes, hand_graph)
        head_o = self.head_o(obj_nodes, obj_graph)
        channels = head_h.shape[1]
        fused = self.a1(head_h.reshape(batch, -1, channels).transpose(1, 2),
                        head_o.reshape(batch, -1, channels).transpose(1, 2), trace)
        hand = fused.hand.transpose(1, 2).reshape(-1, channels)
        obj = fused.obj.transpose(1, 2).reshape(-1, channels)
        if self.compute_discarded_blocks:
            discarded_h, discarded_o = hand, obj
            for k in (1, 2, 3):
                discarded_h = getattr(self, f"res{k}_h")(discarded_h, hand_graph)
                discarded_o = getattr(self, f"res{k}_o")(discarded_o, obj_graph)
                if trace is not None and k == 1:
                    trace["gcn/res1_h_discarded"] = discarded_h
        offsets = self.tail_h(hand, hand_graph)
        poses = self.tail_o(obj, obj_graph)
        if trace is not None:
            trace.update({"gcn/head_h": head_h, "gcn/head_o": head_o, "gcn/tail_h": offsets, "gcn/tail_o": poses})
        return offsets, poses


class DenseMutualAttentionNet(nn.Module):
    """The full model. Submodule names equal the official checkpoint's, so conversion strips prefixes only.

    Args:
        config: sizes (DMAConfig).
        hand: hand mesh faces and 21x778 joint regressor (MANO, stand-in hand, or parity-kit arrays).
        objects: the object catalogue; `object_index` in forward selects one per batch element.
    """

    def __init__(self, config: DMAConfig, hand: HandTopology, objects: Sequence[ObjectTemplate]):
        super().__init__()
        self.config = config
        if not objects:
            raise ValueError("DMA needs at least one object template")
        self.object_names = [o.name for o in objects]
        self.pose_backbone = ResNet(50, stem_norm=False, downsample_norm=False)
        self.mask_backbone = ResNet(50, stem_norm=False, downsample_norm=False)
        self.pose_net = PoseNet(config.num_joints, bins=config.lixel_bins)
        self.mesh_net = LixelNet(config.num_hand_vertices, bins=config.lixel_bins)
        self.obj_mesh_net = LixelNet(config.num_object_vertices, bins=config.lixel_bins)
        self.segmentation_net = SegmentationNet()
        # `global_img_feat.0.0`: the official Sequential wraps a one-layer conv1d stack (no BN, no ReLU).
        self.global_img_feat = nn.Sequential(nn.Sequential(nn.Conv1d(2048, config.global_feature_dim, 1)))
        self.gcn_a = MutualAttentionGCN(config.node_feature_dim, config.gcn_hidden, config.compute_discarded_blocks)
        self._register_hand(hand)
        self._register_objects(objects)

    def _register_hand(self, hand: HandTopology) -> None:
        cfg = self.config
        if hand.joint_regressor.shape != (cfg.num_joints, cfg.num_hand_vertices):
            raise ValueError(f"hand joint regressor must be ({cfg.num_joints}, {cfg.num_hand_vertices}), "
                             f"got {hand.joint_regressor.shape}")
        edges = faces_to_edge_index(torch.from_numpy(hand.faces), cfg.num_hand_vertices)
        self.register_buffer("hand_faces", torch.from_numpy(hand.faces), persistent=False)
        self.register_buffer("hand_neighbours", neighbour_table(edges, cfg.num_hand_vertices), persistent=False)
        self.register_buffer("joint_regressor", torch.from_numpy(hand.joint_regressor), persistent=False)

    def _register_objects(self, objects: Sequence[ObjectTemplate]) -> None:
        cfg = self.config
        tables = []
        for obj in objects:
            if obj.vertices.shape != (cfg.num_object_vertices, 3):
                raise ValueError(f"object {obj.name!r}: template must have {cfg.num_object_vertices} vertices "
                                 f"(resample it with tools.object_template), got {obj.vertices.shape}")
            faces = pad_faces(torch.from_numpy(obj.faces), cfg.object_face_rows)
            tables.append(neighbour_table(faces_to_edge_index(faces, cfg.num_object_vertices),
                                          cfg.num_object_vertices))
        # One padded neighbour table per catalogue object, so a batch can mix objects.
        self.register_buffer("object_templates", torch.from_numpy(np.stack([o.vertices for o in objects])),
                             persistent=False)
        self.register_buffer("object_neighbours", pad_neighbour_tables(tables, cfg.num_object_vertices),
                             persistent=False)

    def hand_edge_index(self) -> torch.Tensor:
        """(2, E) edge list of the hand graph, sorted by (source, target)."""
        return edge_index_from_table(self.hand_neighbours)

    def object_edge_index(self, object_index: int) -> torch.Tensor:
        """(2, E) edge list of one catalogue object's graph, sorted by (source, target)."""
        return edge_index_from_table(self.object_neighbours[object_index])

    def _grid_to_camera(self, grid: torch.Tensor, root_depth: torch.Tensor, focal: torch.Tensor,
                        principal_point: torch.Tensor) -> torch.Tensor:
        """(N, P, 3) grid -> metres: u, v = x, y * crop/bins; depth = (z/bins*2 - 1) D + root; back-project."""
        cfg = self.config
        pixels = grid[..., :2] * (cfg.input_size / cfg.lixel_bins)
        depth = (grid[..., 2] / cfg.lixel_bins * 2 - 1) * cfg.depth_radius_m + root_depth[:, None]
        xy = (pixels - principal_point[:, None]) / focal[:, None] * depth[..., None]
        return torch.cat([xy, depth[..., None]], dim=-1)

    def forward(self, image: torch.Tensor, root_joint: torch.Tensor, focal: torch.Tensor,
                principal_point: torch.Tensor, object_index: torch.Tensor,
                root_depth: Optional[torch.Tensor] = None, trace: Optional[dict] = None) -> DMAOutput:
        """
        Args:
            image: (N, 3, 256, 256) BGR crop in [0, 1].
            root_joint: (N, 3) hand root (wrist) in the crop camera frame, metres; the object translation is
                predicted relative to it.
            focal, principal_point: (N, 2) crop intrinsics in pixels.
            object_index: (N,) int64 index into the catalogue given at construction.
            root_depth: (N,) metres, the depth the hand's lixel z is relative to; default root_joint z. The
                official code takes it as a separate input (both are the ground-truth wrist there).
            trace: optional dict filled with intermediates under the parity kit's array names.
        """
        cfg = self.config
        batch = image.shape[0]
        if image.ndim != 4 or image.shape[1:] != (3, cfg.input_size, cfg.input_size):
            raise ValueError(f"image must be (N, 3, {cfg.input_size}, {cfg.input_size}), got {tuple(image.shape)}")
        hand_feats = self.pose_backbone(image)
        obj_feats = self.mask_backbone(image)
        hand_mesh = self.mesh_net(hand_feats.c5)
        obj_mesh = self.obj_mesh_net(obj_feats.c5)

        global_feat = self.global_img_feat((hand_feats.c5 + obj_feats.c5).mean(dim=(2, 3))[..., None])  # (N,512,1)
        nodes = []
        for name, feats, coords in (("hand", hand_feats, hand_mesh.coords), ("obj", obj_feats, obj_mesh.coords)):
            where = grid_to_sampling_coords(coords, cfg.lixel_bins)
            sampled = {key: sample_vertex_features(fmap, where)
                       for key, fmap in (("img", image), ("x0_stem", feats.stem), ("x1_maxpool", feats.pooled),
                                         ("layer1", feats.c2))}
            node = torch.cat([coords, *sampled.values(),
                              global_feat.transpose(1, 2).expand(-1, coords.shape[1], -1)], dim=2)
            nodes.append(node.reshape(-1, node.shape[2]))
            if trace is not None:
                trace.update({f"gcn/proj_{name}_{key}": value for key, value in sampled.items()})
                trace[f"gcn/input_{name}"] = nodes[-1]

        hand_graph = BatchedGraph(self.hand_neighbours.expand(batch, -1, -1), cfg.num_hand_vertices)
        obj_graph = BatchedGraph(self.object_neighbours[object_index], cfg.num_object_vertices)
        offsets, poses = self.gcn_a(nodes[0], nodes[1], hand_graph, obj_graph, batch, trace)

        hand_grid = hand_mesh.coords + offsets.reshape(batch, -1, 3)
        joints_grid = torch.matmul(self.joint_regressor, hand_grid)
        poses = poses.reshape(batch, -1, 7).mean(dim=1)
        quaternion, translation = poses[:, :4], poses[:, 4:] + root_joint
        rotation = quaternion_to_matrix(quaternion)
        template = self.object_templates[object_index]
        obj_vertices = torch.matmul(template, rotation.transpose(1, 2)) + translation[:, None]
        if root_depth is None:
            root_depth = root_joint[:, 2]
        out = DMAOutput(
            rough_hand_vertices_grid=hand_mesh.coords, rough_object_vertices_grid=obj_mesh.coords,
            hand_vertices_grid=hand_grid, hand_joints_grid=joints_grid,
            hand_vertices=self._grid_to_camera(hand_grid, root_depth, focal, principal_point),
            hand_joints=self._grid_to_camera(joints_grid, root_depth, focal, principal_point),
            object_quaternion=quaternion, object_rotation=rotation, object_translation=translation,
            object_vertices=obj_vertices)
        if self.training:
            out.pose_net_joints_grid = self.pose_net(hand_feats.c5).coords
            out.object_silhouette_logits = self.segmentation_net(obj_feats.c5, obj_feats.c4, obj_feats.c3,
                                                                 obj_feats.c2, obj_feats.stem)
        if trace is not None:
            self._trace_stages(trace, hand_feats, obj_feats, hand_mesh, obj_mesh, global_feat, out, template)
        return out

    @staticmethod
    def _trace_stages(trace, hand_feats, obj_feats, hand_mesh, obj_mesh, global_feat, out, template) -> None:
        for prefix, feats in (("backbone_hand", hand_feats), ("backbone_obj", obj_feats)):
            trace.update({f"{prefix}/x0_stem": feats.stem, f"{prefix}/x1_maxpool": feats.pooled,
                          f"{prefix}/layer1": feats.c2, f"{prefix}/layer2": feats.c3,
                          f"{prefix}/layer3": feats.c4, f"{prefix}/c5": feats.c5})
        for prefix, mesh in (("meshnet_hand", hand_mesh), ("meshnet_obj", obj_mesh)):
            trace.update({f"{prefix}/deconv_out": mesh.deconv, f"{prefix}/heatmap_x": mesh.logits_x,
                          f"{prefix}/heatmap_y": mesh.logits_y, f"{prefix}/heatmap_z": mesh.logits_z,
                          f"{prefix}/rough_verts": mesh.coords})
        trace.update({"gcn/global_img_feat": global_feat, "refine/hand_verts_grid": out.hand_vertices_grid,
                      "refine/hand_joints_grid": out.hand_joints_grid, "refine/obj_quat_mean": out.object_quaternion,
                      "refine/obj_rot": out.object_rotation, "refine/obj_trans": out.object_translation,
                      "out/obj_verts_refine": out.object_vertices, "out/hand_verts_out": out.hand_vertices,
                      "out/hand_joints_out": out.hand_joints, "out/obj_verts_template": template})
