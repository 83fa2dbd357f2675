"""Anchors, decoding, weighted NMS, rotated ROIs and the handedness correction, on constructed data."""
from __future__ import annotations

import numpy as np
import pytest

from hand_object_pose.inference.hand_detection.anchors import palm_anchors
from hand_object_pose.inference.hand_detection.landmarks import handedness_to_right_score
from hand_object_pose.inference.hand_detection.palm import PalmDetector, decode, letterbox_matrix, weighted_nms
from hand_object_pose.inference.hand_detection.roi import (HandRoi, roi_from_landmarks, roi_from_palm,
                                                           upright_rotation)


def test_anchors_count_and_order():
    anchors = palm_anchors()
    assert anchors.shape == (2016, 2)
    # Stride 8: 24 x 24 cells, 2 anchors each, row by row; then stride 16: 12 x 12 cells, 6 each.
    np.testing.assert_allclose(anchors[0], [0.5 / 24, 0.5 / 24])
    np.testing.assert_allclose(anchors[2], [1.5 / 24, 0.5 / 24])
    np.testing.assert_allclose(anchors[2 * 24], [0.5 / 24, 1.5 / 24])
    np.testing.assert_allclose(anchors[1152:1158], [[0.5 / 12, 0.5 / 12]] * 6)
    np.testing.assert_allclose(anchors[1158], [1.5 / 12, 0.5 / 12])


def _raw_for(anchors, index, centre_px, size_px, keypoints_px, logit=3.0):
    raw_boxes = np.zeros((len(anchors), 18), np.float32)
    raw_scores = np.full(len(anchors), -10.0, np.float32)
    anchor_px = anchors[index] * 192
    raw_boxes[index, 0:2] = np.asarray(centre_px) - anchor_px
    raw_boxes[index, 2:4] = size_px
    raw_boxes[index, 4:] = (np.asarray(keypoints_px) - anchor_px).reshape(-1)
    raw_scores[index] = logit
    return raw_boxes, raw_scores


def test_decode_and_weighted_nms():
    anchors = palm_anchors()
    kps = np.tile([[100.0, 120.0]], (7, 1))
    boxes_a, scores_a = _raw_for(anchors, 500, (100, 100), (40, 40), kps, logit=2.0)
    boxes_b, scores_b = _raw_for(anchors, 501, (104, 100), (40, 40), kps + 4, logit=1.0)
    boxes_a[501], scores_a[501] = boxes_b[501], scores_b[501]
    scores, boxes, keypoints = decode(boxes_a, scores_a, anchors, 192, 0.5)
    assert len(scores) == 2
    np.testing.assert_allclose(sorted(scores), sorted([1 / (1 + np.exp(-2.0)), 1 / (1 + np.exp(-1.0))]), rtol=1e-6)
    merged = weighted_nms(scores, boxes, keypoints, 0.3)
    assert len(merged) == 1
    score, box, kp = merged[0]
    w = np.array([1 / (1 + np.exp(-2.0)), 1 / (1 + np.exp(-1.0))])
    w /= w.sum()
    assert score == pytest.approx(1 / (1 + np.exp(-2.0)))
    np.testing.assert_allclose(box, [80 + 4 * w[1], 80, 120 + 4 * w[1], 120], atol=1e-4)
    np.testing.assert_allclose(kp[0], [100 + 4 * w[1], 120 + 4 * w[1]], atol=1e-4)
    # Far apart: two detections, best first.
    far_boxes, far_scores = _raw_for(anchors, 1500, (30, 160), (30, 30), kps, logit=1.0)
    boxes_a[501], scores_a[501] = far_boxes[1500], -10.0
    boxes_a[1500], scores_a[1500] = far_boxes[1500], far_scores[1500]
    scores, boxes, keypoints = decode(boxes_a, scores_a, anchors, 192, 0.5)
    assert len(weighted_nms(scores, boxes, keypoints, 0.3)) == 2
    assert len(weighted_nms(scores, boxes, keypoints, 0.3, max_detections=1)) == 1


def test_palm_detector_maps_back_through_the_letterbox():
    anchors = palm_anchors()
    # A 640 x 480 image: scale 0.3, 24 px of padding above and below in the 192 input.
    kps = np.array([[96.0, 120.0], [80, 80], [96, 76], [110, 80], [120, 86], [70, 100], [66, 90]])
    raw_boxes, raw_scores = _raw_for(anchors, 700, (96, 96), (60, 60), kps)
    detector = PalmDetector(lambda feeds: {"raw_boxes": raw_boxes[None], "raw_scores": raw_scores[None, :, None]})
    (palm,) = detector.detect(np.zeros((480, 640, 3), np.uint8))
    matrix = letterbox_matrix(640, 480, 192)
    assert matrix[0, 0] == pytest.approx(0.3) and matrix[1, 2] == pytest.approx(24.0)
    np.testing.assert_allclose(palm.box_px, [(66 - 0) / 0.3, (66 - 24) / 0.3, 126 / 0.3, (126 - 24) / 0.3], atol=1e-3)
    np.testing.assert_allclose(palm.keypoints_px[0], [96 / 0.3, (120 - 24) / 0.3], atol=1e-3)


