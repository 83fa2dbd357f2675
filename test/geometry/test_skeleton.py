"""Joint orders and maps: every map both ways, and specific joints pinned by name."""
import numpy as np
import pytest
import torch

from hand_object_pose.geometry import skeleton as sk

# Literal maps as printed in the references (ecosystem.md §4b, ml-stack.md, models.md §1.3/§4.2);
# the module derives its maps from joint names, so these pin the derivation.
CANONICAL_TO_IH_REFERENCE = [4, 3, 2, 1, 8, 7, 6, 5, 12, 11, 10, 9, 16, 15, 14, 13, 20, 19, 18, 17, 0]
MANO_TO_CANONICAL_REFERENCE = [0, 13, 14, 15, 16, 1, 2, 3, 17, 4, 5, 6, 18, 10, 11, 12, 19, 7, 8, 9, 20]
DMA_CANONICAL_TO_HO3D_REFERENCE = [0, 5, 6, 7, 9, 10, 11, 17, 18, 19, 13, 14, 15, 1, 2, 3, 4, 8, 12, 16, 20]
KPT_IH_TO_HO3D_REFERENCE = [20, 7, 6, 5, 11, 10, 9, 19, 18, 17, 15, 14, 13, 3, 2, 1, 0, 4, 8, 12, 16]
MANO_KINTREE_PARENTS = [-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14]

MAP_PAIRS = [  # (forward function, inverse function, forward map, source names, target names)
    (sk.interhand_to_canonical, sk.canonical_to_interhand, sk.INTERHAND_TO_CANONICAL,
     sk.INTERHAND_JOINT_NAMES, sk.JOINT_NAMES),
    (sk.mano_to_canonical, sk.canonical_to_mano, sk.MANO_TO_CANONICAL, sk.MANO_JOINT_NAMES, sk.JOINT_NAMES),
    (sk.ho3d_to_canonical, sk.canonical_to_ho3d, sk.HO3D_TO_CANONICAL, sk.HO3D_JOINT_NAMES, sk.JOINT_NAMES),
    (sk.dexycb_to_canonical, sk.canonical_to_dexycb, sk.DEXYCB_TO_CANONICAL, sk.DEXYCB_JOINT_NAMES,
     sk.JOINT_NAMES),
    (sk.interhand_to_ho3d, sk.ho3d_to_interhand, sk.INTERHAND_TO_HO3D, sk.INTERHAND_JOINT_NAMES,
     sk.HO3D_JOINT_NAMES),
]
MAP_IDS = ["interhand", "mano", "ho3d", "dexycb", "kpt_ho3d_submission"]


def labelled(names, batch=()):
    """Joints whose coordinates encode their canonical index, so a permutation is visible."""
    values = np.array([sk.JOINT_INDEX[n] for n in names], dtype=np.float64)
    coords = np.stack([values, 100 + values, -values], axis=-1)
    return np.broadcast_to(coords, batch + coords.shape).copy()


def test_canonical_names_parents_and_fingers():
    assert len(sk.JOINT_NAMES) == sk.NUM_JOINTS == 21
    assert sk.JOINT_NAMES[:6] == ("wrist", "thumb1", "thumb2", "thumb3", "thumb4", "index1")
    assert sk.JOINT_NAMES[20] == "pinky4"
    assert sk.PARENTS[sk.JOINT_INDEX["thumb1"]] == sk.WRIST == 0
    assert sk.PARENTS[sk.JOINT_INDEX["ring3"]] == sk.JOINT_INDEX["ring2"]
    assert sk.PARENTS[sk.JOINT_INDEX["pinky1"]] == 0
    assert sk.FINGERS["middle"] == (9, 10, 11, 12)
    assert sk.FINGERTIPS == (4, 8, 12, 16, 20)
    assert len(sk.BONES) == 20
    assert (0, 17) in sk.BONES and (19, 20) in sk.BONES and (4, 5) not in sk.BONES
    for parent, child in sk.BONES:
        assert sk.PARENTS[child] == parent


