"""Dataset readers on tiny fixtures written in the real formats: units, axes, joint orders, sides."""
import pickle

import numpy as np
import pytest

from hand_object_pose.geometry.rotations import axis_angle_to_matrix
from hand_object_pose.geometry.skeleton import JOINT_INDEX
from hand_object_pose.safe_pickle import UnsafePickleError
from hand_object_pose.datasets import DexYCBDataset, H2O3DDataset, HO3DDataset, InterHandDataset

from dataset_fixtures import legacy_pickle, write_dexycb, write_ho3d, write_interhand

FLIP = np.diag([1.0, -1.0, -1.0])


def test_fixture_pickles_use_the_legacy_numpy_path():
    assert b"numpy.core.multiarray" in legacy_pickle({"a": np.zeros(2)})


def test_interhand_world_mm_to_camera_metres_canonical_order(tmp_path):
    truth = write_interhand(tmp_path)
    ds = InterHandDataset(tmp_path, "test")
    assert len(ds) == 2
    right_only, both = ds[0], ds[1]
    assert set(right_only.hands) == {"right"} and not right_only.interacting
    assert set(both.hands) == {"right", "left"} and both.interacting
    cam_mm = (truth["world"][11] - truth["campos"]) @ truth["camrot"].T
    # InterHand index 20 is the right wrist, 41 the left wrist; 3 is the right thumb base (thumb1),
    # 4 the index fingertip. Canonical: wrist 0, thumb1 1, index4 8.
    np.testing.assert_allclose(both.hands["right"].joints_cam[JOINT_INDEX["wrist"]], cam_mm[20] / 1000, atol=1e-6)
    np.testing.assert_allclose(both.hands["left"].joints_cam[JOINT_INDEX["wrist"]], cam_mm[41] / 1000, atol=1e-6)
    np.testing.assert_allclose(both.hands["right"].joints_cam[JOINT_INDEX["index4"]], cam_mm[4] / 1000, atol=1e-6)
    # joint_valid zeros at IH 3 (right thumb1) and 30 (left 9 = middle... IH order: 8..11 middle tip->base).
    assert not both.hands["right"].joints_valid[JOINT_INDEX["thumb1"]]
    assert both.hands["right"].joints_valid.sum() == 20 and both.hands["left"].joints_valid.sum() == 20
    np.testing.assert_allclose(both.hands["right"].mano_trans, [0.0, 0.1, 0.2])
    assert both.hands["left"].mano_pose is None
    np.testing.assert_allclose(both.intrinsics, [[1200, 0, 167], [0, 1210, 256], [0, 0, 1]])
    image = right_only.load_image()
    assert image.shape == (512, 334, 3) and image[0, 0, 0] == 200  # RGB: red where the fixture drew red
    with pytest.raises(ValueError, match="split"):
        InterHandDataset(tmp_path, "dev")


def test_ho3d_opengl_flip_mano_order_and_object(tmp_path):
    metas = write_ho3d(tmp_path)
    sample = HO3DDataset(tmp_path, "train")[0]
    meta = metas["train"]
    hand = sample.hands["right"]
    # HO-3D raw (MANO) order: 0 wrist, 13 thumb1, 16 thumb tip, 1 index1; flipped to OpenCV.
    np.testing.assert_allclose(hand.joints_cam[0], meta["handJoints3D"][0] @ FLIP, atol=1e-6)
    np.testing.assert_allclose(hand.joints_cam[JOINT_INDEX["thumb1"]], meta["handJoints3D"][13] @ FLIP, atol=1e-6)
    np.testing.assert_allclose(hand.joints_cam[JOINT_INDEX["thumb4"]], meta["handJoints3D"][16] @ FLIP, atol=1e-6)
    np.testing.assert_allclose(hand.joints_cam[JOINT_INDEX["index1"]], meta["handJoints3D"][1] @ FLIP, atol=1e-6)
    assert (hand.joints_cam[:, 2] > 0).all()  # in front of the camera in the optical frame
    # MANO global orientation converted with the frame: R_cv = diag(1,-1,-1) R_gl; the other 45 untouched.
    np.testing.assert_allclose(axis_angle_to_matrix(hand.mano_pose[:3]), FLIP @ axis_angle_to_matrix(np.full(3, 0.1)),
                               atol=1e-9)
    np.testing.assert_allclose(hand.mano_pose[3:], 0.1)
    obj = sample.objects[0]
    assert obj.object_id == "006_mustard_bottle"
    np.testing.assert_allclose(obj.rotation, FLIP @ axis_angle_to_matrix(np.array([0.1, 0.2, 0.3])), atol=1e-12)
    np.testing.assert_allclose(obj.translation, [0.02, 0.03, 0.55])
    # Rest corners posed with the converted pose land on the converted camera-frame corners.
    np.testing.assert_allclose(obj.corners_rest @ obj.rotation.T + obj.translation, obj.corners_cam, atol=1e-12)
    np.testing.assert_allclose(obj.corners_cam, meta["objCorners3D"] @ FLIP, atol=1e-12)
    assert np.linalg.det(obj.rotation) == pytest.approx(1.0)  # diag(1,-1,-1) is a proper rotation (180 deg about x)
    evaluation = HO3DDataset(tmp_path, "evaluation")[0]
    assert evaluation.hands["right"].root_only and evaluation.hands["right"].joints_valid.sum() == 1
    np.testing.assert_allclose(evaluation.hand_box, [100, 120, 160, 180])


