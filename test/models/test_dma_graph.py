"""DMA building blocks: mesh graphs, GIN convolution, mutual attention, lixel soft-argmax, assets."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hand_object_pose.models.dma.assets import (FINGERTIP_VERTICES, joint_regressor_21, placeholder_hand_topology,
                                                placeholder_object, tube_mesh)
from hand_object_pose.models.dma.attention import DenseMutualAttention
from hand_object_pose.models.dma.graph import (BatchedGraph, GINConv, GraphResBlock, edge_index_from_table,
                                               faces_to_edge_index, neighbour_table, pad_faces, pad_neighbour_tables)
from hand_object_pose.models.dma.mesh_net import soft_argmax_1d
from hand_object_pose.models.dma.model import quaternion_to_matrix


def test_faces_to_edge_index_is_undirected_sorted_and_deduplicated():
    faces = torch.tensor([[0, 1, 2], [2, 1, 3]])
    edges = faces_to_edge_index(faces, 4)
    expected = [(0, 1), (0, 2), (1, 0), (1, 2), (1, 3), (2, 0), (2, 1), (2, 3), (3, 1), (3, 2)]
    assert [tuple(e) for e in edges.T.tolist()] == expected


def test_zero_padded_faces_add_exactly_one_self_loop_on_vertex_0():
    faces = pad_faces(torch.tensor([[0, 1, 2], [2, 1, 3]]), 5)
    assert faces.shape == (5, 3)
    edges = faces_to_edge_index(faces, 4)
    assert [tuple(e) for e in edges.T.tolist()][:3] == [(0, 0), (0, 1), (0, 2)]
    assert edges.shape[1] == 11
    with pytest.raises(ValueError, match="more than"):
        pad_faces(torch.zeros(6, 3, dtype=torch.int64), 5)


def test_faces_to_edge_index_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\(F, 3\)"):
        faces_to_edge_index(torch.zeros(4, 2, dtype=torch.int64), 4)
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        faces_to_edge_index(torch.tensor([[0, 1, 4]]), 4)


def _graph(edges, batch, vertices, width=None):
    table = neighbour_table(edges, vertices)
    if width is not None:  # extra padding slots, as objects with fewer neighbours get in a catalogue
        table = torch.cat([table, torch.full((vertices, width - table.shape[1]), vertices)], dim=1)
    return BatchedGraph(table.expand(batch, -1, -1), vertices)


def test_neighbour_table_round_trips_to_the_edge_list():
    edges = faces_to_edge_index(pad_faces(torch.tensor([[0, 1, 2], [2, 1, 3]]), 3), 4)
    table = neighbour_table(edges, 4)
    # In-neighbours of each vertex in ascending order, padded with 4; vertex 0 has its self-loop.
    assert table.tolist() == [[0, 1, 2], [0, 2, 3], [0, 1, 3], [1, 2, 4]]
    assert torch.equal(edge_index_from_table(table), edges)
    stacked = pad_neighbour_tables([table, neighbour_table(faces_to_edge_index(torch.tensor([[0, 1, 2]]), 4), 4)], 4)
    assert stacked.shape == (2, 4, 3) and stacked[1, 3].tolist() == [4, 4, 4]


def test_gin_conv_equals_mlp_of_self_plus_neighbour_sum():
    torch.manual_seed(0)
    edges = faces_to_edge_index(pad_faces(torch.tensor([[0, 1, 2], [2, 1, 3]]), 3), 4)  # with (0, 0)
    conv = GINConv(5, 7, 2)
    conv.eps.fill_(0.5)
    x = torch.randn(2 * 4, 5)
    adjacency = torch.zeros(4, 4)
    adjacency[edges[1], edges[0]] = 1.0
    dense = torch.block_diag(adjacency, adjacency)
    expected = conv.nn(1.5 * x + dense @ x)
    torch.testing.assert_close(conv(x, _graph(edges, 2, 4)), expected)
    # Extra padding slots contribute nothing.
    torch.testing.assert_close(conv(x, _graph(edges, 2, 4, width=6)), expected)


def test_residual_block_adds_input_after_the_relu():
    torch.manual_seed(1)
    block = GraphResBlock(4).eval()
    edges = faces_to_edge_index(torch.tensor([[0, 1, 2]]), 3)
    x = torch.randn(3, 4)
    graph = _graph(edges, 1, 3)
    inner = torch.relu(block.bn2(block.conv2(torch.relu(block.bn1(block.conv1(x, graph))), graph)))
    torch.testing.assert_close(block(x, graph), inner + x)


def test_mutual_attention_softmax_axes_and_vertex_axis_kernel():
    torch.manual_seed(2)
    attention = DenseMutualAttention(8).eval()
    hand, obj = torch.randn(1, 8, 12), torch.randn(1, 8, 15)
    trace = {}
    attention(hand, obj, trace)
    torch.testing.assert_close(trace["gcn/attn_A_o"].sum(2), torch.ones(1, 12))  # over object vertices
    torch.testing.assert_close(trace["gcn/attn_A_h"].sum(1), torch.ones(1, 15))  # over hand vertices
    # Kernel 3 along the vertex index: changing hand vertex 5 changes keys of vertices 4..6 only.
    moved = hand.clone()
    moved[..., 5] += 1.0
    trace2 = {}
    attention(moved, obj, trace2)
    changed = (trace2["gcn/attn_kh1"] - trace["gcn/attn_kh1"]).abs().amax(dim=1)[0] > 0
    assert set(changed.nonzero().flatten().tolist()) <= {4, 5, 6}
    assert changed[5]


def test_soft_argmax_of_a_sharp_peak_is_its_bin():
    logits = torch.full((2, 64), -1e4)
    logits[0, 10] = 0.0
    logits[1, 40] = 0.0
    logits[1, 41] = 0.0
    torch.testing.assert_close(soft_argmax_1d(logits), torch.tensor([10.0, 40.5]))


def test_quaternion_to_matrix_normalises_implicitly():
    half = float(np.sqrt(0.5))
    rot_z90 = quaternion_to_matrix(torch.tensor([half, 0.0, 0.0, half]))
    torch.testing.assert_close(rot_z90, torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]))
    torch.testing.assert_close(quaternion_to_matrix(torch.tensor([3 * half, 0.0, 0.0, 3 * half])), rot_z90)
    q = torch.tensor([[-57.46, -18.17, -11.19, -23.94]])  # un-normalised, as the model produces
    r = quaternion_to_matrix(q)[0]
    torch.testing.assert_close(r @ r.T, torch.eye(3), atol=1e-6, rtol=0)
    assert torch.det(r) == pytest.approx(1.0, abs=1e-6)


def test_joint_regressor_21_orders_mano_joints_and_tips_wrist_first():
    mano = np.zeros((16, 778), dtype=np.float32)
    mano[np.arange(16), np.arange(16)] = 1.0  # joint k reads vertex k
    reg = joint_regressor_21(mano)
    read = reg.argmax(1).tolist()
    tips = list(FINGERTIP_VERTICES)  # thumb, index, middle, ring, pinky
    # MANO: 0 wrist, 1-3 index, 4-6 middle, 7-9 pinky, 10-12 ring, 13-15 thumb.
    assert read == [0, 13, 14, 15, tips[0], 1, 2, 3, tips[1], 4, 5, 6, tips[2], 10, 11, 12, tips[3],
                    7, 8, 9, tips[4]]
    with pytest.raises(ValueError, match=r"\(16, 778\)"):
        joint_regressor_21(np.zeros((21, 778)))


def test_placeholder_assets_have_the_model_sizes():
    hand = placeholder_hand_topology()
    assert hand.joint_regressor.shape == (21, 778) and hand.faces.max() == 777
    np.testing.assert_allclose(hand.joint_regressor.sum(1), 1.0, rtol=1e-5)
    obj = placeholder_object()
    assert obj.vertices.shape == (1000, 3) and obj.faces.max() == 999 and len(obj.faces) <= 2007
    vertices, faces = tube_mesh(4, 6, 1.0, 0.5)
    assert vertices.shape == (26, 3) and faces.shape == (2 * 6 * 3 + 12, 3)


def test_hand_topology_from_the_standin_hand_file():
    from hand_object_pose.geometry.hand_model_files import load_hand_model
    from hand_object_pose.models.dma.assets import hand_topology_from_model
    from hand_object_pose.export.parity_kit import REPO_ROOT

    arrays = load_hand_model(REPO_ROOT / "models" / "standin_hand" / "standin_hand_right.npz")
    hand = hand_topology_from_model(arrays)
    assert hand.faces.shape == (1538, 3) and hand.joint_regressor.shape == (21, 778)
    np.testing.assert_allclose(hand.joint_regressor[0], arrays["J_regressor"][0], rtol=1e-6)  # wrist
    assert hand.joint_regressor[4].argmax() == FINGERTIP_VERTICES[0]  # thumb tip
    edges = faces_to_edge_index(torch.from_numpy(hand.faces), 778)
    pairs = set(map(tuple, edges.T.tolist()))
    assert all((j, i) in pairs for i, j in pairs) and len(pairs) > 4000  # undirected, about MANO's 4640