def test_maps_match_reference_literals():
    assert list(sk.CANONICAL_TO_INTERHAND) == CANONICAL_TO_IH_REFERENCE
    assert list(sk.MANO_TO_CANONICAL) == MANO_TO_CANONICAL_REFERENCE
    assert list(sk.HO3D_TO_CANONICAL) == MANO_TO_CANONICAL_REFERENCE
    assert list(sk.CANONICAL_TO_HO3D) == DMA_CANONICAL_TO_HO3D_REFERENCE
    assert list(sk.INTERHAND_TO_HO3D) == KPT_IH_TO_HO3D_REFERENCE
    assert list(sk.MANO_PARENTS[:16]) == MANO_KINTREE_PARENTS


def test_joints_pinned_by_name():
    assert sk.INTERHAND_JOINT_NAMES[20] == "wrist"
    assert sk.INTERHAND_JOINT_NAMES[0] == "thumb4"
    assert sk.INTERHAND_JOINT_NAMES[3] == "thumb1"
    assert sk.INTERHAND_JOINT_NAMES[7] == "index1"
    assert sk.INTERHAND_JOINT_NAMES[16] == "pinky4"
    assert sk.MANO_JOINT_NAMES[5] == "middle2"
    assert sk.MANO_JOINT_NAMES[4] == "middle1"
    assert sk.MANO_JOINT_NAMES[7] == "pinky1"
    assert sk.MANO_JOINT_NAMES[10] == "ring1"
    assert sk.MANO_JOINT_NAMES[13] == "thumb1"
    assert sk.MANO_JOINT_NAMES[16:] == ("thumb4", "index4", "middle4", "ring4", "pinky4")
    assert sk.INTERHAND_PARENTS[sk.INTERHAND_JOINT_NAMES.index("thumb1")] == 20


def test_interhand_wrist_lands_first():
    ih = np.arange(21 * 3, dtype=float).reshape(21, 3)
    can = sk.interhand_to_canonical(ih)
    np.testing.assert_array_equal(can[0], ih[20])          # wrist
    np.testing.assert_array_equal(can[4], ih[0])           # thumb tip
    np.testing.assert_array_equal(can[5], ih[7])           # index MCP
    np.testing.assert_array_equal(can[20], ih[16])         # pinky tip


@pytest.mark.parametrize("forward, inverse, index_map, source, target", MAP_PAIRS, ids=MAP_IDS)
def test_map_moves_every_joint_by_name(forward, inverse, index_map, source, target):
    moved = forward(labelled(source))
    np.testing.assert_array_equal(moved, labelled(target))
    back = inverse(labelled(target))
    np.testing.assert_array_equal(back, labelled(source))
    assert sorted(index_map) == list(range(21))


@pytest.mark.parametrize("forward, inverse, index_map, source, target", MAP_PAIRS, ids=MAP_IDS)
def test_map_round_trips_both_ways_numpy_and_torch(forward, inverse, index_map, source, target):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 3, 21, 3))
    np.testing.assert_array_equal(inverse(forward(x)), x)
    np.testing.assert_array_equal(forward(inverse(x)), x)
    t = torch.from_numpy(x)
    assert torch.equal(inverse(forward(t)), t)
    assert torch.equal(forward(inverse(t)), t)
    np.testing.assert_array_equal(forward(t).numpy(), forward(x))


@pytest.mark.parametrize("forward, inverse, index_map, source, target", MAP_PAIRS, ids=MAP_IDS)
def test_pair_maps_each_hand_separately(forward, inverse, index_map, source, target):
    right, left = labelled(source, (2,)), labelled(source, (2,)) + 1000
    pair = sk.join_hands(right, left)
    assert pair.shape == (2, 42, 3)
    out_right, out_left = sk.split_hands(forward(pair))
    np.testing.assert_array_equal(out_right, forward(right))
    np.testing.assert_array_equal(out_left, forward(left))
    np.testing.assert_array_equal(inverse(forward(pair)), pair)


