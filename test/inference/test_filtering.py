"""One-Euro filter: passes the first sample, smooths jitter at rest, follows fast moves, resets."""
import numpy as np
import pytest
import transforms3d.euler as te

from hand_object_pose.inference.filtering import OneEuroFilter, PoseFilter, ResultSmoother
from hand_object_pose.inference.result import HandEstimate, HandObjectEstimate, ObjectEstimate


def test_first_sample_passes_and_constant_is_kept():
    f = OneEuroFilter(1.0, 0.5, 1.0)
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(f(x, 0.0), x)
    for k in range(1, 10):
        np.testing.assert_allclose(f(x, k / 30), x)


def test_jitter_at_rest_is_reduced():
    rng = np.random.default_rng(0)
    f = OneEuroFilter(min_cutoff_hz=1.0, beta=0.0)
    raw = 0.5 + rng.normal(0, 0.005, (300, 21, 3))
    out = np.array([f(raw[k], k / 30) for k in range(300)])
    # An exponential filter with alpha = 0.17 (1 Hz at 30 Hz) keeps sqrt(alpha / (2 - alpha)) = 0.31 of the noise.
    assert out[50:].std() == pytest.approx(0.31 * raw[50:].std(), rel=0.15)
    assert abs(out[50:].mean() - 0.5) < 0.002


def test_beta_reduces_lag_on_fast_motion():
    t = np.arange(60) / 30
    ramp = 1.0 * t  # 1 m/s
    lags = {}
    for beta in (0.0, 5.0):
        f = OneEuroFilter(min_cutoff_hz=1.0, beta=beta)
        out = np.array([f(np.array([x]), s)[0] for x, s in zip(ramp, t)])
        lags[beta] = ramp[-1] - out[-1]
    assert lags[0.0] > 0.1          # a plain 1 Hz low-pass trails a 1 m/s move by > 10 cm
    assert lags[5.0] < 0.3 * lags[0.0]


def test_reset_and_backward_stamp_restart():
    f = OneEuroFilter(1.0, 0.0)
    f(np.zeros(3), 0.0)
    assert f(np.ones(3), 1 / 30)[0] < 0.5
    f.reset()
    np.testing.assert_array_equal(f(np.ones(3), 2 / 30), np.ones(3))
    np.testing.assert_array_equal(f(np.full(3, 5.0), 1 / 30), np.full(3, 5.0))  # stamp went back


def test_invalid_parameters():
    with pytest.raises(ValueError, match="min_cutoff_hz"):
        OneEuroFilter(0.0, 0.0)


def test_pose_filter_handles_quaternion_sign_and_stays_a_rotation():
    f = PoseFilter(1.0, 0.0, 1.0)
    angles = np.linspace(0, 0.3, 20)
    for k, a in enumerate(angles):
        R = te.euler2mat(a, 0.2, np.pi - 0.01)  # near pi about x: quaternion sign flips are likely
        R_out, t_out = f(R, np.array([0.0, 0.0, 0.5]), k / 30)
        np.testing.assert_allclose(R_out @ R_out.T, np.eye(3), atol=1e-9)
        assert np.linalg.det(R_out) == pytest.approx(1.0)
        angle_err = np.arccos(np.clip((np.trace(R_out.T @ R) - 1) / 2, -1, 1))
        assert angle_err < 0.1  # lags by at most a few frames of the 0.016 rad/frame motion
        np.testing.assert_allclose(t_out, [0, 0, 0.5])


def _frame(offset, present=True, with_object=True):
    joints = np.zeros((21, 3)) + [0.0, 0.0, 0.5 + offset]
    joints[1:, 0] = np.linspace(0.01, 0.1, 20)
    hand = HandEstimate(side="right", present=present, confidence=0.9, joints_xyz=joints.copy(),
                        joints_uv=np.zeros((21, 2)), joint_confidence=np.ones(21),
                        vertices=joints[[0, 5, 9]] + 0.01, faces=np.zeros((1, 3), int))
    objects = [ObjectEstimate("mug", 0.8, np.eye(3), np.array([0.0, 0.0, 0.6 + offset]))] if with_object else []
    return HandObjectEstimate(hands=[hand], objects=objects)


def test_result_smoother_moves_mesh_with_wrist_and_resets_on_loss():
    smoother = ResultSmoother(1.0, 0.0, 1.0)
    first = _frame(0.0)
    smoother(first, 0.0)
    np.testing.assert_allclose(first.hands[0].joints_xyz[0], [0, 0, 0.5])
    jump = _frame(0.1)
    raw_vertices = jump.hands[0].vertices.copy()
    smoother(jump, 1 / 30)
    hand = jump.hands[0]
    assert 0.5 < hand.joints_xyz[0, 2] < 0.55                     # smoothed towards the past
    shift = hand.joints_xyz[0] - [0, 0, 0.6]
    np.testing.assert_allclose(hand.vertices, raw_vertices + shift)  # the mesh follows the wrist
    assert 0.6 < jump.objects[0].translation[2] < 0.65
    lost = _frame(0.1, present=False, with_object=False)
    smoother(lost, 2 / 30)
    np.testing.assert_allclose(lost.hands[0].joints_xyz[0], [0, 0, 0.6])  # absent hands are left as they are
    back = _frame(0.3)
    smoother(back, 3 / 30)
    np.testing.assert_allclose(back.hands[0].joints_xyz[0], [0, 0, 0.8])  # restarted: no drag from the past
    np.testing.assert_allclose(back.objects[0].translation, [0, 0, 0.9])