def test_roi_from_an_upright_palm():
    box = np.array([100.0, 200.0, 160.0, 260.0])
    kps = np.zeros((7, 2))
    kps[0], kps[2] = (130, 255), (130, 205)   # wrist below the middle finger's base
    roi = roi_from_palm(box, kps)
    assert roi.rotation == pytest.approx(0.0)
    np.testing.assert_allclose(roi.center_px, [130, 230 - 30])     # shifted up by half the box height
    assert roi.size_px == pytest.approx(60 * 2.6)


@pytest.mark.parametrize("angle_deg", [0.0, 35.0, 90.0, -120.0, 180.0])
def test_roi_rotation_turns_the_hand_upright(angle_deg):
    # Hand pointing along `direction` in the image: the crop must show it pointing up.
    a = np.radians(angle_deg)
    direction = np.array([np.sin(a), -np.cos(a)])          # angle 0: up
    rotation = upright_rotation(np.zeros(2), direction)
    roi = HandRoi(center_px=np.array([50.0, 60.0]), size_px=100.0, rotation=rotation)
    crop_up = roi.rotate_to_image_axes(np.array([[0.0, -1.0]]))[0]
    np.testing.assert_allclose(crop_up, direction, atol=1e-9)
    assert rotation == pytest.approx(a if abs(angle_deg) != 180 else np.pi * np.sign(rotation))


def test_roi_crop_and_back():
    roi = HandRoi(center_px=np.array([60.0, 50.0]), size_px=40.0, rotation=np.radians(30))
    points = np.array([[0.0, 0.0], [112, 112], [224, 0], [30, 200]])
    image_points = roi.to_image(points, 224)
    np.testing.assert_allclose(image_points[1], roi.center_px)
    np.testing.assert_allclose(roi.corners_px()[0], image_points[0])
    np.testing.assert_allclose(roi.corners_px()[1], image_points[2])
    # The crop of a single bright pixel lands where to_image says.
    image = np.zeros((120, 120, 3), np.uint8)
    u, v = 150, 60
    x, y = np.round(roi.to_image(np.array([[u, v]]), 224)[0]).astype(int)
    image[y - 1:y + 2, x - 1:x + 2] = 255
    crop = roi.crop(image, 224)
    weights = crop[:, :, 0].astype(np.float64)
    vv, uu = np.mgrid[0:224, 0:224]
    centroid = np.array([(weights * uu).sum(), (weights * vv).sum()]) / weights.sum()
    np.testing.assert_allclose(centroid, [u, v], atol=4.0)  # 1 image px = 5.6 crop px


def test_roi_from_landmarks_follows_the_hand():
    # A hand pointing right: wrist at (100, 100), the finger bases 60 px further right.
    lm = np.zeros((21, 2))
    lm[:, 0], lm[:, 1] = 100.0, 100.0
    for j, dy in ((5, -20), (9, 0), (13, 15), (17, 28)):
        lm[j] = (160, 100 + dy)
        lm[j + 1] = (180, 100 + dy)
    lm[1:4] = [(120, 80), (130, 70), (140, 65)]
    roi = roi_from_landmarks(lm)
    assert roi.rotation == pytest.approx(np.pi / 2, abs=0.05)
    assert roi.center_px[0] > 130  # shifted towards the fingers
    assert 100 < roi.size_px < 200


def test_handedness_correction():
    # MediaPipe's "Left" score (its labels assume a mirrored image) is a right hand on an ordinary camera.
    assert handedness_to_right_score(0.9, mirrored=False) == pytest.approx(0.9)
    assert handedness_to_right_score(0.9, mirrored=True) == pytest.approx(0.1)


def _upright_hand_in_crop() -> np.ndarray:
    """(21, 3) landmarks of an upright open hand in 224-px crop coordinates (wrist at the bottom)."""
    lm = np.zeros((21, 3))
    lm[0, :2] = (112, 180)
    for finger, x in enumerate((70, 95, 112, 129, 146)):
        for k in range(4):
            lm[1 + 4 * finger + k, :2] = (x, 140 - 18 * k if finger else 165 - 15 * k)
    return lm


@pytest.mark.parametrize("memory,expected", [(10, ["right"] * 6), (1, ["right", "left"] * 3)])
def test_a_tracked_hand_keeps_its_side(memory, expected):
    from hand_object_pose.inference.hand_detection import HandDetector, HandDetectorConfig

    anchors = palm_anchors()
    kps = np.array([[96.0, 120.0], [80, 80], [96, 76], [110, 80], [120, 86], [70, 100], [66, 90]])
    raw_boxes, raw_scores = _raw_for(anchors, 700, (96, 96), (60, 60), kps)
    handedness = iter([0.8, 0.4] * 3)   # MediaPipe's "Left" score: a right hand on an ordinary camera

    def landmark_run(feeds):
        return {"landmarks": _upright_hand_in_crop().reshape(1, 63), "presence": np.array([[0.9]]),
                "handedness": np.array([[next(handedness)]]), "world_landmarks": np.zeros((1, 63))}

    detector = HandDetector(lambda feeds: {"raw_boxes": raw_boxes[None], "raw_scores": raw_scores[None, :, None]},
                            landmark_run, HandDetectorConfig(max_hands=1, side_memory=memory))
    sides = [detector.process(np.zeros((192, 192, 3), np.uint8)).hands[0].side for _ in range(6)]
    assert sides == expected
    assert detector.stats.detector_runs == 1   # tracked after the first frame
