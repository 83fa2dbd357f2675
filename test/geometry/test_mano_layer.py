"""The MANO layer (over smplx) driven by the committed stand-in hand npz files."""
import numpy as np
import pytest
import torch

from hand_object_pose.geometry import skeleton
from hand_object_pose.geometry.hand_model_files import load_hand_model, save_hand_model, standin_hand_path
from hand_object_pose.geometry.mano import TIP_VERTEX_IDS, ManoLayer
from hand_object_pose.geometry.rotations import axis_angle_to_matrix
from hand_object_pose.synthetic.standin_hand import flexion_axes

MIRROR = torch.tensor([-1.0, 1.0, 1.0])
AXIS_ANGLE_MIRROR = torch.tensor([1.0, -1.0, -1.0])


@pytest.fixture(scope="module")
def right():
    return ManoLayer(standin_hand_path("right"))


@pytest.fixture(scope="module")
def left():
    return ManoLayer(standin_hand_path("left"))


def _random_params(batch=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, 3, generator=g), 0.4 * torch.randn(batch, 45, generator=g),
            torch.randn(batch, 10, generator=g), 0.1 * torch.randn(batch, 3, generator=g))


def test_output_shapes_and_faces(right):
    orient, pose, betas, transl = _random_params()
    out = right(orient, pose, betas, transl)
    assert out.vertices.shape == (3, 778, 3)
    assert out.joints.shape == (3, 21, 3)
    assert out.mano_joints.shape == (3, 16, 3)
    assert out.full_pose.shape == (3, 48)
    assert right.faces.shape == (1538, 3) and right.faces.dtype == torch.int64


def test_zero_pose_gives_template_and_regressed_joints(right):
    arrays = load_hand_model(standin_hand_path("right"))
    out = right(torch.zeros(1, 3), torch.zeros(1, 45))
    template = torch.tensor(arrays["v_template"], dtype=torch.float32)
    torch.testing.assert_close(out.vertices[0], template)
    regressed = torch.tensor(arrays["J_regressor"] @ arrays["v_template"], dtype=torch.float32)
    torch.testing.assert_close(out.mano_joints[0], regressed)


def test_joint_order_is_canonical_with_tip_vertices(right):
    orient, pose, betas, transl = _random_params()
    out = right(orient, pose, betas, transl)
    # Canonical: wrist, thumb1-4, index1-4, middle1-4, ring1-4, pinky1-4.
    tips = {4: 744, 8: 320, 12: 443, 16: 554, 20: 671}
    for joint, vertex in tips.items():
        torch.testing.assert_close(out.joints[:, joint], out.vertices[:, vertex])
    mano = out.mano_joints
    expected = {0: 0, 1: 13, 2: 14, 3: 15, 5: 1, 6: 2, 7: 3, 9: 4, 10: 5, 11: 6, 13: 10, 14: 11, 15: 12,
                17: 7, 18: 8, 19: 9}
    for canonical, mano_id in expected.items():
        torch.testing.assert_close(out.joints[:, canonical], mano[:, mano_id])
    assert TIP_VERTEX_IDS == (744, 320, 443, 554, 671)
    assert skeleton.JOINT_NAMES[4] == "thumb4" and skeleton.JOINT_NAMES[20] == "pinky4"


def test_translation_and_global_rotation_about_the_wrist(right):
    rest = right(torch.zeros(1, 3), torch.zeros(1, 45))
    orient = torch.tensor([[0.3, -1.1, 0.5]])
    transl = torch.tensor([[0.1, -0.2, 0.5]])
    out = right(orient, torch.zeros(1, 45), transl=transl)
    R = axis_angle_to_matrix(orient)[0]
    wrist = rest.mano_joints[0, 0]
    expected = (rest.vertices[0] - wrist) @ R.T + wrist + transl[0]
    torch.testing.assert_close(out.vertices[0], expected, atol=1e-6, rtol=0)


def test_finger_flexion_follows_the_kinematic_chain(right):
    """Bending index1 by 90 deg about its flexion axis rotates index2..4 about index1."""
    rest = right(torch.zeros(1, 3), torch.zeros(1, 45))
    pose = torch.zeros(1, 15, 3)
    axis = torch.tensor(flexion_axes()["index"], dtype=torch.float32)
    pose[0, 0] = axis * (np.pi / 2)  # MANO joint 1 = index1
    out = right(torch.zeros(1, 3), pose.view(1, 45))
    R = axis_angle_to_matrix(pose[0, 0])
    base = rest.joints[0, 5]
    for j in (6, 7):  # index2, index3 (joints move rigidly with their parent bone)
        torch.testing.assert_close(out.joints[0, j], (rest.joints[0, j] - base) @ R.T + base, atol=1e-6, rtol=0)
    # Curling moves the fingertip towards the palm side (+z in the stand-in frame) and leaves the thumb alone.
    assert out.joints[0, 8, 2] > rest.joints[0, 8, 2] + 0.03
    torch.testing.assert_close(out.joints[0, 1:5], rest.joints[0, 1:5])


def test_left_is_the_mirror_of_right(right, left):
    orient, pose, betas, transl = _random_params(seed=1)
    out_r = right(orient, pose, betas, transl)
    mirrored_pose = (pose.view(-1, 15, 3) * AXIS_ANGLE_MIRROR).view(-1, 45)
    out_l = left(orient * AXIS_ANGLE_MIRROR, mirrored_pose, betas, transl * MIRROR)
    torch.testing.assert_close(out_l.vertices, out_r.vertices * MIRROR, atol=2e-6, rtol=0)
    torch.testing.assert_close(out_l.joints, out_r.joints * MIRROR, atol=2e-6, rtol=0)


