"""A2J-Transformer model: shapes, aggregation, derived confidences, orders and metric conversion."""
from __future__ import annotations

import math

import pytest
import torch

from hand_object_pose.geometry.skeleton import INTERHAND_JOINT_NAMES
from hand_object_pose.models import build_model
from hand_object_pose.models.a2j import A2JConfig, build, output_to_camera
from hand_object_pose.models.a2j.heads import aggregate, presence_from_confidence, weight_peakedness
from hand_object_pose.models.a2j.output import CONFIDENCE_FROM_ANCHOR_WEIGHTS, CONFIDENCE_FROM_HEAD

SMALL = A2JConfig(input_size=128, output_size=128, anchors_per_side=4, enc_layers=1, dec_layers=2)


@pytest.fixture(scope="module")
def small_model():
    torch.manual_seed(0)
    return build(SMALL).eval()


def test_preset_is_registered():
    from hand_object_pose.models.registry import get_preset
    family, config = get_preset("a2j_ih26m")
    assert config.num_anchors == 768 and config.num_joints == 42 and config.enc_layers == config.dec_layers == 6


def test_inference_runs_only_the_last_heads_and_matches_all_layers(small_model):
    image = torch.rand(2, 3, 128, 128)
    with torch.no_grad():
        fast = small_model(image)
        full = small_model(image, all_layers=True)
    assert fast.joints.shape == (2, 42, 3) and fast.joints_per_layer is None
    assert full.joints_per_layer.shape == (2, 2, 42, 3) and full.anchor_positions_per_layer.shape == (2, 2, 42, 3)
    torch.testing.assert_close(fast.joints, full.joints_per_layer[-1])
    torch.testing.assert_close(fast.joints, full.joints)
    assert fast.anchor_weights.shape == (2, 48, 42)
    torch.testing.assert_close(fast.anchor_weights.sum(1), torch.ones(2, 42))
    # Batch items are independent.
    with torch.no_grad():
        single = small_model(image[1:])
    torch.testing.assert_close(single.joints[0], fast.joints[1], rtol=1e-4, atol=1e-4)


def test_wrong_input_is_rejected(small_model):
    with pytest.raises(ValueError, match=r"\(N, 3, 128, 128\)"):
        small_model(torch.rand(1, 3, 256, 256))


def test_aggregate_by_hand():
    anchors = torch.tensor([[0.0, 0.0, 0.0], [10.0, 20.0, 30.0]])
    offsets = torch.tensor([[[[1.0, 1.0, 1.0]], [[-2.0, 0.0, 2.0]]]])           # (1, A=2, J=1, 3)
    logits = torch.tensor([[[0.0], [math.log(3.0)]]])                            # weights 1/4, 3/4
    joints, anchor_pos, weights = aggregate(anchors, offsets, logits)
    torch.testing.assert_close(weights[0, :, 0], torch.tensor([0.25, 0.75]))
    torch.testing.assert_close(anchor_pos[0, 0], torch.tensor([7.5, 15.0, 22.5]))
    torch.testing.assert_close(joints[0, 0], torch.tensor([0.25 + 0.75 * 8, 0.25 + 15.0, 0.25 + 0.75 * 32]))


def test_weight_peakedness_and_presence():
    uniform = torch.full((1, 8, 2), 1 / 8)
    one_hot = torch.zeros(1, 8, 2)
    one_hot[0, 3] = 1
    assert weight_peakedness(uniform)[0].tolist() == pytest.approx([0.0, 0.0], abs=1e-6)
    assert weight_peakedness(one_hot)[0].tolist() == pytest.approx([1.0, 1.0])
    half = torch.zeros(1, 8, 1)
    half[0, :2] = 0.5                                                            # entropy log 2 of log 8
    assert weight_peakedness(half).item() == pytest.approx(1 - 1 / 3)
    conf = torch.tensor([[1.0] * 21 + [0.0] * 20 + [0.42]])
    assert presence_from_confidence(conf)[0].tolist() == pytest.approx([1.0, 0.02])


def test_confidence_sources(small_model):
    image = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        derived = small_model(image)
        torch.manual_seed(0)
        headed = build(A2JConfig(**{**SMALL.__dict__, "presence_head": True, "confidence_head": True})).eval()(image)
    assert derived.confidence_source == derived.presence_source == CONFIDENCE_FROM_ANCHOR_WEIGHTS
    torch.testing.assert_close(derived.joint_confidence, weight_peakedness(derived.anchor_weights))
    assert headed.confidence_source == headed.presence_source == CONFIDENCE_FROM_HEAD
    assert headed.joint_confidence.shape == (1, 42) and headed.hand_presence.shape == (1, 2)
    torch.testing.assert_close(headed.hand_presence, headed.hand_presence_logits.sigmoid())
    assert ((headed.joint_confidence > 0) & (headed.joint_confidence < 1)).all()


