"""Palm detection: letterboxed input, anchor decoding, score threshold and weighted NMS.

The palm detector (192 x 192 RGB in [0, 1], NHWC) outputs per anchor 18 raw values: the box centre
offset (x, y) and size (w, h), then 7 palm keypoints (x, y), all in input pixels relative to the
anchor centre, and one score logit. Decoding follows the detector's published graph: divide by the
input size, add the anchor centre, sigmoid of the clipped logit, keep scores >= `min_score`, then
weighted non-maximum suppression (overlapping boxes are averaged, weighted by score).

Keypoints: 0 wrist centre, 1 index finger base, 2 middle finger base, 3 ring finger base,
4 pinky base, 5 thumb base, 6 thumb's second joint (the palm's outline).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .anchors import PALM_INPUT_SIZE, palm_anchors

NUM_PALM_KEYPOINTS = 7
SCORE_CLIP = 100.0


@dataclass(frozen=True)
class PalmDetection:
    score: float               # in [0, 1]
    box_px: np.ndarray         # (4,) x0, y0, x1, y1, full-image pixels
    keypoints_px: np.ndarray   # (7, 2) full-image pixels


def letterbox_matrix(width: int, height: int, size: int) -> np.ndarray:
    """(2, 3) affine: full-image pixels -> the square `size` input, aspect kept, centred, zero padding."""
    scale = size / max(width, height)
    return np.array([[scale, 0.0, 0.5 * (size - width * scale)], [0.0, scale, 0.5 * (size - height * scale)]])


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """((1, size, size, 3) float32 in [0, 1], (2, 3) image -> input affine) from (H, W, 3) uint8 RGB."""
    height, width = image.shape[:2]
    matrix = letterbox_matrix(width, height, size)
    warped = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return (warped.astype(np.float32) * np.float32(1.0 / 255.0))[None], matrix


def decode(raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray, input_size: int,
           min_score: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode the detector's raw outputs.

    Args:
      raw_boxes: (N, 18) per anchor; raw_scores: (N,) logits; anchors: (N, 2) centres in [0, 1].
    Returns:
      scores (M,), boxes (M, 4) x0, y0, x1, y1 and keypoints (M, 7, 2), both in input pixels, for the
      M anchors whose score is >= min_score.
    """
    scores = 1.0 / (1.0 + np.exp(-np.clip(raw_scores.astype(np.float64), -SCORE_CLIP, SCORE_CLIP)))
    keep = np.flatnonzero(scores >= min_score)
    if keep.size == 0:
        return np.zeros(0), np.zeros((0, 4)), np.zeros((0, NUM_PALM_KEYPOINTS, 2))
    raw = raw_boxes[keep].astype(np.float64)
    centre_anchor = anchors[keep].astype(np.float64) * input_size  # input pixels
    centre = raw[:, 0:2] + centre_anchor
    half = 0.5 * raw[:, 2:4]
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    keypoints = raw[:, 4:4 + 2 * NUM_PALM_KEYPOINTS].reshape(-1, NUM_PALM_KEYPOINTS, 2) + centre_anchor[:, None, :]
    return scores[keep], boxes, keypoints


def _iou_one_to_many(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    ix = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    iy = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = ix * iy
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def weighted_nms(scores: np.ndarray, boxes: np.ndarray, keypoints: np.ndarray, iou_threshold: float,
                 max_detections: int = 0) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """Weighted non-maximum suppression.

    Repeatedly takes the best remaining box and every remaining box overlapping it by more than
    `iou_threshold` (IoU); the cluster becomes one detection with the best score and the
    score-weighted mean of the cluster's boxes and keypoints. Returns [(score, box (4,), keypoints
    (7, 2))], best first; at most `max_detections` when > 0.
    """
    order = np.argsort(-scores, kind="stable")
    remaining = order
    results = []
    while remaining.size:
        best = remaining[0]
        overlap = _iou_one_to_many(boxes[best], boxes[remaining])
        cluster = remaining[overlap > iou_threshold]
        cluster = cluster if cluster.size else remaining[:1]
        weights = scores[cluster] / scores[cluster].sum()
        results.append((float(scores[best]), weights @ boxes[cluster],
                        np.einsum("k,kij->ij", weights, keypoints[cluster])))
        remaining = remaining[overlap <= iou_threshold]
        remaining = remaining[remaining != best]
        if max_detections and len(results) >= max_detections:
            break
    return results


class PalmDetector:
    """Runs the palm detector network on full images.

    `run` is any callable taking {"image": (1, 192, 192, 3) float32} and returning a dict with
    "raw_boxes" (1, 2016, 18) and "raw_scores" (1, 2016, 1) (e.g. `OnnxRuntimeBackend.run`)."""

    def __init__(self, run, min_score: float = 0.5, iou_threshold: float = 0.3,
                 input_size: int = PALM_INPUT_SIZE):
        self.run = run
        self.min_score = float(min_score)
        self.iou_threshold = float(iou_threshold)
        self.input_size = int(input_size)
        self.anchors = palm_anchors(self.input_size)

    def detect(self, image: np.ndarray, max_detections: int = 0) -> list[PalmDetection]:
        """Palms in an (H, W, 3) uint8 RGB image, best first, in full-image pixels."""
        tensor, matrix = letterbox(image, self.input_size)
        outputs = self.run({"image": tensor})
        raw_boxes = np.asarray(outputs["raw_boxes"]).reshape(-1, 4 + 2 * NUM_PALM_KEYPOINTS)
        raw_scores = np.asarray(outputs["raw_scores"]).reshape(-1)
        if raw_boxes.shape[0] != self.anchors.shape[0]:
            raise ValueError(f"palm detector gave {raw_boxes.shape[0]} boxes for {self.anchors.shape[0]} anchors")
        scores, boxes, keypoints = decode(raw_boxes, raw_scores, self.anchors, self.input_size, self.min_score)
        scale, offset = matrix[0, 0], matrix[:, 2]
        detections = []
        for score, box, kps in weighted_nms(scores, boxes, keypoints, self.iou_threshold, max_detections):
            detections.append(PalmDetection(score=score,
                                            box_px=(box.reshape(2, 2) - offset).reshape(4) / scale,
                                            keypoints_px=(kps - offset) / scale))
        return detections
