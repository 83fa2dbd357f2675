"""Training crops and augmentation, applied consistently to the image, joints, masks, intrinsics,
MANO global orientation and object pose.

The papers' (and official code's) recipe, on a square crop around the hands (x1.25):
shift +-15 % of the box, scale 1 +- 0.25, in-plane rotation N(0, 45 deg) clipped to +-90 deg with
probability 0.6, colour x[0.8, 1.2] per channel, horizontal flip with p = 0.5 that swaps left and
right (never for the `angles` and HO-3D settings, nor when objects are labelled: a mirrored object
is another object).

Geometry. The crop is the 2x3 affine A (full image -> crop pixels). An in-plane rotation by theta of
the image about the crop centre is a rotation of the camera about its optical axis, so 3D labels are
rotated by Rz(theta) (`rotation_z`), and the crop's intrinsics are K' = [A; 0 0 1] K Rz^T: then
K' (Rz X) / z = A (K X / z) exactly. K' is a pinhole matrix when fx = fy (otherwise it carries a
small skew, which `project` here handles since it uses the full 3x3). A flip mirrors x in the camera
frame (M = diag(-1, 1, 1)): X' = M X, u' = (S - 1) - u, K' = F K M with F the image flip.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from hand_object_pose.geometry.camera import box_around_points, crop_affine, project_points, warp_image
from hand_object_pose.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle

from hand_object_pose.datasets.sample import Sample

MIRROR_X = np.diag([-1.0, 1.0, 1.0])


@dataclass
class AugmentationConfig:
    """Ranges of the random augmentation (the official defaults); `enabled=False` gives plain crops."""

    enabled: bool = True
    shift: float = 0.15              # fraction of the box side
    scale: float = 0.25              # scale factor drawn in 1 +- scale (clipped normal, sigma = scale)
    rotation_deg: float = 45.0       # sigma of the normal in-plane rotation, clipped to +-2 sigma
    rotation_prob: float = 0.6
    colour: float = 0.2              # per-channel factor in 1 +- colour
    flip_prob: float = 0.5           # 0 for the MANO-angles and HO-3D settings
    box_enlarge: float = 1.25


@dataclass
class HandCrop:
    side: str
    joints_cam: np.ndarray           # (21, 3) metres, in the (rotated / mirrored) crop camera frame
    joints_uv: np.ndarray            # (21, 2) crop pixels
    joints_valid: np.ndarray         # (21,) bool: annotated and inside the crop
    mano_pose: Optional[np.ndarray] = None   # (48,), global orientation in the crop camera frame
    mano_shape: Optional[np.ndarray] = None


@dataclass
class ObjectCrop:
    object_id: str
    rotation: np.ndarray             # (3, 3) crop camera <- object
    translation: np.ndarray          # (3,) metres
    corners_rest: Optional[np.ndarray] = None   # (8, 3) object-frame bounding box, metres
    symmetric_z180: bool = False


@dataclass
class TrainingCrop:
    """One network input and its labels, all in the crop's camera (see module docstring)."""

    image: np.ndarray                # (S, S, 3) uint8 RGB
    intrinsics: np.ndarray           # (3, 3) K' of the crop
    affine: np.ndarray               # (2, 3) full image -> crop pixels (before the flip)
    rotation_z: np.ndarray           # (3, 3) applied to 3D labels (identity without rotation)
    flipped: bool
    hands: dict = field(default_factory=dict)   # side -> HandCrop (sides swapped when flipped)
    objects: list = field(default_factory=list)
    masks: list = field(default_factory=list)   # warped with nearest-neighbour sampling


def _rotation_about(center, angle_rad: float) -> np.ndarray:
    """2x3 affine rotating image points by `angle_rad` (counter-clockwise on screen) about `center`.

    On screen (y down) a counter-clockwise rotation by theta is the matrix [[c, s], [-s, c]], which in the
    camera frame is a rotation about +z (forward) by -theta; `_camera_rotation` returns the matching 3x3.
    """
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    linear = np.array([[c, s], [-s, c]])
    center = np.asarray(center, np.float64)
    return np.concatenate([linear, (center - linear @ center)[:, None]], axis=1)


def _camera_rotation(angle_rad: float) -> np.ndarray:
    """The 3D rotation of camera-frame points matching `_rotation_about` in the image."""
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    return np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])