def test_canonical_order_puts_wrists_first(small_model):
    with torch.no_grad():
        out = small_model(torch.rand(1, 3, 128, 128))
    canon = out.canonical_joints()
    wrist = INTERHAND_JOINT_NAMES.index("wrist")
    thumb_tip = INTERHAND_JOINT_NAMES.index("thumb4")
    torch.testing.assert_close(canon[:, 0], out.joints[:, wrist])
    torch.testing.assert_close(canon[:, 21], out.joints[:, 21 + wrist])
    torch.testing.assert_close(canon[:, 4], out.joints[:, thumb_tip])
    torch.testing.assert_close(out.canonical_joint_confidence()[:, 21], out.joint_confidence[:, 21 + wrist])


def test_output_to_camera_by_hand():
    # Crop pixel (x, y) -> image pixel (2x + 100, 2y + 50); K: f = 500, principal point (320, 240).
    affine = torch.tensor([[[2.0, 0.0, 100.0], [0.0, 2.0, 50.0]]])
    k = torch.tensor([[[500.0, 0.0, 320.0], [0.0, 500.0, 240.0], [0.0, 0.0, 1.0]]])
    root = torch.tensor([[0.6, 0.8]])
    joints = torch.zeros(1, 42, 3)
    joints[0, 20] = torch.tensor([110.0, 95.0, 128.0])     # right wrist: z at the cube centre = root depth
    joints[0, 41] = torch.tensor([160.0, 95.0, 192.0])     # left wrist: z = (192/256*2-1)*0.2 = +0.1 m
    xyz, uv = output_to_camera(joints, affine, k, root)
    torch.testing.assert_close(uv[0, 20], torch.tensor([320.0, 240.0]))
    torch.testing.assert_close(xyz[0, 20], torch.tensor([0.0, 0.0, 0.6]))
    torch.testing.assert_close(uv[0, 41], torch.tensor([420.0, 240.0]))
    torch.testing.assert_close(xyz[0, 41], torch.tensor([100 / 500 * 0.9, 0.0, 0.9]))
    with pytest.raises(ValueError, match="root_depth"):
        output_to_camera(joints, affine, k, root[:, :1])


def test_build_model_by_name_has_official_parameter_count():
    model = build_model("a2j_ih26m")
    # models.md section 0: official 42.89 M parameters; ours omits the two inert copies of the
    # anchor-update MLPs (6 x 132,098 elements, registered twice but counted once by parameters()).
    official = 42_890_000
    ours = sum(p.numel() for p in model.parameters())
    assert abs(ours + 6 * 132_098 - official) < 10_000
    # Official trainable count 42.66 M: the stem and layer1 are frozen.
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert abs(trainable + 6 * 132_098 - 42_660_000) < 10_000
    assert not model.backbone.conv1.weight.requires_grad and model.backbone.layer2[0].conv1.weight.requires_grad


def test_training_step_reaches_every_trained_part():
    from hand_object_pose.models.a2j.criterion import A2JCriterion
    torch.manual_seed(0)
    model = build(SMALL).train()
    out = model(torch.rand(2, 3, 128, 128))
    assert out.joints_per_layer.shape == (2, 2, 42, 3)                      # training: every layer
    target = torch.rand(2, 42, 3) * 128
    valid = torch.ones(2, 42, dtype=torch.bool)
    A2JCriterion()(out.joints_per_layer, out.anchor_positions_per_layer, target, valid).total.backward()
    # (level_embed only enters through the offset / weight projections, whose weights start at zero:
    # its first gradient is zero by design, as in Deformable DETR.)
    for name in ("anchors", "query_content", "encoder.layers.0.self_attn.value_proj.weight",
                 "encoder.layers.0.self_attn.sampling_offsets.weight", "decoder.layers.1.cross_attn.value_proj.weight",
                 "offset_heads.0.layers.2.weight", "weight_heads.1.layers.2.weight", "backbone.layer4.0.conv1.weight"):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name
    assert model.backbone.layer1[0].conv1.weight.grad is None
