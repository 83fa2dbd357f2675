"""Debug overlay: draws where the keypoints and object axes are, never modifies the input, survives odd values."""
import numpy as np

from hand_object_pose.ros.overlay import draw_overlay
from node_test_estimates import estimate

K = np.array([[300.0, 0.0, 160.0], [0.0, 300.0, 120.0], [0.0, 0.0, 1.0]])


def test_overlay_draws_keypoints_and_object_axes():
    image = np.zeros((240, 320, 3), np.uint8)
    est = estimate(objects=("mug",))
    canvas = draw_overlay(image, est, K)
    assert not image.any()                                  # the input is untouched
    u, v = np.round(est.hands[0].joints_uv[0]).astype(int)
    assert canvas[v, u].any()                               # the wrist keypoint is drawn
    t = est.objects[0].translation
    u, v = np.round((K @ t)[:2] / t[2]).astype(int)         # the object origin projects into the image
    assert canvas[v - 2:v + 3, u - 2:u + 3].any()
    assert canvas[0:5, 300:].sum() == 0                      # far from everything: untouched


def test_overlay_tolerates_nan_far_and_behind_camera_values():
    est = estimate(objects=("mug",))
    est.hands[0].joints_uv[3] = np.nan
    est.hands[1].joints_uv[:] = 1e12
    est.objects[0].translation = np.array([0.0, 0.0, -1.0])
    canvas = draw_overlay(np.zeros((240, 320, 3), np.uint8), est, K)
    assert canvas.shape == (240, 320, 3)