def test_interhand_pair_wrists_at_20_and_41():
    pair = np.arange(42 * 2, dtype=float).reshape(42, 2)
    can = sk.interhand_to_canonical(pair)
    np.testing.assert_array_equal(can[0], pair[20])
    np.testing.assert_array_equal(can[21], pair[41])


def test_kpt_submission_map_is_interhand_then_canonical_to_ho3d():
    x = np.random.default_rng(1).normal(size=(21, 3))
    np.testing.assert_array_equal(sk.interhand_to_ho3d(x), sk.canonical_to_ho3d(sk.interhand_to_canonical(x)))


def test_join_split_torch():
    r, l = torch.zeros(5, 21, 2), torch.ones(5, 21, 2)
    pair = sk.join_hands(r, l)
    assert pair.shape == (5, 42, 2)
    back_r, back_l = sk.split_hands(pair)
    assert torch.equal(back_r, r) and torch.equal(back_l, l)


@pytest.mark.parametrize("bad_shape", [(20, 3), (43, 3), (21,), (2, 22, 3)])
def test_reorder_rejects_wrong_joint_count(bad_shape):
    with pytest.raises(ValueError, match="expected joints of shape"):
        sk.interhand_to_canonical(np.zeros(bad_shape))


def test_pair_helpers_reject_wrong_shapes():
    with pytest.raises(ValueError, match="42"):
        sk.split_hands(np.zeros((21, 3)))
    with pytest.raises(ValueError, match="equal shape"):
        sk.join_hands(np.zeros((21, 3)), np.zeros((21, 2)))


@pytest.mark.parametrize("parents, names", [
    (sk.PARENTS, sk.JOINT_NAMES),
    (sk.MANO_PARENTS, sk.MANO_JOINT_NAMES),
    (sk.INTERHAND_PARENTS, sk.INTERHAND_JOINT_NAMES),
])
def test_bones_round_trip_in_every_order(parents, names):
    joints = np.random.default_rng(2).normal(size=(3, 21, 3))
    bones = sk.joints_to_bones(joints, parents)
    np.testing.assert_allclose(sk.bones_to_joints(bones, parents), joints, atol=1e-12)
    child, parent = names.index("index3"), names.index("index2")
    np.testing.assert_allclose(bones[:, child], joints[:, child] - joints[:, parent])
    wrist = names.index("wrist")
    np.testing.assert_array_equal(bones[:, wrist], joints[:, wrist])


def test_bone_vectors_agree_across_orders():
    joints = np.random.default_rng(3).normal(size=(21, 3))
    canonical_bones = sk.joints_to_bones(joints)
    ih_bones = sk.joints_to_bones(sk.canonical_to_interhand(joints), sk.INTERHAND_PARENTS)
    np.testing.assert_allclose(sk.interhand_to_canonical(ih_bones), canonical_bones)


def test_bones_to_joints_sums_along_finger_and_is_differentiable():
    bones = torch.zeros(21, 3, requires_grad=True)
    with torch.no_grad():
        bones[sk.FINGERS["ring"][0]] += torch.tensor([0.01, 0.0, 0.0])
    joints = sk.bones_to_joints(bones)
    # moving the ring MCP bone moves every ring joint, nothing else
    assert torch.allclose(joints[16], torch.tensor([0.01, 0.0, 0.0]))
    assert torch.allclose(joints[12], torch.zeros(3))
    joints[20].sum().backward()
    expected = torch.zeros(21)
    expected[[0, 17, 18, 19, 20]] = 3.0
    assert torch.equal(bones.grad.sum(-1), expected)


def test_bones_reject_bad_tree_and_shape():
    with pytest.raises(ValueError, match="tree"):
        sk.joints_to_bones(np.zeros((3, 3)), parents=(1, 2, 0))
    with pytest.raises(ValueError, match=r"\(\.\.\., 21, D\)"):
        sk.bones_to_joints(np.zeros((20, 3)))
