"""From a crop prediction to metric camera-frame hands and objects.

Per hand: keypoints crop -> full image (inverse crop affine) -> undistorted pixels (camera model);
root from the configured sources in order (depth image, 2D fit, default); joints placed in the
camera's optical frame; with `plausibility_checks` a hand whose joints cannot be real is reported
as not present (`inference.plausibility`). Objects are placed relative to the wrist of the hand
their translation refers to, and only when that hand is present (otherwise their metric position
is unknown).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from hand_object_pose.geometry.camera import CameraIntrinsics, apply_affine, invert_affine
from hand_object_pose.geometry.skeleton import WRIST

from .adapters import CropPrediction, HandInCrop
from .config import EstimatorConfig
from .crops import Crop
from .depth import fit_translation, root_depth_from_image, translation_for_depth
from .depth_2p5d import fit_depth_to_hand_size
from .plausibility import implausibility
from .result import DEPTH_FROM_2D_FIT, DEPTH_FROM_DEFAULT, DEPTH_FROM_DEPTH_IMAGE, HandEstimate, ObjectEstimate


def lift_prediction(prediction: CropPrediction, crop: Crop, camera: CameraIntrinsics,
                    depth_m: Optional[np.ndarray], config: EstimatorConfig, object_id: str,
                    image_size: tuple = (0, 0)) -> tuple[list, list]:
    """(hands: list[HandEstimate], objects: list[ObjectEstimate]) in metres, camera frame, full-image pixels.

    depth_m: (H, W) metres aligned with the image, or None. object_id: id given to the model's object.
    image_size: (width, height) of the image in pixels, for the plausibility checks ((0, 0) = unknown).
    """
    to_image = invert_affine(crop.affine)
    K = camera.matrix
    hands, roots = [], {}
    for hand in prediction.hands:
        uv_image = apply_affine(hand.uv_crop, to_image)
        uv_ideal = camera.undistort_pixels(uv_image)
        weights = np.where(hand.joint_confidence >= config.fit_min_joint_confidence, hand.joint_confidence, 0.0)
        joints, source = place_hand(hand, uv_image, uv_ideal, weights, K, depth_m, config)
        present = hand.presence >= config.presence_threshold
        reason = implausibility(joints, K, *image_size) if present and config.plausibility_checks else ""
        present = present and not reason
        if present:
            roots[hand.side] = joints[WRIST]
        # A mesh moves with its 3D hand: joints = joints_rel + t and joints_rel[WRIST] = 0.
        vertices = None if hand.vertices_rel is None else hand.vertices_rel + joints[WRIST]
        hands.append(HandEstimate(
            side=hand.side, present=present, confidence=hand.presence, joints_xyz=joints, joints_uv=uv_image,
            joint_confidence=hand.joint_confidence.copy(), wrist_rotation=hand.wrist_rotation,
            mano_pose=hand.mano_pose, mano_shape=hand.mano_shape, vertices=vertices, faces=hand.faces,
            root_depth_source=source, crop_box=crop.box.copy(), implausible=reason))
    objects = [ObjectEstimate(object_id=object_id, confidence=obj.confidence, rotation=obj.rotation,
                              translation=roots[obj.relative_to] + obj.translation_from_wrist)
               for obj in prediction.objects if obj.relative_to in roots]
    return hands, objects


def place_hand(hand: HandInCrop, uv_image: np.ndarray, uv_ideal: np.ndarray, weights: np.ndarray, K: np.ndarray,
               depth_m: Optional[np.ndarray], config: EstimatorConfig) -> tuple[np.ndarray, str]:
    """(21, 3) camera-frame joints and the root-depth source used (result.DEPTH_FROM_*).

    uv_image: keypoints in raw image pixels (where the depth image is sampled); uv_ideal: the same
    undistorted (what the pinhole maths with K needs).
    """
    c = config
    for source in c.depth_sources:
        root_z = None
        if source == "depth_image":
            if depth_m is None:
                continue
            name = DEPTH_FROM_DEPTH_IMAGE
            root_z = root_depth_from_image(depth_m, uv_image, hand.rel_depth, c.depth_joints, c.depth_window_px,
                                           c.depth_min_m, c.depth_max_m, c.depth_min_valid, c.hand_surface_offset_m)
        elif source == "fit_2d":
            name = DEPTH_FROM_2D_FIT
            if hand.joints_rel is not None:
                t = fit_translation(hand.joints_rel, uv_ideal, K, weights, c.depth_min_m, c.depth_max_m)
                if t is not None:
                    return hand.joints_rel + t, name
            else:
                root_z = fit_depth_to_hand_size(uv_ideal, hand.rel_depth, K, c.hand_size_m, c.depth_min_m,
                                                c.depth_max_m)
        else:
            root_z, name = c.default_depth_m, DEPTH_FROM_DEFAULT
        if root_z is not None:
            return joints_at_depth(hand, uv_ideal, weights, K, root_z), name
    # Only reached when "default" is not among the sources and nothing else worked.
    return joints_at_depth(hand, uv_ideal, weights, K, c.default_depth_m), DEPTH_FROM_DEFAULT


def joints_at_depth(hand: HandInCrop, uv_ideal: np.ndarray, weights: np.ndarray, K: np.ndarray,
                    root_z: float) -> np.ndarray:
    """Joints (21, 3) with the wrist at depth `root_z`: a 3D hand is shifted onto its keypoints' rays,
    a 2.5D hand is back-projected keypoint by keypoint at root_z + its relative depths."""
    if hand.joints_rel is not None:
        return hand.joints_rel + translation_for_depth(hand.joints_rel, uv_ideal, K, root_z, weights)
    depth = np.clip(root_z + hand.rel_depth, 1e-3, None)
    x = (uv_ideal[:, 0] - K[0, 2]) / K[0, 0] * depth
    y = (uv_ideal[:, 1] - K[1, 2]) / K[1, 1] * depth
    return np.stack([x, y, depth], axis=1)
