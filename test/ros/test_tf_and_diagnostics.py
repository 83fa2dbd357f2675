"""TF transforms from an estimate, frame-name validation, diagnostics counters and status."""
import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticStatus
from std_msgs.msg import Header
from transforms3d.quaternions import quat2mat

from hand_object_pose.inference.result import LEFT, RIGHT
from hand_object_pose.ros.diagnostics import NodeStats
from hand_object_pose.ros.tf_output import estimate_transforms, frame_id_problem
from node_test_estimates import OBJECTS, estimate, hand

HEADER = Header(frame_id="cam_optical")
FRAMES = {RIGHT: "right_hand_wrist", LEFT: "left_hand_wrist"}


def test_one_transform_per_wrist_and_catalogue_object():
    est = estimate(objects=("mug", "ufo"))
    transforms = {t.child_frame_id: t for t in estimate_transforms(est, HEADER, FRAMES, OBJECTS)}
    assert set(transforms) == {"right_hand_wrist", "left_hand_wrist", "hop/mug"}
    right = transforms["right_hand_wrist"]
    assert right.header == HEADER   # parent = the image's optical frame, stamp = acquisition time
    t, q = right.transform.translation, right.transform.rotation
    np.testing.assert_allclose([t.x, t.y, t.z], est.hands[0].joints_xyz[0])
    np.testing.assert_allclose(quat2mat([q.w, q.x, q.y, q.z]), est.hands[0].wrist_rotation, atol=1e-12)
    assert transforms["left_hand_wrist"].transform.rotation.w == 1.0   # no orientation estimated
    mug = transforms["hop/mug"].transform
    np.testing.assert_allclose([mug.translation.x, mug.translation.y, mug.translation.z], [0.0, 0.05, 0.45])


def test_absent_hand_has_no_transform():
    est = estimate(sides=(), objects=())
    est.hands = [hand(RIGHT, [0, 0, 0.5], present=False)]
    assert estimate_transforms(est, HEADER, FRAMES, OBJECTS) == []


@pytest.mark.parametrize("name,ok", [("right_hand_wrist", True), ("hop/mug", True), ("a.b-c", True),
                                     ("/right_wrist", False), ("", False), ("a b", False), ("a//b", False),
                                     ("trailing/", False)])
def test_frame_id_validation(name, ok):
    assert (frame_id_problem(name) == "") == ok
    if name.startswith("/"):
        assert "leading slash" in frame_id_problem(name)


def test_stats_counts_and_percentiles():
    stats = NodeStats()
    for _ in range(10):
        stats.input()
    stats.replaced()
    stats.unpaired(2)
    stats.rejected("bad_step")
    stats.rejected("bad_step")
    stats.error("depth_size_mismatch")     # worked around: the image is still processed
    stats.lost(3)                           # sent to the node, never reached it: in and dropped
    for latency in (10.0, 20.0, 30.0, 20.0):
        stats.output(latency, 5.0)
    snap = stats.snapshot()
    assert (snap["frames_in"], snap["frames_out"], snap["frames_dropped"], snap["frames_rejected"]) == (13, 4, 6, 2)
    assert snap["frames_lost"] == 3
    assert (snap["frames_replaced"], snap["frames_unpaired"], snap["errors.unpaired_images"]) == (1, 2, 2)
    assert snap["frames_in_progress"] == 1   # 10 in = 4 out + 3 dropped + 2 rejected + 1 not finished yet
    assert snap["errors.bad_step"] == 2 and snap["errors.depth_size_mismatch"] == 1
    assert snap["latency_ms_p50"] == pytest.approx(20.0) and snap["model_ms_p50"] == 5.0
    assert snap["input_rate_hz"] > 0
    status = stats.status("pose", "node", {"backend": "onnxruntime:CPUExecutionProvider"})
    values = {kv.key: kv.value for kv in status.values}
    assert values["backend"] == "onnxruntime:CPUExecutionProvider" and values["errors.bad_step"] == "2"
    assert status.level == DiagnosticStatus.WARN and "errors" in status.message


def test_status_without_input_warns():
    status = NodeStats().status("pose", "node", {})
    assert status.level == DiagnosticStatus.WARN and status.message == "no images received yet"
