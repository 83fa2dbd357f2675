"""Keypoint Transformer model: presets, output shapes per pose representation, masks, joint maths."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from hand_object_pose.geometry import skeleton
from hand_object_pose.models import build_model, preset_names
from hand_object_pose.models.kpt import PRESETS, KptConfig, build
from hand_object_pose.models.kpt.output import joints_from_bone_vectors
from hand_object_pose.models.kpt.queries import memory_mask, query_layout, self_attention_mask
from hand_object_pose.models.kpt.selection import OBJECT_TOKEN, tokens_from_locations

RELEASED = ("kpt_ih26m_2p5d", "kpt_ih26m_angles", "kpt_ho3d_3d", "kpt_h2o3d_3d")


def small(name: str, **kw) -> KptConfig:
    """A preset shrunk for fast tests (ResNet-18, small decoder) keeping its heads and queries."""
    return dataclasses.replace(PRESETS[name], backbone_depth=18, big_decoder=False, **kw)


def test_presets_are_registered_and_match_the_released_configs():
    names = set(preset_names())
    assert set(RELEASED) | {"kpt_ho3d_3d_r18", "kpt_ho3d_3d_r34", "kpt_ih26m_2p5d_r18", "kpt_ih26m_2p5d_r34"} <= names
    expect = {"kpt_ih26m_2p5d": ("2p5D", False, 1, False), "kpt_ih26m_angles": ("angles", True, 6, False),
              "kpt_ho3d_3d": ("3D", True, 6, True), "kpt_h2o3d_3d": ("3D", False, 1, True)}
    for name, (rep, big, dec_layers, obj) in expect.items():
        cfg = PRESETS[name]
        assert (cfg.pose_representation, cfg.big_decoder, cfg.dec_layers, cfg.has_object) == (rep, big, dec_layers, obj)
    assert PRESETS["kpt_h2o3d_3d"].object_left_translation


def test_parameter_counts_of_the_released_configs():
    # models.md section 0 (official get_model, total): 49.02 M / 117.09 M / 121.41 M / 49.85 M, which
    # includes the unused norm1, linear_hand_type and (non-angles) linear_shape tensors.
    unused = {"kpt_ih26m_2p5d": 992 * 2 + 66563 + 134154, "kpt_ih26m_angles": 3968 * 2 + 66563,
              "kpt_ho3d_3d": 3968 * 2 + 66563 + 134154, "kpt_h2o3d_3d": 992 * 2 + 66563 + 134154}
    official = {"kpt_ih26m_2p5d": 49.02e6, "kpt_ih26m_angles": 117.09e6, "kpt_ho3d_3d": 121.41e6,
                "kpt_h2o3d_3d": 49.85e6}
    for name in RELEASED:
        with torch.device("meta"):
            model = build(PRESETS[name])
        count = sum(p.numel() for p in model.parameters()) + unused[name]
        assert abs(count - official[name]) < 0.006e6, (name, count)


def test_table5_backbone_presets_match_the_papers_parameter_counts():
    # Paper Table 5 (InterHand2.6M, ResNet-18 / 34 / 50): 28M / 38M / 48M parameters in total.
    paper = {"kpt_ih26m_2p5d_r18": 28e6, "kpt_ih26m_2p5d_r34": 38e6, "kpt_ih26m_2p5d": 48e6}
    for name, total in paper.items():
        assert dataclasses.replace(PRESETS[name], backbone_depth=50) == PRESETS["kpt_ih26m_2p5d"], name
        with torch.device("meta"):
            count = sum(p.numel() for p in build(PRESETS[name]).parameters())
        assert abs(count - total) / total < 0.03, (name, count)


@pytest.mark.parametrize("name", RELEASED)
def test_forward_shapes_batch_two(name):
    torch.manual_seed(0)
    cfg = small(name, dec_layers=2)
    model = build(cfg).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 256, 256))
    lay = query_layout(cfg)
    assert out.heatmap.shape == (2, 128, 128)
    assert out.token_xy.shape == (2, 100, 2) and out.token_kind.shape == (2, 100)
    assert out.class_logits.shape == (6, 2, 100, cfg.num_classes)
    assert out.rel_trans.shape == out.cam.shape == (2, 2, 3)
    assert out.cross_attn_weights.shape == (2, 2, lay.num_queries, 100)
    assert out.hand_type.shape == (2, 2)
    if cfg.pose_representation == "3D":
        assert out.joint_vecs.shape == (2, 2, 40, 3)
        assert out.joints_3d.shape == (2, 2, 2, 20, 3)
        assert out.canonical_joints_3d().shape == (2, 42, 3)
    elif cfg.pose_representation == "2p5D":
        assert out.joint_2p5d_logits.shape == (2, 2, 42, 3, 128)
        assert out.joint_2p5d.shape == (2, 42, 3) and out.joint_2p5d.dtype == torch.int64
    else:
        assert out.mano_pose.shape == (2, 2, 32, 3) and out.mano_shape.shape == (2, 2, 10)
    if cfg.has_object:
        assert out.seg.shape == (2, 128, 128)
        assert out.obj_rot6d.shape == (2, 2, 6) and out.obj_trans.shape == (2, 2, 3)
        assert out.obj_corner_proj.shape == (2, 2, 16)
        assert (out.obj_left_trans is not None) == cfg.object_left_translation
    else:
        assert out.seg is None and out.obj_rot6d is None


def test_batch_items_are_independent():
    torch.manual_seed(1)
    model = build(small("kpt_h2o3d_3d")).eval()
    images = torch.rand(2, 3, 256, 256)
    xy = torch.randint(0, 128, (2, 100, 2)).float()
    valid = torch.arange(100)[None].expand(2, 100) < torch.tensor([[30], [70]])
    kind = torch.where(torch.arange(100)[None] < 20, 1, OBJECT_TOKEN).expand(2, 100)
    tokens = tokens_from_locations(xy, valid, kind, 128)
    with torch.no_grad():
        both = model(images, tokens=tokens)
        one = model(images[1:], tokens=tokens_from_locations(xy[1:], valid[1:], kind[1:], 128))
    torch.testing.assert_close(both.joint_vecs[:, 1:], one.joint_vecs, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(both.obj_rot6d[:, 1:], one.obj_rot6d, atol=1e-5, rtol=1e-4)


def test_padding_tokens_do_not_change_the_queries():
    torch.manual_seed(2)
    model = build(small("kpt_ih26m_2p5d")).eval()
    image = torch.rand(1, 3, 256, 256)
    xy = torch.randint(0, 128, (1, 100, 2)).float()
    valid = torch.arange(100)[None] < 25
    kind = torch.ones(1, 100, dtype=torch.int64)
    xy_other = xy.clone()
    xy_other[:, 25:] = torch.randint(0, 128, (1, 75, 2)).float()  # move only the padded slots
    with torch.no_grad():
        a = model(image, tokens=tokens_from_locations(xy, valid, kind, 128))
        b = model(image, tokens=tokens_from_locations(xy_other, valid, kind, 128))
    torch.testing.assert_close(a.joint_2p5d_logits, b.joint_2p5d_logits)


def test_model_rejects_a_wrong_image_shape():
    model = build(small("kpt_ih26m_2p5d"))
    with pytest.raises(ValueError, match=r"\(N, 3, 256, 256\)"):
        model(torch.rand(3, 256, 256))
    with pytest.raises(ValueError, match=r"got \(1, 3, 224, 224\)"):
        model(torch.rand(1, 3, 224, 224))


def test_config_validation_names_the_bad_field():
    with pytest.raises(ValueError, match="pose_representation"):
        KptConfig(pose_representation="mesh")
    with pytest.raises(ValueError, match="selection"):
        KptConfig(selection="nms")
    with pytest.raises(ValueError, match="object_left_translation"):
        KptConfig(object_left_translation=True)


def test_bone_vectors_sum_from_the_wrist_outward():
    vecs = torch.zeros(40, 3)
    # right thumb: joints 0 (tip) .. 3 (base); vector of joint j is from its parent.
    vecs[3] = torch.tensor([1.0, 0, 0])    # thumb1 from wrist
    vecs[2] = torch.tensor([0, 2.0, 0])    # thumb2 from thumb1
    vecs[1] = torch.tensor([0, 0, 3.0])
    vecs[0] = torch.tensor([4.0, 0, 0])    # tip
    vecs[20 + 7] = torch.tensor([0, 0, -1.0])  # left index base (left joint 21 + 7 = index1)
    joints = joints_from_bone_vectors(vecs)
    assert joints.shape == (2, 20, 3)
    assert joints[0, 3].tolist() == [1, 0, 0]
    assert joints[0, 2].tolist() == [1, 2, 0]
    assert joints[0, 1].tolist() == [1, 2, 3]
    assert joints[0, 0].tolist() == [5, 2, 3]
    assert joints[1, 4:8].tolist() == [[0, 0, -1]] * 4


def test_canonical_joints_put_the_wrist_first():
    from hand_object_pose.models.kpt.output import KptOutput
    vecs = torch.randn(1, 1, 40, 3)
    out = KptOutput(*(torch.zeros(1),) * 10, joint_vecs=vecs)
    canon = out.canonical_joints_3d()[0]
    ih = joints_from_bone_vectors(vecs)[0, 0]
    assert canon[0].abs().sum() == 0 and canon[21].abs().sum() == 0       # both wrists at the origin
    thumb_tip = skeleton.JOINT_INDEX["thumb4"]
    torch.testing.assert_close(canon[thumb_tip], ih[0, 0])                  # IH2.6M joint 0 = thumb tip
    torch.testing.assert_close(canon[21 + skeleton.JOINT_INDEX["index1"]], ih[1, 7])


def test_self_attention_mask_groups():
    lay = query_layout(PRESETS["kpt_ho3d_3d"])
    mask = self_attention_mask(lay)
    assert lay.num_queries == 43 and (lay.obj_rot_index, lay.obj_trans_index) == (41, 42)
    assert not mask[0, :4].any() and mask[0, 4:].all()        # finger group of 4
    assert mask[40].sum() == 42 and not mask[40, 40]           # global query sees itself only
    assert not mask[41].any() and not mask[42].any()           # object queries see everything
    angles = self_attention_mask(query_layout(PRESETS["kpt_ih26m_angles"]))
    assert angles.shape == (34, 34) and not angles[1, 1:4].any() and angles[1, 4:].all()
    assert not angles[33].any()


def test_memory_mask_keeps_object_rotation_on_object_tokens():
    lay = query_layout(PRESETS["kpt_ho3d_3d"])
    kind = torch.tensor([[1, 43, 43, 0], [1, 1, 0, 0]])
    mask = memory_mask(lay, kind)
    assert mask.shape == (2, 43, 4)
    assert mask[0, 41].tolist() == [True, False, False, True]
    assert not mask[1].any()                       # no object token: row left open, never all-blocked
    assert mask[:, :41].sum() == 0 and mask[:, 42].sum() == 0
    assert memory_mask(query_layout(PRESETS["kpt_ih26m_2p5d"]), kind) is None


def test_build_model_by_name():
    model = build_model("kpt_ih26m_2p5d", backbone_depth=18)
    assert model.config.backbone_depth == 18
    assert np.isclose(sum(p.numel() for p in model.backbone.parameters()) / 1e6, 11.18, atol=0.01)
