"""Rendered, the stand-in hand must look like a hand: separate fingers and an opposed thumb.

The flat right hand is rendered palm towards the camera, fingers up (model +y -> image up, model +z ->
towards the camera, so the thumb, at model +x, appears on the image's right).
"""
import cv2
import numpy as np
import pytest
import torch

from hand_object_pose.geometry.mano import ManoLayer
from hand_object_pose.synthetic.raster import render_mesh
from hand_object_pose.geometry.hand_model_files import standin_hand_path
from hand_object_pose.synthetic.standin_hand import flexion_axes

SIZE = 256
K = np.array([[560.0, 0.0, 127.5], [0.0, 560.0, 127.5], [0.0, 0.0, 1.0]])
TO_CAMERA = np.diag([1.0, -1.0, -1.0])
CENTRE = np.array([0.025, 0.085, 0.0])
DISTANCE = 0.45


def to_camera(points):
    return (np.asarray(points, dtype=np.float64) - CENTRE) @ TO_CAMERA.T + [0.0, 0.0, DISTANCE]


def project(points):
    p = to_camera(points)
    return np.stack([K[0, 0] * p[..., 0] / p[..., 2] + K[0, 2], K[1, 1] * p[..., 1] / p[..., 2] + K[1, 2]], -1)


def runs(row: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) column ranges of consecutive True pixels."""
    padded = np.concatenate([[False], row, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2], edges[1::2]))


@pytest.fixture(scope="module")
def layer():
    return ManoLayer(standin_hand_path("right"))


@pytest.fixture(scope="module")
def flat(layer):
    out = layer(torch.zeros(1, 3), torch.zeros(1, 45))
    vertices = out.vertices[0].double().numpy()
    joints = out.joints[0].double().numpy()
    image = render_mesh(to_camera(vertices), layer.faces, K, (SIZE, SIZE))
    return image, joints


def test_four_separate_fingers_above_the_knuckles(flat):
    image, joints = flat
    mask = image.mask.numpy()
    # Canonical ids: index 5-8, middle 9-12, ring 13-16, pinky 17-20 (base -> tip).
    fingers = {"index": 5, "middle": 9, "ring": 13, "pinky": 17}
    # A row between the knuckles and the shortest fingertip, through the fingers' middle segments.
    level = 0.5 * (max(joints[b, 1] for b in fingers.values()) + joints[20, 1])
    row = int(round(project([0.0, level, 0.0])[1]))
    spans = runs(mask[row])
    assert len(spans) == 4, spans
    # One finger per run, thumb side (index) on the right.
    for (start, stop), base in zip(reversed(spans), fingers.values()):
        knuckle, tip = joints[base], joints[base + 3]  # a straight finger: its axis at this level
        point = knuckle + (tip - knuckle) * (level - knuckle[1]) / (tip[1] - knuckle[1])
        assert start <= project(point)[0] < stop
        assert 8 <= stop - start <= 30  # finger widths of 1-2 cm at ~1.2 px/mm
    # Above the knuckles the silhouette falls apart into exactly the four fingers.
    top = mask.copy()
    knuckle_row = int(project([0.0, max(joints[b, 1] for b in fingers.values()) + 0.012, 0.0])[1])
    top[knuckle_row:] = False
    count, _ = cv2.connectedComponents(top.astype(np.uint8), connectivity=4)
    assert count - 1 == 4


def test_thumb_is_off_to_the_side_and_opposed(flat):
    image, joints = flat
    mask, depth = image.mask.numpy(), image.depth.numpy()
    thumb_ip = project(joints[3])
    spans = runs(mask[int(round(thumb_ip[1]))])
    assert len(spans) == 2, spans  # palm, then the thumb separated from it on the index side
    assert spans[1][0] <= thumb_ip[0] < spans[1][1]
    assert spans[1][0] - spans[0][1] >= 5  # a visible gap between thumb and palm
    # Opposed: the thumb stands out of the palm plane towards the camera (palm side).
    tip_u, tip_v = np.round(project(joints[4])).astype(int)
    palm_u, palm_v = np.round(project(0.5 * (joints[0] + joints[9]))).astype(int)
    assert depth[palm_v, palm_u] - depth[tip_v - 2:tip_v + 3, tip_u - 2:tip_u + 3].max() > 0.02


def test_silhouette_area_ratios_are_hand_like(flat):
    image, joints = flat
    mask = image.mask.numpy()
    rows, cols = np.nonzero(mask)
    box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
    assert 0.35 < mask.sum() / box < 0.65  # a hand with spread fingers fills about half its box
    knuckle_row = int(project([0.0, joints[[5, 9, 13, 17], 1].max(), 0.0])[1])
    finger_share = mask[:knuckle_row].sum() / mask.sum()
    assert 0.2 < finger_share < 0.5
    # Height:width of the bounding box of a spread hand with an abducted thumb.
    assert 1.0 < (rows.max() - rows.min()) / (cols.max() - cols.min()) < 1.6


def test_a_fist_has_a_much_smaller_silhouette(layer, flat):
    axes = flexion_axes()
    pose = torch.zeros(1, 15, 3)
    for name, joints in (("index", (1, 2, 3)), ("middle", (4, 5, 6)), ("ring", (10, 11, 12)),
                         ("pinky", (7, 8, 9)), ("thumb", (13, 14, 15))):
        for j, angle in zip(joints, (1.4, 1.7, 1.1) if name != "thumb" else (0.6, 0.8, 0.8)):
            pose[0, j - 1] = torch.tensor(axes[name]) * angle
    fist = layer(torch.zeros(1, 3), pose.view(1, 45)).vertices[0].double().numpy()
    area = render_mesh(to_camera(fist), layer.faces, K, (SIZE, SIZE)).mask.sum().item()
    assert area < 0.75 * flat[0].mask.sum().item()
