"""hand_heatmap adapter: one network, three crop kinds (see models/hand_heatmap/inference_graph.py).

- whole-frame crop (the coarse pass, `parse`): both hands' 2D keypoints + relative depths and their
  presence, the object's 9 points, its presence and class;
- hand crop (`preprocess_hand` / `parse_hand`): one hand; a left hand's crop is mirrored before the
  network and its keypoints mirrored back (u -> S - 1 - u), relative depths unchanged;
- object crop (`parse_object`): the object's 8 box corners + centre, their log heat-maps and its class,
  posed against the class's box (models.hand_heatmap.config.SYNTHETIC_OBJECT_BOXES) by the heat-map search
  of inference/object_heatmap_pose.py.

All keypoints are crop pixels (pixel centres at integers); depths in metres relative to the group's
root (the wrist, the object centre). The Estimator runs this family once per crop
(`ModelFamily.per_hand_crops`, inference/per_hand.py).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Optional

import numpy as np

from hand_object_pose.geometry.procedural_objects import PROCEDURAL_OBJECTS, procedural_object
from hand_object_pose.inference.object_depth_fit import sample_surface, start_turns
from hand_object_pose.inference.object_heatmap_pose import HeatmapPose, heatmap_pose
from hand_object_pose.inference.result import HAND_SIDES
from hand_object_pose.models.hand_heatmap.config import FRAME_CHANNELS, HAND_CHANNELS, NUM_HAND_JOINTS, \
    OBJECT_CHANNELS, SEGMENTATION_OUTPUT, SYNTHETIC_OBJECT_BOXES

from . import adapter_for
from .base import CropPrediction, HandInCrop, ModelAdapter, crop_to_input


@dataclass
class ObjectPoints:
    """The object as one crop sees it: uv (9, 2) crop px (8 box corners, centre), rel_depth (9,) metres
    minus the centre's, confidence (9,), class_probs (C,) over config.object_ids, presence in [0, 1]
    (1.0 for an object crop, which assumes the object is there); log_heatmap (9, H, H): the object crop's
    log heat-maps of the 9 points (None for a whole-frame crop); segmentation (1 + C, H, H): the object crop's
    per-cell probabilities [background, each class] (None for a whole-frame crop or a network without that
    head)."""

    uv: np.ndarray
    rel_depth: np.ndarray
    confidence: np.ndarray
    class_probs: np.ndarray
    presence: float

    @property
    def object_id(self) -> str:
        return self.ids[int(np.argmax(self.class_probs))]

    ids: tuple = ()
    log_heatmap: Optional[np.ndarray] = None
    segmentation: Optional[np.ndarray] = None


@adapter_for("hand_heatmap")
class HandHeatmapAdapter(ModelAdapter):
    """Reads the hand_heatmap graph's outputs for each crop kind."""

    sides = HAND_SIDES
    predicts_object = True
    per_hand_crops = True

    def preprocess_hand(self, crop_rgb: np.ndarray, side: str) -> dict:
        """(S, S, 3) uint8 crop around one hand -> inputs; a left hand is mirrored (the network sees right hands)."""
        image = crop_rgb[:, ::-1] if side == "left" else crop_rgb
        return {"image": crop_to_input(image)}

    def _hand(self, outputs: dict, channels: slice, side: str, presence: float, mirrored: bool) -> HandInCrop:
        uv = np.asarray(outputs["points_uv"][0, channels], np.float64).copy()
        if mirrored:
            uv[:, 0] = self.input_size - 1.0 - uv[:, 0]
        return HandInCrop(side=side, presence=float(presence), uv_crop=uv,
                          joint_confidence=np.asarray(outputs["points_confidence"][0, channels], np.float64).copy(),
                          rel_depth=np.asarray(outputs["points_rel_depth"][0, channels], np.float64).copy())

    def parse_hand(self, outputs: dict, side: str, presence: float = 1.0) -> HandInCrop:
        """Outputs of a hand crop (made with `preprocess_hand`) -> that hand, keypoints in the unmirrored crop."""
        return self._hand(outputs, HAND_CHANNELS, side, presence, side == "left")

    def right_hand_probability(self, outputs: dict) -> float:
        """The right-hand presence of a hand crop (made with `preprocess_hand`): the probability that the crop, as
        the network saw it (mirrored for a left hand), shows a right hand. Meaningful only for a network trained
        for handedness (training option `side_crops`); the presence of other networks is trained on whole
        frames only."""
        return float(outputs["presence"][0, 0])

    def parse(self, outputs: dict) -> CropPrediction:
        """Outputs of a whole-frame crop (the coarse pass) -> both hands with their presence (no object: its
        pose needs an object crop: `parse_object` + `object_pose`)."""
        presence = np.asarray(outputs["presence"][0], np.float64)
        first = FRAME_CHANNELS.start
        hands = [self._hand(outputs, slice(first + h * NUM_HAND_JOINTS, first + (h + 1) * NUM_HAND_JOINTS), side,
                            presence[h], False) for h, side in enumerate(HAND_SIDES)]
        return CropPrediction(hands=hands)

    def parse_object(self, outputs: dict, whole_frame: bool = False) -> ObjectPoints:
        """The object's points from an object crop, or from a whole-frame crop (`whole_frame`, with its presence)."""
        channels = slice(FRAME_CHANNELS.stop - 9, FRAME_CHANNELS.stop) if whole_frame else OBJECT_CHANNELS
        return ObjectPoints(np.asarray(outputs["points_uv"][0, channels], np.float64).copy(),
                            np.asarray(outputs["points_rel_depth"][0, channels], np.float64).copy(),
                            np.asarray(outputs["points_confidence"][0, channels], np.float64).copy(),
                            np.asarray(outputs["object_class"][0], np.float64).copy(),
                            float(outputs["presence"][0, 2]) if whole_frame else 1.0,
                            tuple(self.config.object_ids),
                            None if whole_frame else np.asarray(outputs["object_heatmap"][0], np.float64).copy(),
                            None if whole_frame or SEGMENTATION_OUTPUT not in outputs
                            else np.asarray(outputs[SEGMENTATION_OUTPUT][0], np.float64).copy())

    def object_surface(self, object_id: str) -> Optional[tuple]:
        """The fit's surface and starts of one of the network's objects (`synthetic_object_surface`)."""
        return synthetic_object_surface(object_id)

    def object_pose(self, points: ObjectPoints, affine: np.ndarray, camera, centre_uv: np.ndarray,
                    surface_depth: Optional[float]) -> Optional[HeatmapPose]:
        """The pose of an object crop's object (`heatmap_pose` against its class's box): affine (2, 3) raw image
        px -> crop px, centre_uv (2,) its centre point in the raw image, surface_depth the depth image's depth
        there (metres) or None. None for an object the network was not trained on (or no heat-maps)."""
        model = object_model_points(points.object_id)
        if model is None or points.log_heatmap is None:
            return None
        return heatmap_pose(points.log_heatmap, affine, camera, model, centre_uv, surface_depth, self.input_size)


