"""Camera input pairing through real subscriptions, with the project's pairer and with the
message_filters path. ROS 2's message_filters is not installable here: a minimal module with its API
(Subscriber, TimeSynchronizer, ApproximateTimeSynchronizer, registerCallback) stands in for it, to
check the node's adapter (exact camera_info stamps, rejected images, newest-only, unpaired counting)."""
import sys
import types

import pytest
from rclpy.qos import QoSProfile
from sensor_msgs.msg import CameraInfo, Image

from hand_object_pose.ros.frame_inputs import MessageFiltersInputs, OwnInputs, make_frame_inputs
from hand_object_pose.ros.inputs import stamp_ns
from node_process import header
from ros_test_helpers import ros_session, wait_for_subscribers, wait_until

MS = 1_000_000


def _stamp(msg):
    return stamp_ns(msg.header.stamp)


class _Filter:
    def __init__(self):
        self._callbacks = []

    def registerCallback(self, callback):  # noqa: N802 (message_filters' name)
        self._callbacks.append(callback)

    def signalMessage(self, *msgs):  # noqa: N802
        for callback in list(self._callbacks):
            callback(*msgs)


class _Subscriber(_Filter):
    def __init__(self, node, msg_type, topic, qos_profile):
        super().__init__()
        self.sub = node.create_subscription(msg_type, topic, self.signalMessage, qos_profile)


class _Synchronizer(_Filter):
    """Emits the newest first-input message whose partners all lie within `slop` (nearest each)."""

    def __init__(self, filters, queue_size, slop=0.0):
        super().__init__()
        self._queues, self._size, self._slop_ns = [[] for _ in filters], queue_size, int(slop * 1e9)
        for index, f in enumerate(filters):
            f.registerCallback(lambda msg, index=index: self._add(index, msg))

    def _add(self, index, msg):
        self._queues[index] = (self._queues[index] + [msg])[-self._size:]
        for first in reversed(self._queues[0]):
            partners = [min(q, key=lambda m: abs(_stamp(m) - _stamp(first)), default=None) for q in self._queues[1:]]
            if all(p is not None and abs(_stamp(p) - _stamp(first)) <= self._slop_ns for p in partners):
                self._queues = [[m for m in q if _stamp(m) > _stamp(first)] for q in self._queues]
                self.signalMessage(first, *partners)
                return


def message_filters_standin():
    module = types.ModuleType("message_filters")
    module.Subscriber = _Subscriber
    module.TimeSynchronizer = lambda filters, queue_size: _Synchronizer(filters, queue_size)
    module.ApproximateTimeSynchronizer = _Synchronizer
    return module


class Harness:
    def __init__(self, session, use_depth, kind, monkeypatch):
        self.frames, self.unpaired, self.rejected = [], [], set()
        if kind == "message_filters":
            monkeypatch.setitem(sys.modules, "message_filters", message_filters_standin())
        else:
            monkeypatch.setitem(sys.modules, "message_filters", None)
        node = session.node("pose_inputs")
        self.inputs = make_frame_inputs(node, use_depth, 0.010, 5, QoSProfile(depth=10), QoSProfile(depth=10),
                                        accept_image=lambda msg: _stamp(msg) not in self.rejected,
                                        on_frame=self.frames.append, on_unpaired=self.unpaired.append)
        assert isinstance(self.inputs, MessageFiltersInputs if kind == "message_filters" else OwnInputs)
        peer = session.node("camera")
        self.pubs = {name: peer.create_publisher(t, name, 10)
                     for name, t in (("image", Image), ("camera_info", CameraInfo), ("depth", Image))}
        for name in ("image", "camera_info") + (("depth",) if use_depth else ()):
            wait_for_subscribers(self.pubs[name])

    def publish(self, name, stamp):
        msg = CameraInfo(header=header(stamp)) if name == "camera_info" else Image(header=header(stamp))
        self.pubs[name].publish(msg)

    def wait_frames(self, count):
        wait_until(lambda: len(self.frames) >= count, 10.0, f"{count} frame(s)")


@pytest.mark.parametrize("kind", ["own", "message_filters"])
def test_pairing_without_depth(kind, monkeypatch):
    with ros_session() as session:
        h = Harness(session, use_depth=False, kind=kind, monkeypatch=monkeypatch)
        h.publish("camera_info", 100 * MS)
        h.publish("image", 100 * MS)
        h.wait_frames(1)
        h.rejected.add(200 * MS)                    # e.g. out of order: the node said no
        h.publish("image", 200 * MS)
        h.publish("camera_info", 200 * MS)
        h.publish("image", 300 * MS)                # never gets a camera_info ...
        h.publish("image", 400 * MS)
        h.publish("camera_info", 400 * MS)          # ... and is superseded by 400
        h.wait_frames(2)
        wait_until(lambda: sum(h.unpaired) >= 1, 5.0, "the unpaired count")
    assert [(f.stamp_ns, _stamp(f.camera_info), f.depth) for f in h.frames] == [(100 * MS, 100 * MS, None),
                                                                                (400 * MS, 400 * MS, None)]
    assert sum(h.unpaired) == 1
    assert h.inputs.path == kind


@pytest.mark.parametrize("kind", ["own", "message_filters"])
def test_pairing_with_depth_requires_exact_camera_info(kind, monkeypatch):
    with ros_session() as session:
        h = Harness(session, use_depth=True, kind=kind, monkeypatch=monkeypatch)
        h.publish("camera_info", 100 * MS)
        h.publish("image", 100 * MS)
        h.publish("depth", 104 * MS)                # within the 10 ms slop
        h.wait_frames(1)
        h.publish("camera_info", 195 * MS)          # within the slop, but not this image's camera_info
        h.publish("image", 200 * MS)
        h.publish("depth", 200 * MS)
        h.publish("camera_info", 300 * MS)
        h.publish("image", 300 * MS)
        h.publish("depth", 296 * MS)
        h.wait_frames(2)
    assert [(f.stamp_ns, _stamp(f.camera_info), _stamp(f.depth)) for f in h.frames] == [
        (100 * MS, 100 * MS, 104 * MS), (300 * MS, 300 * MS, 296 * MS)]
