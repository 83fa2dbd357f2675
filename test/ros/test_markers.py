"""Markers: stable namespaces/ids, DELETE for vanished things, mesh rate limit, header and units."""
import numpy as np
from std_msgs.msg import Header
from visualization_msgs.msg import Marker

from hand_object_pose.inference.result import RIGHT
from hand_object_pose.ros.markers import MarkerBuilder
from node_test_estimates import OBJECTS, estimate

HEADER = Header(frame_id="cam_optical")


def by_key(array):
    return {(m.ns, m.id): m for m in array.markers}


def test_markers_for_two_hands_and_an_object():
    builder = MarkerBuilder(list(OBJECTS), mesh_rate_hz=10.0)
    est = estimate(with_mesh=True)
    markers = by_key(builder.build(est, HEADER, OBJECTS, now_s=0.0))
    assert set(markers) == {("right_hand/skeleton", 0), ("right_hand/joints", 0), ("right_hand/mesh", 0),
                            ("left_hand/skeleton", 0), ("left_hand/joints", 0), ("left_hand/mesh", 0),
                            ("objects", 0)}
    assert all(m.header == HEADER and m.action == Marker.ADD for m in markers.values())
    skeleton = markers[("right_hand/skeleton", 0)]
    assert skeleton.type == Marker.LINE_LIST and len(skeleton.points) == 40  # 20 bones
    joints = markers[("right_hand/joints", 0)]
    assert joints.type == Marker.SPHERE_LIST and len(joints.points) == 21
    np.testing.assert_allclose([joints.points[0].x, joints.points[0].y, joints.points[0].z],
                               est.hands[0].joints_xyz[0])  # metres in the optical frame
    mesh = markers[("right_hand/mesh", 0)]
    assert mesh.type == Marker.TRIANGLE_LIST and len(mesh.points) == 30 and 0 < mesh.color.a < 1
    obj = markers[("objects", 0)]  # "mug" is the catalogue's first entry and has a mesh URI
    assert obj.type == Marker.MESH_RESOURCE and obj.mesh_resource == OBJECTS["mug"].mesh_resource
    assert obj.scale.x == 0.001 and obj.pose.position.z == 0.45


def test_vanished_things_are_deleted_once():
    builder = MarkerBuilder(list(OBJECTS), mesh_rate_hz=10.0)
    builder.build(estimate(with_mesh=True), HEADER, OBJECTS, now_s=0.0)
    second = builder.build(estimate(sides=(RIGHT,), objects=()), HEADER, OBJECTS, now_s=1.0)
    deletes = {(m.ns, m.id) for m in second.markers if m.action == Marker.DELETE}
    assert deletes == {("left_hand/skeleton", 0), ("left_hand/joints", 0), ("left_hand/mesh", 0),
                       ("right_hand/mesh", 0), ("objects", 0)}
    third = builder.build(estimate(sides=(RIGHT,), objects=()), HEADER, OBJECTS, now_s=2.0)
    assert not [m for m in third.markers if m.action == Marker.DELETE]


def test_mesh_markers_are_rate_limited_but_kept():
    builder = MarkerBuilder(list(OBJECTS), mesh_rate_hz=2.0)   # at most every 0.5 s
    est = estimate(with_mesh=True, objects=("box",))            # box: no mesh URI -> TRIANGLE_LIST
    kinds = []
    for t in (0.0, 0.1, 0.2, 0.55, 0.6):
        markers = by_key(builder.build(est, HEADER, OBJECTS, now_s=t))
        kinds.append((("right_hand/mesh", 0) in markers, ("objects", 1) in markers))
        assert not [m for m in markers.values() if m.action == Marker.DELETE]  # not refreshed != deleted
        assert ("right_hand/joints", 0) in markers                              # light markers every frame
    assert kinds == [(True, True), (False, False), (False, False), (True, True), (False, False)]


def test_zero_mesh_rate_means_no_mesh_markers():
    builder = MarkerBuilder(list(OBJECTS), mesh_rate_hz=0.0)
    markers = by_key(builder.build(estimate(with_mesh=True, objects=()), HEADER, OBJECTS, now_s=0.0))
    assert not [k for k in markers if k[0].endswith("/mesh")]


def test_unknown_object_gets_no_marker():
    builder = MarkerBuilder(list(OBJECTS), mesh_rate_hz=1.0)
    markers = by_key(builder.build(estimate(sides=(), objects=("ufo",)), HEADER, OBJECTS, now_s=0.0))
    assert markers == {}
