"""HandObjectEstimate -> hand_object_pose/HandObjectPoses, and the small geometry helpers shared by the
ROS outputs (quaternions, poses).

Units and frames pass through unchanged (metres, radians, the input image's optical frame); this
module only translates field layouts. The header is always the input image's header (never now()).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from geometry_msgs.msg import Point, Pose, Quaternion, Vector3
from sensor_msgs.msg import RegionOfInterest
from transforms3d.quaternions import mat2quat

from hand_object_pose.inference.result import (DEPTH_FROM_2D_FIT, DEPTH_FROM_DEFAULT, DEPTH_FROM_DEPTH_IMAGE,
                                               RIGHT, HandObjectEstimate)
from hand_object_pose.msg import HandObjectPoses, HandPose, ObjectPose, StageTiming

_DEPTH_SOURCE = {
    DEPTH_FROM_DEPTH_IMAGE: HandPose.DEPTH_SOURCE_DEPTH_IMAGE,
    DEPTH_FROM_2D_FIT: HandPose.DEPTH_SOURCE_2D_FIT,
    DEPTH_FROM_DEFAULT: HandPose.DEPTH_SOURCE_DEFAULT,
}
_SYMMETRY = {"none": ObjectPose.SYMMETRY_NONE, "discrete": ObjectPose.SYMMETRY_DISCRETE,
             "continuous": ObjectPose.SYMMETRY_CONTINUOUS, "spherical": ObjectPose.SYMMETRY_SPHERICAL}


@dataclass(frozen=True)
class ObjectInfo:
    """What the ROS outputs need to know about one catalogue object."""

    object_id: str
    tf_frame: str                  # TF child frame name (no leading slash)
    mesh_resource: str = ""        # URI for RViz MESH_RESOURCE markers ("" = none)
    mesh_scale: float = 1.0        # mesh units -> metres
    symmetry: str = "none"         # "none" | "discrete" | "continuous" | "spherical"
    symmetry_order: int = 0
    symmetry_axis: tuple = (0.0, 0.0, 1.0)
    symmetry_flip_axis: Optional[tuple] = None   # a 180-degree symmetry about this axis too (catalogue flip_axis)


def object_infos(catalogue, frame_prefix: str = "") -> dict:
    """`inference.catalogue.ObjectCatalogue` (or None) -> {object id: ObjectInfo}, in catalogue order;
    TF child frames are `frame_prefix + tf_child_frame`."""
    if catalogue is None:
        return {}
    infos = {}
    for object_id in catalogue.ids:
        entry = catalogue[object_id]
        infos[object_id] = ObjectInfo(object_id=object_id, tf_frame=frame_prefix + entry.tf_child_frame,
                                      mesh_resource=entry.mesh_uri, mesh_scale=entry.mesh_scale,
                                      symmetry=entry.symmetry_kind, symmetry_order=entry.symmetry_order,
                                      symmetry_axis=tuple(entry.symmetry_axis),
                                      symmetry_flip_axis=entry.symmetry_flip_axis)
    return infos


def quaternion_msg(rotation: np.ndarray) -> Quaternion:
    """(3, 3) rotation matrix -> geometry_msgs/Quaternion (x, y, z, w), normalised."""
    w, x, y, z = mat2quat(np.asarray(rotation, dtype=np.float64))
    return Quaternion(x=float(x), y=float(y), z=float(z), w=float(w))


def pose_msg(rotation, translation) -> Pose:
    """Pose from a rotation (3, 3) or None (identity) and a translation (3,) in metres."""
    t = np.asarray(translation, dtype=np.float64).reshape(3)
    orientation = quaternion_msg(rotation) if rotation is not None else Quaternion(w=1.0)
    return Pose(position=Point(x=float(t[0]), y=float(t[1]), z=float(t[2])), orientation=orientation)


def _float_list(array) -> list:
    return np.asarray(array, dtype=np.float32).reshape(-1).tolist()


def hand_msg(hand) -> HandPose:
    """One HandEstimate -> HandPose (zero-filled arrays are left empty when the hand is absent)."""
    msg = HandPose(side=HandPose.SIDE_RIGHT if hand.side == RIGHT else HandPose.SIDE_LEFT,
                   present=bool(hand.present), confidence=float(hand.confidence))
    if not hand.present:
        return msg
    joints = np.asarray(hand.joints_xyz, dtype=np.float64).reshape(-1, 3)
    msg.joints = [Point(x=float(x), y=float(y), z=float(z)) for x, y, z in joints]
    msg.joint_confidence = _float_list(hand.joint_confidence)
    msg.keypoints_2d = _float_list(hand.joints_uv)
    msg.has_wrist_orientation = hand.wrist_rotation is not None
    msg.wrist_pose = pose_msg(hand.wrist_rotation, joints[0])
    msg.root_depth_source = _DEPTH_SOURCE[hand.root_depth_source]
    msg.has_mano = hand.mano_pose is not None and hand.mano_shape is not None
    if msg.has_mano:
        msg.mano_pose = _float_list(hand.mano_pose)
        msg.mano_shape = _float_list(hand.mano_shape)
    if hand.crop_box is not None:
        x0, y0, w, h = (max(0, int(round(float(v)))) for v in hand.crop_box)
        msg.roi = RegionOfInterest(x_offset=x0, y_offset=y0, width=w, height=h)
    return msg


def _vector(values) -> Vector3:
    return Vector3(x=float(values[0]), y=float(values[1]), z=float(values[2]))


def object_msg(obj, info: ObjectInfo) -> ObjectPose:
    return ObjectPose(object_id=obj.object_id, confidence=float(obj.confidence),
                      pose=pose_msg(obj.rotation, obj.translation), mesh_resource=info.mesh_resource,
                      symmetry=_SYMMETRY[info.symmetry], symmetry_order=int(info.symmetry_order),
                      symmetry_axis=_vector(info.symmetry_axis), symmetry_flip_axis=_vector(
                          info.symmetry_flip_axis if info.symmetry_flip_axis is not None else (0.0, 0.0, 0.0)),
                      tf_frame_id=info.tf_frame)


def estimate_to_msg(estimate: HandObjectEstimate, header, objects: dict, latency_ms: float,
                    extra_timings_ms: dict | None = None) -> HandObjectPoses:
    """Build the result message. `objects` maps object id -> ObjectInfo; estimates of ids not in it
    must have been filtered out by the caller (see `known_objects`)."""
    timings = dict(estimate.timings_ms)
    timings.update(extra_timings_ms or {})
    return HandObjectPoses(
        header=header,
        hands=[hand_msg(h) for h in estimate.hands],
        objects=[object_msg(o, objects[o.object_id]) for o in estimate.objects],
        model=estimate.model, backend=estimate.backend,
        timings=[StageTiming(stage=name, milliseconds=float(ms)) for name, ms in timings.items()],
        latency_ms=float(latency_ms))


def known_objects(estimate: HandObjectEstimate, objects: dict) -> tuple[list, list]:
    """Split the estimate's objects into (in the catalogue, ids not in the catalogue)."""
    known = [o for o in estimate.objects if o.object_id in objects]
    unknown = [o.object_id for o in estimate.objects if o.object_id not in objects]
    return known, unknown
