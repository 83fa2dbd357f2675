"""RViz markers for one estimate, with stable namespaces/ids and DELETE for things that vanished.

Namespaces (ids stable across frames):
  `<side>_hand/skeleton`  LINE_LIST, 20 bones          id 0
  `<side>_hand/joints`    SPHERE_LIST, 21 joints        id 0
  `<side>_hand/mesh`      TRIANGLE_LIST, MANO mesh      id 0   (alpha < 1: alpha = 1 flickers, ros2/rviz#875)
  `objects`               object mesh                   id = object's index in the catalogue
                          (MESH_RESOURCE when the catalogue has a mesh URI, else TRIANGLE_LIST of the
                          estimated vertices)

Mesh markers are heavy (4614 points per hand) and RViz degrades when they are refreshed at camera
rate (ros-visualization/rviz#358), so `MarkerBuilder` refreshes them at most `mesh_rate_hz`; a mesh
not refreshed in a frame stays as last drawn unless its entity vanished (then it is deleted).
All markers carry the input image's header; lifetime 0 (they live until replaced or deleted).
"""
from __future__ import annotations

import numpy as np
from geometry_msgs.msg import Point, Vector3
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from hand_object_pose.geometry.skeleton import BONES
from hand_object_pose.inference.result import HAND_SIDES
from hand_object_pose.ros.conversions import pose_msg

SKELETON_WIDTH_M = 0.004
JOINT_DIAMETER_M = 0.008
MESH_ALPHA = 0.6
_HAND_COLOURS = {"right": (0.2, 0.6, 1.0), "left": (1.0, 0.5, 0.1)}
_OBJECT_COLOUR = (0.3, 0.85, 0.3)


def _points(xyz: np.ndarray) -> list:
    return [Point(x=float(x), y=float(y), z=float(z)) for x, y, z in np.asarray(xyz, np.float64).reshape(-1, 3)]


def _marker(header, ns: str, marker_id: int, kind: int, colour, alpha: float, scale) -> Marker:
    marker = Marker(header=header, ns=ns, id=marker_id, type=kind, action=Marker.ADD,
                    scale=Vector3(x=float(scale[0]), y=float(scale[1]), z=float(scale[2])),
                    color=ColorRGBA(r=colour[0], g=colour[1], b=colour[2], a=alpha))
    marker.pose.orientation.w = 1.0
    return marker


def skeleton_marker(header, side: str, joints_xyz: np.ndarray) -> Marker:
    marker = _marker(header, f"{side}_hand/skeleton", 0, Marker.LINE_LIST, _HAND_COLOURS[side], 1.0,
                     (SKELETON_WIDTH_M, 0.0, 0.0))
    pairs = np.asarray(joints_xyz, np.float64)[np.asarray(BONES).reshape(-1)]
    marker.points = _points(pairs)
    return marker


def joints_marker(header, side: str, joints_xyz: np.ndarray) -> Marker:
    marker = _marker(header, f"{side}_hand/joints", 0, Marker.SPHERE_LIST, _HAND_COLOURS[side], 1.0,
                     (JOINT_DIAMETER_M,) * 3)
    marker.points = _points(joints_xyz)
    return marker


def triangle_marker(header, ns: str, marker_id: int, vertices, faces, colour) -> Marker:
    marker = _marker(header, ns, marker_id, Marker.TRIANGLE_LIST, colour, MESH_ALPHA, (1.0, 1.0, 1.0))
    marker.points = _points(np.asarray(vertices, np.float64)[np.asarray(faces, np.int64).reshape(-1)])
    return marker


def mesh_resource_marker(header, marker_id: int, info, rotation, translation) -> Marker:
    """`info`: conversions.ObjectInfo (mesh URI and its scale to metres)."""
    marker = _marker(header, "objects", marker_id, Marker.MESH_RESOURCE, _OBJECT_COLOUR, MESH_ALPHA,
                     (info.mesh_scale,) * 3)
    marker.mesh_resource = info.mesh_resource
    marker.pose = pose_msg(rotation, translation)
    return marker


class MarkerBuilder:
    """Builds each frame's MarkerArray and remembers what is on screen, to DELETE what vanished."""

    def __init__(self, object_ids: list, mesh_rate_hz: float):
        """`object_ids`: the catalogue's ids in order (an object's marker id is its index);
        `mesh_rate_hz`: largest refresh rate of TRIANGLE_LIST meshes, 0 = never draw them."""
        self._object_index = {object_id: i for i, object_id in enumerate(object_ids)}
        self._meshes = mesh_rate_hz > 0
        self._mesh_period_s = 1.0 / mesh_rate_hz if self._meshes else float("inf")
        self._last_mesh_s = -float("inf")
        self._shown: set = set()  # (ns, id) of every marker currently on screen

    def build(self, estimate, header, objects: dict, now_s: float) -> MarkerArray:
        """`objects`: id -> ObjectInfo (catalogue); `now_s`: monotonic time for the mesh rate limit."""
        refresh_meshes = self._meshes and now_s - self._last_mesh_s >= self._mesh_period_s
        if refresh_meshes:
            self._last_mesh_s = now_s
        wanted, keep = [], set()  # markers to ADD; (ns, id) still alive but not refreshed this frame
        for hand in estimate.hands:
            if not hand.present or hand.side not in HAND_SIDES:
                continue
            wanted.append(skeleton_marker(header, hand.side, hand.joints_xyz))
            wanted.append(joints_marker(header, hand.side, hand.joints_xyz))
            if self._meshes and hand.vertices is not None and hand.faces is not None:
                key = (f"{hand.side}_hand/mesh", 0)
                if refresh_meshes:
                    wanted.append(triangle_marker(header, key[0], 0, hand.vertices, hand.faces,
                                                  _HAND_COLOURS[hand.side]))
                else:
                    keep.add(key)
        for obj in estimate.objects:
            if obj.object_id not in objects:
                continue
            info, index = objects[obj.object_id], self._object_index[obj.object_id]
            if info.mesh_resource:  # a pose update is cheap: RViz caches the mesh resource
                wanted.append(mesh_resource_marker(header, index, info, obj.rotation, obj.translation))
            elif self._meshes and obj.vertices is not None and obj.faces is not None:
                if refresh_meshes:
                    wanted.append(triangle_marker(header, "objects", index, obj.vertices, obj.faces, _OBJECT_COLOUR))
                else:
                    keep.add(("objects", index))
        added = {(m.ns, m.id) for m in wanted}
        deletes = []
        for key in sorted(self._shown - added - keep):
            deletes.append(Marker(header=header, ns=key[0], id=key[1], action=Marker.DELETE))
        self._shown = added | (keep & self._shown)
        return MarkerArray(markers=deletes + wanted)
