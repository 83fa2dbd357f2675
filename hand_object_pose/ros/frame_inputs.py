"""The node's camera inputs: subscriptions to `image`, `camera_info` and (optionally) `depth`, paired
into `pairing.Frame`s.

Two implementations with the same behaviour, chosen once by `make_frame_inputs`:
* `MessageFiltersInputs`: `message_filters` (a ROS install): TimeSynchronizer(image, camera_info), or
  ApproximateTimeSynchronizer(image, camera_info, depth) with slop = `sync_slop_s`;
* `OwnInputs`: the project's `FramePairer` where message_filters is not importable (pip installs).
Both require camera_info with exactly the image's stamp, pass only images the node accepted
(`accept_image`: counting, stamp order), never hand over a frame older than one already handed
over, and report every accepted image that never becomes a frame (`on_unpaired`: superseded by a
newer complete frame, pushed out of the bounded queue, or expired by `expire`), so that each
accepted image is reported exactly once, as a frame or as unpaired. `OwnInputs` also reports images
that never reached the node (`on_lost`: gaps in the publisher's sequence numbers).
"""
from __future__ import annotations

import time
from typing import Callable

from sensor_msgs.msg import CameraInfo, Image

from hand_object_pose.ros.inputs import stamp_ns
from hand_object_pose.ros.pairing import Frame, FramePairer


class PublisherGaps:
    """Images a publisher sent that never reached this subscription, from the publication sequence number
    DDS gives each sample (Fast DDS does; 0 = not reported): overwritten in a depth-1 queue while the
    executor was busy, or lost by a best-effort transport. Those samples raise no 'message lost' event.
    One publisher is assumed: a number that goes back (a restarted or a second publisher) restarts the
    count without counting."""

    def __init__(self):
        self._last = None

    def lost(self, info) -> int:
        sequence = int(info.get("publication_sequence_number", 0) or 0) if info else 0
        if sequence <= 0:
            return 0
        last, self._last = self._last, sequence
        return 0 if last is None or sequence <= last else sequence - last - 1


class OwnInputs:
    path = "own"

    def __init__(self, node, use_depth: bool, slop_s: float, queue: int, image_qos, info_qos,
                 accept_image: Callable, on_frame: Callable, on_unpaired: Callable, on_lost: Callable = None):
        self._pairer = FramePairer(use_depth, slop_s, queue)
        self._accept_image, self._on_frame, self._on_unpaired = accept_image, on_frame, on_unpaired
        self._on_lost, self._gaps = on_lost, PublisherGaps()
        node.create_subscription(Image, "image", self._image, image_qos)
        node.create_subscription(CameraInfo, "camera_info", self._camera_info, info_qos)
        if use_depth:
            node.create_subscription(Image, "depth", self._depth, image_qos)

    def _image(self, msg, info) -> None:
        lost = self._gaps.lost(info)
        if lost and self._on_lost is not None:
            self._on_lost(lost)
        if self._accept_image(msg):
            self._hand_over(self._pairer.add_image(stamp_ns(msg.header.stamp), msg))

    def _camera_info(self, msg) -> None:
        self._hand_over(self._pairer.add_camera_info(stamp_ns(msg.header.stamp), msg))

    def _depth(self, msg) -> None:
        self._hand_over(self._pairer.add_depth(stamp_ns(msg.header.stamp), msg))

    def _hand_over(self, frame) -> None:
        if self._pairer.unpaired_images:
            self._on_unpaired(self._pairer.unpaired_images)
            self._pairer.unpaired_images = 0
        if frame is not None:
            self._on_frame(frame)

    def expire(self, max_age_s: float) -> None:
        """Report images that waited longer than `max_age_s` for their partners as unpaired."""
        self._pairer.expire(max_age_s)
        self._hand_over(None)

    def waiting_for(self) -> str:
        return self._pairer.waiting_for()


