"""The Estimator's path for a family that sees one hand per crop (`ModelFamily.per_hand_crops`, hand_heatmap).

Per frame:
1. the hands' boxes: given per side (ground-truth boxes in evaluation, the hand detector's hands), else
   a coarse pass of the network on the whole letterboxed frame (or the external ROI) gives each hand's
   presence and keypoints; a hand tracked from the previous frame keeps its tracked box (the box around
   its refined keypoints), the others get the box around their coarse keypoints;
2. one crop per present hand (left hands mirrored by the adapter), lifted to the camera frame like any
   other crop (`lifting.lift_prediction`: depth image -> 2D fit -> default depth);
3. the object: a crop around its tracked box, else its coarse-pass points, else the hands' boxes (then a
   second crop around the first answer); its class and 9 points -> PnP against the class's box.
Boxes are (x0, y0, width, height) image pixels; results in metres, camera optical frame.
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from hand_object_pose.geometry.camera import CameraIntrinsics, apply_affine, invert_affine, warp_image

from . import crops as crop_lib
from .adapters import CropPrediction
from .config import EstimatorConfig
from .lifting import lift_prediction
from .result import HandEstimate, ObjectEstimate

MIN_OBJECT_PRESENCE = 0.5
"""Coarse-pass object presence at or above which the object is looked for."""

MIN_OBJECT_CONFIDENCE = 0.2
"""An object is reported only when its class probability x the mean peakedness of its 9 heat-maps reaches
this (an untrained or lost object head spreads its heat-maps: about 0.01)."""

HAND_EXTENT_M = 0.11
"""Median image-plane extent of a hand in the synthetic training set (the larger side of its keypoints'
box x wrist depth / focal length, metres): the size prior of a hand box. Uncertain keypoints bunch up
towards their mean (soft-argmax), so a box around them alone is too small (coarse pass: about half the
ground-truth box) and tracking would shrink it frame after frame."""


class PerHandCrops:
    """Runs a per-hand-crop family on frames; keeps the per-side and object crop tracking.

    adapter: the family's adapter (preprocess_hand, parse_hand, parse, parse_object); run: the backend's
    named inputs -> named outputs; config: the Estimator's validated config."""

    def __init__(self, adapter, run: Callable[[dict], dict], config: EstimatorConfig):
        self.adapter, self.run, self.config = adapter, run, config
        self.size = adapter.input_size
        self._tracked: dict = {}
        self._object_box: Optional[np.ndarray] = None

    def reset(self) -> None:
        self._tracked = {}
        self._object_box = None

    def _box(self, uv_image: np.ndarray) -> np.ndarray:
        return crop_lib.box_around_keypoints([uv_image], self.config.crop_margin, self.config.min_crop_size_px)

    def _hand_box(self, hand: HandEstimate, camera: CameraIntrinsics) -> np.ndarray:
        """Square box around a placed hand's keypoints, at least crop_margin x HAND_EXTENT_M at its wrist depth."""
        box = self._box(hand.joints_uv)
        z = float(hand.joints_xyz[0, 2])
        if np.isfinite(z) and z > 0:
            side = max(float(box[2]), self.config.crop_margin * HAND_EXTENT_M * float(camera.matrix[0, 0]) / z)
            cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
            box = np.array([cx - side / 2, cy - side / 2, side, side])
        return box

    def _run_crop(self, image, camera, box, origin, watch, side: str = ""):
        crop = crop_lib.make_crop(box, camera, self.size, origin)
        with watch.stage("preprocess"):
            pixels = warp_image(image, crop.affine, self.size)
            inputs = self.adapter.preprocess_hand(pixels, side) if side else self.adapter.preprocess(pixels)
        with watch.stage("inference"):
            outputs = self.run(inputs)
        return crop, outputs

    def estimate(self, image: np.ndarray, camera: CameraIntrinsics, depth_m: Optional[np.ndarray], watch,
                 hand_boxes: Optional[dict] = None, roi_box: Optional[np.ndarray] = None,
                 box_origin: str = crop_lib.FROM_ROI) -> tuple[list, list, str]:
        """(hands: list[HandEstimate] right first, objects: list[ObjectEstimate], crop origin) for one frame.

        hand_boxes: side -> (box, presence) when the hands' boxes are known (origin `box_origin`); else
        the coarse pass runs on `roi_box` (or the whole frame when None)."""
        height, width = image.shape[:2]
        c = self.config
        coarse_object = None
        look_for_object = True
        origin = box_origin
        from_coarse: dict = {}
        if hand_boxes is None:
            with watch.stage("coarse_pass"):
                frame_box = roi_box if roi_box is not None else crop_lib.full_frame_box(width, height)
                frame_origin = crop_lib.FROM_ROI if roi_box is not None else crop_lib.FROM_FULL_FRAME
                crop, outputs = self._run_crop(image, camera, frame_box, frame_origin, watch)
                coarse = self.adapter.parse(outputs)
                to_image = invert_affine(crop.affine)
                placed, _ = lift_prediction(coarse, crop, camera, depth_m, c, "", (width, height))
                hand_boxes = {}
                for hand in placed:
                    if hand.confidence < c.presence_threshold:
                        self._tracked.pop(hand.side, None)
                        continue
                    box = self._tracked.get(hand.side)
                    from_coarse[hand.side] = box is None
                    hand_boxes[hand.side] = (box if box is not None else self._hand_box(hand, camera),
                                             hand.confidence)
                points = self.adapter.parse_object(outputs, whole_frame=True)
                look_for_object = points.presence >= MIN_OBJECT_PRESENCE
                if look_for_object:
                    coarse_object = self._box(apply_affine(points.uv, to_image))
                else:
                    self._object_box = None
            origin = crop_lib.FROM_TRACKING if self._tracked else frame_origin
        hands = []
        for side in (s for s in self.adapter.sides if s in hand_boxes):
            box, presence = hand_boxes[side]
            # A box from the coarse pass is refined once: a second crop around the first crop's hand.
            for _ in range(2 if from_coarse.get(side) else 1):
                crop, outputs = self._run_crop(image, camera, np.asarray(box, np.float64), origin, watch, side)
                with watch.stage("postprocess"):
                    hand = self.adapter.parse_hand(outputs, side, presence)
                with watch.stage("root_depth"):
                    lifted, _ = lift_prediction(CropPrediction(hands=[hand]), crop, camera, depth_m, c, "",
                                                (width, height))
                box = self._hand_box(lifted[0], camera)
            hands += lifted
        self._tracked = {h.side: self._hand_box(h, camera) for h in hands if h.present}
        objects = self._estimate_object(image, camera, watch, hands, coarse_object, roi_box) if look_for_object else []
        return hands, objects, origin

    def _estimate_object(self, image, camera, watch, hands: list[HandEstimate], coarse_box, roi_box) -> list:
        """The object crop(s) and PnP; [] when no pose is found."""
        box, passes = self._object_box, 1
        if box is None:
            box = coarse_box
        if box is None:  # from the hands (or the ROI): a wide first crop, then one around its answer
            present = [h.joints_uv for h in hands if h.present]
            if present:
                box = crop_lib.box_around_keypoints(present, self.config.crop_margin, self.config.min_crop_size_px)
            elif roi_box is not None:
                box = roi_box
            else:
                return []
            passes = 2
        for _ in range(passes):
            crop, outputs = self._run_crop(image, camera, np.asarray(box, np.float64), crop_lib.FROM_TRACKING, watch)
            with watch.stage("postprocess"):
                points = self.adapter.parse_object(outputs)
                uv_image = apply_affine(points.uv, invert_affine(crop.affine))
            box = self._box(uv_image)
        with watch.stage("postprocess"):
            pose = self.adapter.object_pose(camera.undistort_pixels(uv_image), camera.matrix, points.object_id,
                                            points.confidence)
        confidence = float(np.max(points.class_probs) * np.mean(points.confidence))
        if pose is None or not self.config.depth_min_m <= pose[1][2] <= self.config.depth_max_m \
                or confidence < MIN_OBJECT_CONFIDENCE:
            self._object_box = None
            return []
        self._object_box = box
        return [ObjectEstimate(object_id=points.object_id, confidence=confidence, rotation=pose[0],
                               translation=pose[1])]