def test_left_shapedirs_quirk_is_fixed_when_not_flagged(tmp_path, left):
    arrays = load_hand_model(standin_hand_path("left"))
    quirky = dict(arrays)
    quirky["shapedirs"] = arrays["shapedirs"] * np.array([-1.0, 1.0, 1.0])[None, :, None]  # as MANO_LEFT.pkl
    del quirky["left_shapedirs_fixed"]
    save_hand_model(tmp_path / "raw_left.npz", quirky)
    betas = torch.tensor([[1.5, -1.0, 2.0, 0.5, -2.0, 1.0, 0.3, -0.7, 1.2, 0.4]])
    zero = torch.zeros(1, 3), torch.zeros(1, 45)
    expected = left(*zero, betas).vertices
    torch.testing.assert_close(ManoLayer(tmp_path / "raw_left.npz")(*zero, betas).vertices, expected)
    # Forcing the fix off reproduces the broken (un-mirrored) shape, which differs by millimetres.
    broken = ManoLayer(tmp_path / "raw_left.npz", fix_left_shapedirs=False)(*zero, betas).vertices
    assert (broken - expected).abs().max() > 1e-3
    # ... also from a fixed file (to reproduce annotations fitted with the official left file).
    unfixed = ManoLayer(standin_hand_path("left"), fix_left_shapedirs=False)(*zero, betas).vertices
    torch.testing.assert_close(unfixed, broken)
    # A right hand is never touched.
    right_arrays = load_hand_model(standin_hand_path("right"))
    plain = ManoLayer(right_arrays, fix_left_shapedirs=True)(*zero, betas).vertices
    torch.testing.assert_close(plain, ManoLayer(right_arrays)(*zero, betas).vertices)


def test_pca_and_hand_mean(right):
    arrays = load_hand_model(standin_hand_path("right"))
    components = torch.tensor(arrays["hands_components"], dtype=torch.float32)
    mean = torch.tensor(arrays["hands_mean"], dtype=torch.float32)
    pca = ManoLayer(standin_hand_path("right"), use_pca=True, num_pca_comps=6, flat_hand_mean=False)
    coeffs = torch.tensor([[1.0, -0.5, 0.3, 0.0, 2.0, -1.0]])
    orient = torch.tensor([[0.1, 0.2, 0.3]])
    out = pca(orient, coeffs)
    axis_angle = coeffs @ components[:6] + mean
    torch.testing.assert_close(out.full_pose, torch.cat([orient, axis_angle], dim=1))
    torch.testing.assert_close(out.vertices, right(orient, axis_angle).vertices, atol=1e-6, rtol=0)
    # All 45 components is still PCA (smplx alone would silently switch to axis-angle there).
    full = ManoLayer(standin_hand_path("right"), use_pca=True, num_pca_comps=45)
    coeffs45 = torch.linspace(-1.0, 1.0, 45)[None]
    torch.testing.assert_close(full(orient, coeffs45).full_pose[:, 3:], coeffs45 @ components, atol=1e-6, rtol=0)


def test_bad_inputs_raise_clear_errors(tmp_path, right):
    arrays = load_hand_model(standin_hand_path("right"))
    incomplete = {k: v for k, v in arrays.items() if k != "posedirs"}
    np.savez(tmp_path / "incomplete.npz", **incomplete)
    with pytest.raises(ValueError, match="posedirs"):
        ManoLayer(tmp_path / "incomplete.npz")
    wrong = dict(arrays, weights=arrays["weights"][:, :15])
    np.savez(tmp_path / "wrong.npz", **wrong)
    with pytest.raises(ValueError, match=r"'weights' has shape \(778, 15\), expected \(778, 16\)"):
        ManoLayer(tmp_path / "wrong.npz")
    with pytest.raises(ValueError, match=r"\.npz"):
        ManoLayer(tmp_path / "MANO_RIGHT.pkl")
    np.savez(tmp_path / "objects.npz", **dict(arrays, side=np.array([{"evil": 1}], dtype=object)))
    with pytest.raises(ValueError, match="pickle"):
        ManoLayer(tmp_path / "objects.npz")
    with pytest.raises(ValueError, match="left"):
        ManoLayer(standin_hand_path("right"), side="left")
    sideless = {k: v for k, v in arrays.items() if k != "side"}
    with pytest.raises(ValueError, match="side="):
        ManoLayer(sideless)
    assert ManoLayer(sideless, side="right").side == "right"
    with pytest.raises(ValueError, match=r"hand_pose must have shape \(2, 45\)"):
        right(torch.zeros(2, 3), torch.zeros(2, 6))


def test_onnx_export_matches_torch(right, tmp_path):
    from hand_object_pose.export.onnx import compare_with_torch, export_onnx, ort_session

    class Wrapper(torch.nn.Module):
        def __init__(self, layer):
            super().__init__()
            self.layer = layer

        def forward(self, orient, pose, betas):
            out = self.layer(orient, pose, betas)
            return out.vertices, out.joints

    wrapper = Wrapper(right)
    orient, pose, betas, _ = _random_params(batch=2)
    names = ["orient", "pose", "betas"]
    path = export_onnx(wrapper, (orient, pose, betas), tmp_path / "mano.onnx", names, ["vertices", "joints"])
    orient, pose, betas, _ = _random_params(batch=5, seed=3)  # another batch size: dynamic axis
    diffs = compare_with_torch(wrapper, ort_session(path, threads=1), (orient, pose, betas), names)
    assert max(diffs) < 1e-5


def test_home_relative_paths_are_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "mano").mkdir()
    arrays = load_hand_model(standin_hand_path("right"))
    save_hand_model(tmp_path / "mano" / "MANO_RIGHT.npz", arrays)
    assert ManoLayer("~/mano/MANO_RIGHT.npz").side == "right"