@functools.lru_cache(maxsize=None)
def synthetic_object_surface(object_id: str) -> Optional[tuple]:
    """(SurfaceSamples, start turns (M, 3, 3)) of an object the network was trained on, for the fit to a depth
    image (inference/object_depth_fit.py); None for any other id. The network knows only the synthetic
    generator's procedural objects (geometry.procedural_objects), so their meshes are part of its definition, as
    their boxes are."""
    if object_id not in SYNTHETIC_OBJECT_BOXES or object_id not in PROCEDURAL_OBJECTS:
        return None
    vertices, faces, symmetry = procedural_object(object_id)
    return sample_surface(vertices, faces), start_turns(symmetry)


def object_model_points(object_id: str) -> Optional[np.ndarray]:
    """(9, 3) points of an object's box in its own frame (8 corners in corners_rest order, then their
    centre), metres; None for an object the network was not trained on."""
    box = SYNTHETIC_OBJECT_BOXES.get(object_id)
    if box is None:
        return None
    lo, hi = np.asarray(box[0], np.float64), np.asarray(box[1], np.float64)
    corners = np.array([[(lo, hi)[i][0], (lo, hi)[j][1], (lo, hi)[k][2]] for i in (0, 1) for j in (0, 1)
                        for k in (0, 1)])
    return np.concatenate([corners, corners.mean(axis=0, keepdims=True)])
