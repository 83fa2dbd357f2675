"""Writers of tiny datasets in the real on-disk formats (the datasets themselves are licensed and
cannot be downloaded here). Each writer returns the ground truth it wrote, in the dataset's own
conventions, so tests can check the readers' conversions independently."""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import cv2
import numpy as np
import yaml


def _write_image(path: Path, width: int, height: int, value: int = 90) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.full((height, width, 3), value, np.uint8)
    image[:, : width // 2, 2] = 200  # left half red in RGB (BGR index 2), to check channel order
    cv2.imwrite(str(path), image)


def legacy_pickle(obj) -> bytes:
    """Protocol-2 pickle whose numpy globals use the pre-2.0 module path (`numpy.core.multiarray`),
    as the datasets' Python-2 era files do."""
    data = pickle.dumps(obj, protocol=2)
    return data.replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


def write_interhand(root: Path, split: str = "test", frames=(10, 11), all_interacting: bool = False):
    """One capture, one camera; by default two frames: a right-hand frame and an interacting frame with
    two unannotated joints. `all_interacting`: every frame interacting with all 42 joints annotated."""
    rng = np.random.default_rng(1)
    angle = 0.3
    camrot = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    campos = np.array([100.0, -50.0, -600.0])
    world = {frame: rng.uniform(-80, 80, size=(42, 3)) for frame in frames}
    ann_dir = root / "annotations" / split
    ann_dir.mkdir(parents=True)
    images = [dict(id=i, file_name=f"Capture0/ROM/cam400262/image{frame}.jpg", width=334, height=512,
                   capture=0, camera="400262", frame_idx=frame, subject=0, seq_name="ROM")
              for i, frame in enumerate(frames)]
    valid_interacting = np.ones(42)
    if not all_interacting:
        valid_interacting[[3, 30]] = 0
    annotations = [
        dict(id=i, image_id=i, bbox=[15.0, 25.0, 150.0, 160.0], joint_valid=valid_interacting[:, None].tolist(),
             hand_type="interacting", hand_type_valid=1) for i in range(len(frames))]
    if not all_interacting:
        annotations[0] = dict(id=0, image_id=0, bbox=[10.0, 20.0, 100.0, 120.0], joint_valid=[[1]] * 42,
                              hand_type="right", hand_type_valid=1)
    prefix = f"InterHand2.6M_{split}"
    (ann_dir / f"{prefix}_data.json").write_text(json.dumps(dict(images=images, annotations=annotations)))
    cameras = {"0": dict(campos={"400262": campos.tolist()}, camrot={"400262": camrot.tolist()},
                         focal={"400262": [1200.0, 1210.0]}, princpt={"400262": [167.0, 256.0]})}
    (ann_dir / f"{prefix}_camera.json").write_text(json.dumps(cameras))
    joints = {"0": {str(f): dict(world_coord=w.tolist(), joint_valid=[1] * 42, hand_type="interacting",
                                 hand_type_valid=1) for f, w in world.items()}}
    (ann_dir / f"{prefix}_joint_3d.json").write_text(json.dumps(joints))
    mano = {"0": {"11": {"right": dict(pose=[0.1] * 48, shape=[0.2] * 10, trans=[0.0, 0.1, 0.2]), "left": None}}}
    (ann_dir / f"{prefix}_MANO_NeuralAnnot.json").write_text(json.dumps(mano))
    for img in images:
        _write_image(root / "images" / split / img["file_name"], 334, 512)
    return dict(camrot=camrot, campos=campos, world=world, valid_interacting=valid_interacting)


def ho3d_meta(rng, two_hands: bool, evaluation: bool) -> dict:
    joints = rng.uniform(-0.1, 0.1, size=(21, 3)) + np.array([0.0, 0.0, -0.5])  # OpenGL: z < 0 in front
    obj_rot, obj_trans = np.array([[0.1], [0.2], [0.3]]), np.array([0.02, -0.03, -0.55])
    rest = np.array([[x, y, z] for x in (-0.04, 0.04) for y in (-0.03, 0.03) for z in (-0.08, 0.08)])
    posed = rest @ cv2.Rodrigues(obj_rot)[0].T + obj_trans  # the dataset's objCorners3D: posed rest corners
    meta = dict(camMat=np.array([[614.0, 0, 320.0], [0, 615.0, 240.0], [0, 0, 1]]),
                objRot=obj_rot, objTrans=obj_trans, objName="006_mustard_bottle", objCorners3D=posed,
                objCorners3DRest=rest, handBeta=np.linspace(-1, 1, 10))
    if two_hands:
        left = joints + [0.15, 0, 0]
        meta.update(rightHandJoints3D=joints[0] if evaluation else joints,
                    leftHandJoints3D=left[0] if evaluation else left,
                    rightHandPose=np.full(48, 0.1), leftHandPose=np.full(48, -0.1),
                    rightHandTrans=np.array([0.0, 0.0, -0.5]), leftHandTrans=np.array([0.15, 0.0, -0.5]),
                    jointValidRight=np.ones(21), jointValidLeft=np.zeros(21))
    else:
        meta.update(handJoints3D=joints[0] if evaluation else joints, handPose=np.full(48, 0.1),
                    handTrans=np.array([0.0, 0.0, -0.5]))
    if evaluation:
        meta["handBoundingBox"] = np.array([100.0, 120.0, 260.0, 300.0])
    return meta


def write_ho3d(root: Path, two_hands: bool = False):
    """Sequence SEQ1 with frame 0000 in train and evaluation; returns the metas written."""
    rng = np.random.default_rng(2)
    metas = {}
    for split in ("train", "evaluation"):
        meta = ho3d_meta(rng, two_hands, split == "evaluation")
        seq = root / split / "SEQ1"
        (seq / "meta").mkdir(parents=True)
        (seq / "meta" / "0000.pkl").write_bytes(legacy_pickle(meta))
        _write_image(seq / "rgb" / "0000.jpg", 640, 480)
        (root / f"{split}.txt").write_text("SEQ1/0000\n")
        metas[split] = meta
    return metas


def write_dexycb(root: Path, subjects: int = 3, sequences: int = 5):
    """`subjects` x `sequences` sequences of one camera and one frame each; sequence 1 of every
    subject has no visible hand (joint_3d = -1)."""
    serial = "836212060125"
    calib = root / "calibration" / "intrinsics"
    calib.mkdir(parents=True)
    (calib / f"{serial}_640x480.yml").write_text(yaml.safe_dump(
        dict(color=dict(fx=616.0, fy=616.5, ppx=312.0, ppy=241.0))))
    mano_dir = root / "calibration" / "mano_20200709-subject-01_right"
    mano_dir.mkdir(parents=True)
    (mano_dir / "mano.yml").write_text(yaml.safe_dump(dict(betas=[0.5] * 10)))
    rng = np.random.default_rng(3)
    truth = {}
    for s in range(subjects):
        for q in range(sequences):
            seq = root / f"20200709-subject-{s + 1:02d}" / f"20200709_1415{q:02d}"
            (seq / serial).mkdir(parents=True)
            (seq / "meta.yml").write_text(yaml.safe_dump(dict(
                serials=[serial], num_frames=1, ycb_ids=[5, 14], ycb_grasp_ind=0,
                mano_sides=["right" if s % 2 == 0 else "left"], mano_calib=["20200709-subject-01_right"])))
            joints = rng.uniform(-0.1, 0.1, (1, 21, 3)) + [0, 0, 0.6]
            if q == 1:
                joints[:] = -1
            pose_y = np.concatenate([np.tile(np.eye(3), (2, 1, 1)), rng.uniform(-0.2, 0.6, (2, 3, 1))], axis=2)
            np.savez(seq / serial / "labels_000000.npz", joint_3d=joints.astype(np.float32),
                     joint_2d=np.zeros((1, 21, 2), np.float32), pose_y=pose_y.astype(np.float32),
                     pose_m=np.arange(51, dtype=np.float32)[None] / 100, seg=np.zeros((480, 640), np.uint8))
            _write_image(seq / serial / "color_000000.jpg", 640, 480)
            truth[(s, q)] = dict(joints=joints[0], pose_y=pose_y, side="right" if s % 2 == 0 else "left")
    return truth
