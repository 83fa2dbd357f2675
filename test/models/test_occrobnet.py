"""OccRobNet: gated attention by hand, CIET locality and aggregation, FPN, tiny-model forward/backward."""
import dataclasses
import math
import re

import pytest
import torch

from hand_object_pose.models.common.transformer import MultiheadAttention
from hand_object_pose.models.kpt.criterion import KptCriterion
from hand_object_pose.models.kpt.selection import tokens_from_locations
from hand_object_pose.models.kpt.targets import ground_truth_tokens, kpt_targets
from hand_object_pose.models.occrobnet import (CIETBlock, FPN, PRESETS, OccRobNetConfig, OccRobNetOutput, build,
                                               gated_attention)
from hand_object_pose.models.registry import get_preset

TINY = OccRobNetConfig(pose_representation="3D", has_object=True, object_left_translation=True, backbone_depth=18,
                       enc_layers=1, dec_layers=1, fpn_channels=64, dim_feedforward=128, ciet_attention_groups=4,
                       ciet_key_groups=2, max_tokens=40, max_object_tokens=10)


# --- gated attention ----------------------------------------------------------------------------------

def test_gated_attention_matches_hand_computed_example():
    logits = torch.tensor([[[[0.0, math.log(2.0), 5.0]]]])          # (N=1, H=1, Q=1, S=3)
    blocked = torch.tensor([False, False, True]).view(1, 1, 1, 3)
    w = gated_attention(logits, blocked)
    # softmax over the two open keys: 1/3, 2/3; sigmoid: 1/2, 2/3; the masked key: 0.
    assert w.flatten().tolist() == pytest.approx([1 / 6, 4 / 9, 0.0], abs=1e-7)
    w = gated_attention(logits, None)
    soft = torch.softmax(logits, -1)
    assert torch.allclose(w, soft * torch.sigmoid(logits))
    # A fully masked row yields no attention at all (no NaN).
    assert gated_attention(logits, torch.ones(1, 1, 1, 3, dtype=torch.bool)).abs().max() == 0


def test_gated_multihead_attention_ignores_padding_tokens():
    torch.manual_seed(0)
    attn = MultiheadAttention(8, 2, attention_weights=gated_attention).eval()
    q = torch.randn(3, 2, 8)
    kv = torch.randn(5, 2, 8)
    pad = torch.tensor([[False, False, False, True, True], [False, True, True, True, True]])
    out, weights = attn(q, kv, kv, key_padding_mask=pad)
    assert weights.shape == (2, 3, 5)
    assert weights[pad[:, None].expand_as(weights)].abs().max() == 0
    changed = kv.clone()
    changed[3:, 0] += 10.0
    changed[1:, 1] -= 7.0
    out2, _ = attn(q, changed, changed, key_padding_mask=pad)
    assert torch.allclose(out, out2, atol=1e-6)
    # Hand check: per head, softmax * sigmoid of the scaled logits over the open keys, averaged over heads.
    w_q, w_k, _ = attn.in_proj_weight.chunk(3)
    b_q, b_k, _ = attn.in_proj_bias.chunk(3)
    qp, kp = q[0, 0] @ w_q.T + b_q, kv[:3, 0] @ w_k.T + b_k
    logits = torch.stack([kp[:, 4 * h:4 * h + 4] @ qp[4 * h:4 * h + 4] / 2.0 for h in range(2)])  # head_dim 4
    mean = (torch.softmax(logits, -1) * torch.sigmoid(logits)).mean(0)
    assert torch.allclose(weights[0, 0, :3], mean, atol=1e-6)


# --- CIET ---------------------------------------------------------------------------------------------

def test_ciet_aggregation_by_hand():
    block = CIETBlock(4, kernel=3, attention_groups=2, reduction=2, key_groups=2)
    value = torch.arange(2 * 4 * 3 * 3, dtype=torch.float32).reshape(2, 4, 3, 3)
    weights = torch.zeros(2, 2, 9, 3, 3)
    weights[:, 0, 5] = 1.0      # group 0: offset (0, +1) -> the right neighbour
    weights[:, 1, 1] = 0.5      # group 1: half of the upper neighbour + half of itself
    weights[:, 1, 4] = 0.5
    out = block.aggregate(value, weights)
    right = torch.nn.functional.pad(value[:, :2, :, 1:], (0, 1))
    assert torch.equal(out[:, :2], right)
    up = torch.nn.functional.pad(value[:, 2:, :-1], (0, 0, 1, 0))
    assert torch.allclose(out[:, 2:], 0.5 * up + 0.5 * value[:, 2:])


