"""Joint metrics against values worked out by hand."""
import numpy as np
import pytest

from hand_object_pose.evaluation import joints as jm


def _hand(offset=(0.0, 0.0, 0.0)):
    # Root at the origin plus two joints; an offset moves the whole hand.
    return np.array([[0, 0, 0], [1, 0, 0], [0, 2, 0]], float) + np.asarray(offset)


def test_mpjpe_is_root_aligned_and_ignores_invalid_joints():
    gt = np.stack([_hand(), _hand()])
    pred = np.stack([_hand((5, 5, 5)), _hand()])  # sample 0 only translated: zero root-relative error
    pred[1, 2] += [0, 0, 3]                        # sample 1: one joint off by 3
    valid = np.ones((2, 3), bool)
    # errors: sample0 [0,0,0], sample1 [0,0,3] -> mean over 6 = 0.5
    assert jm.mpjpe(pred, gt, valid) == pytest.approx(0.5)
    valid[1, 2] = False
    assert jm.mpjpe(pred, gt, valid) == pytest.approx(0.0)
    # Without root alignment the translation counts: sqrt(75) for each of 3 joints of sample 0.
    assert jm.mpjpe(pred, gt, None, root_index=None) == pytest.approx((3 * np.sqrt(75) + 3) / 6)


def test_invalid_root_excludes_the_whole_hand():
    gt = np.stack([_hand()])
    pred = gt.copy()
    pred[0, 1] += [1, 0, 0]
    valid = np.array([[False, True, True]])
    assert np.isnan(jm.mpjpe(pred, gt, valid))


def test_interhand_protocol_averages_per_joint_first():
    gt = np.zeros((3, 2, 3))
    pred = np.zeros((3, 2, 3))
    pred[0, 1, 0] = 4.0   # single-hand frame: joint 1 error 4
    pred[1, 1, 0] = 2.0   # interacting frames: joint 1 errors 2 and 0
    valid = np.ones((3, 2), bool)
    valid[2, 1] = False   # joint 1 of frame 2 unannotated
    split = jm.interhand_mpjpe(pred, gt, valid, interacting=[False, True, True])
    assert split.single == pytest.approx((0 + 4) / 2)
    assert split.interacting == pytest.approx((0 + 2) / 2)  # joint 0 mean 0, joint 1 mean over 1 valid sample = 2
    assert split.all == pytest.approx((0 + (4 + 2) / 2) / 2)


def test_mrrpe():
    right = np.zeros((2, 3))
    left_gt = np.array([[0.1, 0, 0], [0.2, 0, 0]])
    left_pred = np.array([[0.1, 0.03, 0.04], [0.2, 0, 0]])
    assert jm.mrrpe(right, left_pred, right, left_gt) == pytest.approx(0.025)
    assert jm.mrrpe(right, left_pred, right, left_gt, valid=[False, True]) == pytest.approx(0.0)


def test_procrustes_removes_similarity_but_not_reflection():
    rng = np.random.default_rng(0)
    gt = rng.normal(size=(1, 21, 3))
    angle = 0.7
    rot = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    pred = 1.7 * gt @ rot.T + np.array([0.3, -0.2, 1.0])
    assert jm.aligned_error(pred, gt, align="procrustes") == pytest.approx(0.0, abs=1e-9)
    mirrored = gt * np.array([-1, 1, 1])
    assert jm.aligned_error(mirrored, gt, align="procrustes") > 0.1


def test_scale_translation_alignment_removes_scale_and_offset_only():
    gt = np.array([[[0, 0, 0], [2, 0, 0], [0, 2, 0], [0, 0, 2]]], float)
    assert jm.aligned_error(3 * gt + 5, gt, align="scale_translation") == pytest.approx(0.0, abs=1e-12)
    rotated = gt[..., [1, 0, 2]]  # swapping x/y is a reflection-like change the alignment must not hide
    assert jm.aligned_error(rotated, gt, align="scale_translation") > 0.5
    with pytest.raises(ValueError, match="align"):
        jm.aligned_error(gt, gt, align="nope")


def test_auc_of_pck_by_hand():
    auc, thresholds, pck = jm.auc_pck([0.0, 1.0, 2.0, 3.0], max_threshold=4.0, num_steps=4)
    np.testing.assert_allclose(thresholds, [0, 1, 2, 3, 4])
    np.testing.assert_allclose(pck, [0.25, 0.5, 0.75, 1.0, 1.0])
    assert auc == pytest.approx((0.375 + 0.625 + 0.875 + 1.0) / 4)


def test_shape_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"\(N, J, 3\)"):
        jm.mpjpe(np.zeros((2, 21, 2)), np.zeros((2, 21, 2)))
    with pytest.raises(ValueError, match="valid"):
        jm.mpjpe(np.zeros((2, 21, 3)), np.zeros((2, 21, 3)), valid=np.ones((2, 20), bool))