def test_h2o3d_two_hands_and_joint_validity(tmp_path):
    metas = write_ho3d(tmp_path, two_hands=True)
    sample = H2O3DDataset(tmp_path, "train")[0]
    assert set(sample.hands) == {"right"}  # the fixture marks every left joint invalid
    np.testing.assert_allclose(sample.hands["right"].mano_pose[3:], np.full(45, 0.1))
    np.testing.assert_allclose(axis_angle_to_matrix(sample.hands["right"].mano_pose[:3]),
                               FLIP @ axis_angle_to_matrix(np.full(3, 0.1)), atol=1e-9)
    np.testing.assert_allclose(sample.hands["right"].mano_shape, np.linspace(-1, 1, 10))
    assert sample.image_size == (1280, 720)
    evaluation = H2O3DDataset(tmp_path, "evaluation")[0]
    np.testing.assert_allclose(evaluation.hands["left"].joints_cam[0],
                               metas["evaluation"]["leftHandJoints3D"] @ FLIP, atol=1e-6)


def test_ho3d_refuses_pickles_that_run_code(tmp_path):
    write_ho3d(tmp_path)
    import os

    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo owned",))

    (tmp_path / "train" / "SEQ1" / "meta" / "0000.pkl").write_bytes(pickle.dumps({"camMat": Exploit()}, protocol=2))
    with pytest.raises(UnsafePickleError, match="system"):
        HO3DDataset(tmp_path, "train")[0]


def test_dexycb_s0_split_sides_and_objects(tmp_path):
    truth = write_dexycb(tmp_path)
    train, val, test = (DexYCBDataset(tmp_path, s) for s in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (12, 2, 1)
    sample = test[0]  # subject index 2 (right hand), sequence 4
    expected = truth[(2, 4)]
    np.testing.assert_allclose(sample.hands["right"].joints_cam, expected["joints"], atol=1e-6)
    np.testing.assert_allclose(sample.hands["right"].mano_shape, [0.5] * 10)
    assert [o.object_id for o in sample.objects] == ["006_mustard_bottle", "025_mug"]
    np.testing.assert_allclose(sample.objects[1].translation, expected["pose_y"][1, :, 3], atol=1e-6)
    np.testing.assert_allclose(sample.intrinsics, [[616, 0, 312], [0, 616.5, 241], [0, 0, 1]])
    left = val[1]  # subject index 1 -> left hand
    assert set(left.hands) == {"left"}
    no_hand = [s for s in train if not s.hands]
    assert len(no_hand) == 3  # sequence 1 of each subject stores -1 joints


def test_depth_images_in_each_datasets_encoding(tmp_path):
    """HO-3D splits a 16-bit value over red (low byte) and green (high byte) with its own scale; DexYCB
    stores millimetres in a 16-bit PNG. Both read as float32 metres, 0 where nothing was measured, and a
    sample without a depth file has none."""
    import cv2

    from hand_object_pose.datasets.sample import HO3D_DEPTH_SCALE_M

    write_ho3d(tmp_path / "ho3d")
    assert HO3DDataset(tmp_path / "ho3d", "train")[0].load_depth() is None
    value = np.zeros((480, 640), np.uint16)
    value[100:200, 300:400] = 4000                        # 4000 units = 0.49995 m
    value[0, 0] = 0x1234
    bgr = np.stack([np.zeros_like(value), value >> 8, value & 0xFF], axis=-1).astype(np.uint8)
    depth_dir = tmp_path / "ho3d" / "train" / "SEQ1" / "depth"
    depth_dir.mkdir()
    cv2.imwrite(str(depth_dir / "0000.png"), bgr)
    depth = HO3DDataset(tmp_path / "ho3d", "train")[0].load_depth()
    assert depth.dtype == np.float32 and depth.shape == (480, 640)
    assert depth[150, 350] == pytest.approx(4000 * HO3D_DEPTH_SCALE_M) and depth[0, 0] == pytest.approx(
        0x1234 * HO3D_DEPTH_SCALE_M) and depth[300, 10] == 0.0

    write_dexycb(tmp_path / "dexycb")

    def with_depth():
        samples = [r[i] for r in (DexYCBDataset(tmp_path / "dexycb", s) for s in ("train", "val", "test"))
                   for i in range(len(r))]
        return [sample for sample in samples if sample.depth_path is not None]

    assert with_depth() == []
    folder = next((tmp_path / "dexycb").glob("*/*/836212060125"))   # one frame of one sequence
    mm = np.zeros((480, 640), np.uint16)
    mm[10:20, 30:40] = 732
    cv2.imwrite(str(folder / "aligned_depth_to_color_000000.png"), mm)
    (sample,) = with_depth()
    depth = sample.load_depth()
    assert depth[15, 35] == pytest.approx(0.732) and depth[0, 0] == 0.0
    cv2.imwrite(str(folder / "aligned_depth_to_color_000000.png"), bgr)     # not 16-bit millimetres
    with pytest.raises(ValueError, match="single-channel 16-bit"):
        sample.load_depth()