def test_ciet_shape_softmax_window_and_locality():
    torch.manual_seed(0)
    block = CIETBlock(16, kernel=3, attention_groups=4, reduction=4, key_groups=4).eval()
    x = torch.randn(1, 16, 12, 12)
    with torch.no_grad():
        out = block(x)
        _, weights = block.local_attention(x)
    assert out.shape == x.shape
    assert torch.allclose(weights.sum(dim=2), torch.ones(1, 4, 12, 12), atol=1e-6)
    # Output (5, 5) depends only on inputs within Chebyshev distance 1 (k // 2).
    far = x.clone()
    far[..., 7, 5] += 5.0          # 2 rows away
    far[..., 5, 2] -= 5.0          # 3 columns away
    near = x.clone()
    near[..., 6, 6] += 5.0         # diagonal neighbour
    with torch.no_grad():
        out_far, out_near = block(far), block(near)
    assert torch.equal(out_far[..., 5, 5], out[..., 5, 5])
    assert not torch.allclose(out_near[..., 5, 5], out[..., 5, 5])
    assert not torch.allclose(out_far[..., 6, 5], out[..., 6, 5])   # the change does reach its own window


def test_ciet_rejects_bad_arguments():
    with pytest.raises(ValueError, match="odd"):
        CIETBlock(8, kernel=2)
    with pytest.raises(ValueError, match="divisible"):
        CIETBlock(10, attention_groups=4)
    with pytest.raises(ValueError, match="ciet_kernel"):
        OccRobNetConfig(ciet_kernel=4)
    with pytest.raises(ValueError, match="big_decoder"):
        OccRobNetConfig(big_decoder=True)
    with pytest.raises(ValueError, match="attention"):
        OccRobNetConfig(attention="linear")


# --- FPN ----------------------------------------------------------------------------------------------

def test_fpn_shapes_and_top_down_path():
    torch.manual_seed(0)
    fpn = FPN((8, 16, 32, 64), channels=12)
    stages = [torch.randn(1, c, s, s) for c, s in ((8, 16), (16, 8), (32, 4), (64, 2))]
    p2, p3, p4, p5 = fpn(*stages)
    assert [p.shape for p in (p2, p3, p4, p5)] == [(1, 12, 16, 16), (1, 12, 8, 8), (1, 12, 4, 4), (1, 12, 2, 2)]
    assert torch.allclose(p5, fpn.smooth[3](fpn.lateral[3](stages[3])))
    top4 = fpn.lateral[2](stages[2]) + fpn.lateral[3](stages[3]).repeat_interleave(2, -1).repeat_interleave(2, -2)
    assert torch.allclose(p4, fpn.smooth[2](top4), atol=1e-6)


# --- the model ----------------------------------------------------------------------------------------

def test_presets_are_registered_and_valid():
    assert {"occrobnet_ih26m", "occrobnet_h2o3d", "occrobnet_ho3d"} <= set(PRESETS)
    family, config = get_preset("occrobnet_h2o3d")
    assert family.name == "occrobnet" and config.attention == "gated"
    assert PRESETS["occrobnet_h2o3d"].max_object_tokens == 20
    assert PRESETS["occrobnet_ih26m"].pose_representation == "2p5D"
    assert PRESETS["occrobnet_ho3d_ciet_only"].attention == "softmax"
    assert not PRESETS["occrobnet_ho3d_sigmoid_only"].use_ciet


def _batch(n=2, with_object=True):
    g = torch.Generator().manual_seed(2)
    cam = torch.randn(n, 2, 21, 3, generator=g) * 0.04
    cam[..., 2] += 0.6
    uv = torch.rand(n, 2, 21, 2, generator=g) * 180 + 30
    valid = torch.ones(n, 2, 21, dtype=torch.bool)
    valid[-1, 1] = False
    mask = torch.zeros(n, 128, 128)
    mask[:, 50:70, 40:80] = 1.0
    if not with_object:
        return kpt_targets(cam, uv, valid)
    return kpt_targets(cam, uv, valid, obj_mask=mask, obj_rot=torch.eye(3).expand(n, 3, 3),
                       obj_trans=torch.tensor([0.0, 0.0, 0.65]).expand(n, 3),
                       obj_corners_rest=torch.randn(n, 8, 3) * 0.05)