def _crop_box(sample: Sample) -> np.ndarray:
    """Square box (x0, y0, w, h) around every labelled joint (and the dataset's box when given).

    A frame without any hand (synthetic scenes may hide both) is cropped around its objects' 3D boxes,
    or, with no object either, is the whole image: it still teaches presence 0 and an empty heat-map."""
    K = np.asarray(sample.intrinsics, np.float64)
    points = [project_points(h.joints_cam[h.joints_valid], K) for h in sample.hands.values() if h.joints_valid.any()]
    if sample.hand_box is not None:
        x, y, w, h = sample.hand_box
        points.append(np.array([[x, y], [x + w, y + h]]))
    if not points:
        for obj in sample.objects:
            corners = obj.corners_cam if obj.corners_cam is not None else (
                None if obj.corners_rest is None else np.asarray(obj.corners_rest) @ np.asarray(obj.rotation).T
                + np.asarray(obj.translation))
            if corners is not None and np.all(np.asarray(corners)[:, 2] > 1e-3):
                points.append(project_points(np.asarray(corners, np.float64), K))
    if not points:
        width, height = sample.image_size
        points.append(np.array([[0.0, 0.0], [width, height]]))
    return box_around_points(np.concatenate(points), enlarge=1.0)


def make_training_crop(sample: Sample, image: np.ndarray, rng: np.random.Generator,
                       config: AugmentationConfig = AugmentationConfig(), out_size: int = 256,
                       masks: tuple = ()) -> TrainingCrop:
    """Crop (and, when `config.enabled`, augment) one sample. `image` is the full (H, W, 3) RGB."""
    box = _crop_box(sample)
    cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
    side = box[2] * config.box_enlarge
    angle, flip, colour = 0.0, False, np.ones(3)
    if config.enabled:
        cx += rng.uniform(-config.shift, config.shift) * side
        cy += rng.uniform(-config.shift, config.shift) * side
        side *= float(np.clip(rng.normal(1.0, config.scale), 1 - config.scale, 1 + config.scale))
        if rng.random() < config.rotation_prob:
            angle = np.deg2rad(float(np.clip(rng.normal(0.0, config.rotation_deg), -2 * config.rotation_deg,
                                             2 * config.rotation_deg)))
        flip = bool(rng.random() < config.flip_prob) and not sample.objects
        colour = rng.uniform(1 - config.colour, 1 + config.colour, size=3)
    crop = crop_affine((cx - side / 2, cy - side / 2, side, side), out_size)
    center = np.array([(out_size - 1) / 2, (out_size - 1) / 2])
    rot2d = _rotation_about(center, angle)
    affine = np.concatenate([rot2d[:, :2] @ crop[:, :2], rot2d[:, :2] @ crop[:, 2:] + rot2d[:, 2:]], axis=1)
    rotation_z = _camera_rotation(angle)
    # K' = A3 K Rz^T (module docstring).
    a3 = np.vstack([affine, [0.0, 0.0, 1.0]])
    intrinsics = a3 @ np.asarray(sample.intrinsics, np.float64) @ rotation_z.T
    full_transform = a3
    mirror = np.eye(3)
    if flip:
        image_flip = np.array([[-1.0, 0.0, out_size - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        full_transform = image_flip @ a3
        intrinsics = image_flip @ intrinsics @ MIRROR_X
        mirror = MIRROR_X
    warped = warp_image(image, full_transform[:2], out_size)
    warped = np.clip(warped.astype(np.float32) * colour, 0, 255).astype(np.uint8)
    to_crop_cam = mirror @ rotation_z
    hands = {}
    for label in sample.hands.values():
        joints = label.joints_cam.astype(np.float64) @ to_crop_cam.T
        uv = project_points(joints, intrinsics)
        inside = np.all((uv >= 0) & (uv <= out_size - 1), axis=-1)
        pose = None
        if label.mano_pose is not None and len(label.mano_pose) == 48:
            pose = np.asarray(label.mano_pose, np.float64).copy()
            pose[:3] = matrix_to_axis_angle(rotation_z @ axis_angle_to_matrix(pose[:3]))
            if flip:  # mirrored axis-angle: (a_x, -a_y, -a_z) for every joint
                pose = pose.reshape(16, 3) * np.array([1.0, -1.0, -1.0])
                pose = pose.reshape(48)
        side_name = {"right": "left", "left": "right"}[label.side] if flip else label.side
        hands[side_name] = HandCrop(side_name, joints.astype(np.float32), uv.astype(np.float32),
                                    label.joints_valid & inside, None if pose is None else pose.astype(np.float32),
                                    label.mano_shape)
    objects = [ObjectCrop(o.object_id, rotation_z @ np.asarray(o.rotation, np.float64),
                          rotation_z @ np.asarray(o.translation, np.float64), o.corners_rest, o.symmetric_z180)
               for o in sample.objects]
    import cv2

    warped_masks = [warp_image(m, full_transform[:2], out_size, interpolation=cv2.INTER_NEAREST) for m in masks]
    return TrainingCrop(warped, intrinsics, affine, rotation_z, flip,
                        dict(sorted(hands.items(), key=lambda kv: kv[0] != "right")), objects, warped_masks)