class MessageFiltersInputs:
    path = "message_filters"

    def __init__(self, node, use_depth: bool, slop_s: float, queue: int, image_qos, info_qos,
                 accept_image: Callable, on_frame: Callable, on_unpaired: Callable, message_filters):
        self._use_depth, self._slop_s = use_depth, slop_s
        self._accept_image, self._on_frame, self._on_unpaired = accept_image, on_frame, on_unpaired
        self._accepted: dict = {}          # stamp -> arrival (monotonic s) of accepted images not yet handed over
        self._last_stamp = None            # stamp of the last frame handed over
        image = message_filters.Subscriber(node, Image, "image", qos_profile=image_qos)
        image.registerCallback(self._image)   # before the synchroniser's own callback on the same input
        inputs = [image, message_filters.Subscriber(node, CameraInfo, "camera_info", qos_profile=info_qos)]
        if use_depth:
            inputs.append(message_filters.Subscriber(node, Image, "depth", qos_profile=image_qos))
            sync = message_filters.ApproximateTimeSynchronizer(inputs, queue, slop_s)
        else:
            sync = message_filters.TimeSynchronizer(inputs, queue)
        sync.registerCallback(self._synchronised)
        self._filters = (inputs, sync)     # message_filters objects must live as long as the node

    def _image(self, msg) -> None:
        if self._accept_image(msg):
            stamp = stamp_ns(msg.header.stamp)
            if stamp in self._accepted:        # the same stamp again: one of the two never pairs
                self._on_unpaired(1)
            self._accepted[stamp] = time.monotonic()
            if len(self._accepted) > 64:       # bounded: the oldest waiting images are given up
                forgotten = sorted(self._accepted)[:len(self._accepted) - 64]
                self._forget(forgotten)

    def _forget(self, stamps) -> None:
        for stamp in stamps:
            del self._accepted[stamp]
        if stamps:
            self._on_unpaired(len(stamps))

    def _synchronised(self, image, camera_info, depth=None) -> None:
        stamp = stamp_ns(image.header.stamp)
        # Approximate sync may pair a camera_info from a neighbouring frame: its intrinsics are for
        # another image only in theory, but its stamp says the camera did not send this image's one.
        if stamp not in self._accepted or stamp_ns(camera_info.header.stamp) != stamp:
            return
        if self._last_stamp is not None and stamp <= self._last_stamp:
            return
        del self._accepted[stamp]
        self._forget([s for s in self._accepted if s < stamp])
        self._last_stamp = stamp
        self._on_frame(Frame(stamp, image, camera_info, depth))

    def expire(self, max_age_s: float) -> None:
        """Report images that waited longer than `max_age_s` for their partners as unpaired (a late
        partner can no longer complete them)."""
        now = time.monotonic()
        self._forget([s for s, arrived in self._accepted.items() if now - arrived > max_age_s])

    def waiting_for(self) -> str:
        # message_filters does not say which partner is missing.
        depth = f" and a depth image within {self._slop_s:g} s" if self._use_depth else ""
        return f"a camera_info with exactly the same stamp{depth}"


def make_frame_inputs(node, use_depth: bool, slop_s: float, queue: int, image_qos, info_qos,
                      accept_image: Callable, on_frame: Callable, on_unpaired: Callable, on_lost: Callable = None):
    """`MessageFiltersInputs` when message_filters is importable, else `OwnInputs`.

    accept_image(msg) -> bool: called for every image (False = rejected, never paired);
    on_frame(Frame): a complete frame, newest so far; on_unpaired(n): n accepted images that will
    never be a frame. Call `expire(max_age_s)` periodically so that images whose partners never
    come are reported too. on_lost(n): n images the publisher sent that never reached the node
    (`OwnInputs` only: message_filters' subscribers do not pass the sample's sequence number).
    """
    args = (node, use_depth, slop_s, queue, image_qos, info_qos, accept_image, on_frame, on_unpaired)
    try:
        import message_filters
    except ImportError:
        return OwnInputs(*args, on_lost=on_lost)
    return MessageFiltersInputs(*args, message_filters=message_filters)