def test_forward_shapes_loss_and_gradients():
    torch.manual_seed(0)
    model = build(TINY).train()
    t = _batch()
    tokens = ground_truth_tokens(t, TINY.max_tokens, TINY.max_object_tokens)
    out = model(torch.rand(2, 3, 256, 256), tokens=tokens)
    assert isinstance(out, OccRobNetOutput)
    assert out.joint_heatmaps.shape == (2, 42, 128, 128) and out.heatmap.shape == (2, 128, 128)
    assert torch.equal(out.heatmap, out.joint_heatmaps.amax(1))
    assert out.seg.shape == (2, 128, 128)
    assert out.class_logits.shape == (1, 2, 40, 44) and out.joint_vecs.shape == (1, 2, 40, 3)
    assert out.obj_left_trans.shape == (1, 2, 3) and out.hand_type_logits.shape == (2, 2)
    losses = KptCriterion(TINY)(out, t)
    assert torch.isfinite(losses["total"]) and losses["heatmap"] > 0
    losses["total"].backward()
    params = dict(model.named_parameters())
    for name in ("backbone.conv1.weight", "fpn.lateral.0.weight", "ciet.0.theta.0.weight", "ciet.0.delta.weight",
                 "ciet.0.key_embed.0.weight", "joint_head.3.weight", "seg_head.3.weight",
                 "transformer.encoder.layers.0.self_attn.in_proj_weight", "heads.linear_joint_vecs.layers.2.weight"):
        assert params[name].grad is not None and params[name].grad.abs().sum() > 0, name


def test_padding_tokens_do_not_change_the_outputs():
    torch.manual_seed(0)
    model = build(TINY).eval()
    xy = torch.rand(1, 40, 2) * 100 + 10
    valid = torch.zeros(1, 40, dtype=torch.bool)
    valid[0, :12] = True
    kind = torch.ones(1, 40, dtype=torch.long)
    kind[0, 9:12] = 43
    image = torch.rand(1, 3, 256, 256)
    with torch.no_grad():
        a = model(image, tokens=tokens_from_locations(xy, valid, kind, 128))
        moved = tokens_from_locations(xy, valid, kind, 128)
        moved = moved._replace(norm=torch.where(valid[..., None], moved.norm, torch.rand(1, 40, 2) * 2 - 1))
        b = model(image, tokens=moved)
    for name in ("joint_vecs", "rel_trans", "cam", "obj_rot6d", "obj_trans"):
        assert torch.allclose(getattr(a, name), getattr(b, name), atol=1e-5), name
    assert torch.allclose(a.class_logits[:, :, :12], b.class_logits[:, :, :12], atol=1e-5)
    assert a.cross_attn_weights[..., 12:].abs().max() == 0


def test_selection_inside_forward_and_softmax_ablation():
    torch.manual_seed(0)
    cfg = dataclasses.replace(TINY, hand_threshold=-1e9, object_threshold=-1e9, selection="maxpool",
                              attention="softmax", use_ciet=False)
    model = build(cfg).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, 256, 256))
    assert int(out.token_valid.sum()) == cfg.max_tokens
    assert int((out.token_kind == 43).sum()) == cfg.max_object_tokens
    assert torch.allclose(out.cross_attn_weights.sum(-1), torch.ones_like(out.cross_attn_weights.sum(-1)), atol=1e-5)


def test_2p5d_hands_only_variant_forward_and_loss():
    torch.manual_seed(0)
    cfg = dataclasses.replace(TINY, pose_representation="2p5D", has_object=False, object_left_translation=False)
    model = build(cfg).train()
    t = _batch(with_object=False)
    out = model(torch.rand(2, 3, 256, 256), tokens=ground_truth_tokens(t, cfg.max_tokens, cfg.max_object_tokens))
    assert out.seg is None and out.obj_trans is None
    assert out.joint_2p5d_logits.shape == (1, 2, 42, 3, 128) and out.class_logits.shape == (1, 2, 40, 43)
    losses = KptCriterion(cfg)(out, t)
    assert set(losses) == {"heatmap", "identity", "joint_2p5d", "rel_trans", "hand_type", "total"}
    losses["total"].backward()
    assert model.ciet[0].delta.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("shape", [(1, 3, 128, 128), (1, 3, 256, 255), (1, 1, 256, 256), (3, 256, 256)])
def test_forward_rejects_images_of_the_wrong_shape(shape):
    model = build(TINY).eval()
    expected = r"image must be \(N, 3, 256, 256\) RGB in \[0, 1\], got " + re.escape(str(shape))
    with pytest.raises(ValueError, match=expected):
        model(torch.rand(*shape))
