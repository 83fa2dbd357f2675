"""Camera model, distortion, boxes and crop/resize affines."""
import cv2
import numpy as np
import pytest
import torch

from hand_object_pose.geometry import camera as cam

# HO-3D-like 640x480 camera; realistic lenses: a webcam (plumb_bob) and an Azure-Kinect-like colour
# camera (rational_polynomial).
PINHOLE = cam.CameraIntrinsics(fx=614.6, fy=615.1, cx=321.3, cy=238.7, width=640, height=480)
PLUMB_BOB = (-0.28, 0.07, 1.2e-4, -2.3e-4, 0.0)
RATIONAL = (0.52, -2.6, 7e-4, -2e-4, 1.5, 0.39, -2.4, 1.42)


def hand_points(n=21, seed=0):
    """3D points (metres) spread over the view at 0.3-0.9 m."""
    rng = np.random.default_rng(seed)
    z = rng.uniform(0.3, 0.9, size=n)
    u, v = rng.uniform(20, 620, size=n), rng.uniform(20, 460, size=n)
    return np.stack([(u - PINHOLE.cx) / PINHOLE.fx * z, (v - PINHOLE.cy) / PINHOLE.fy * z, z], axis=-1)


def pixel_grid(width=640, height=480, step=40):
    v, u = np.mgrid[10:height - 9:step, 10:width - 9:step]
    return np.stack([u, v], axis=-1).astype(float)


def test_matrix_and_from_matrix():
    k = PINHOLE.matrix
    assert k.shape == (3, 3) and k[0, 0] == 614.6 and k[1, 2] == 238.7
    again = cam.CameraIntrinsics.from_matrix(k.ravel(), width=640, height=480)
    assert again == PINHOLE


def test_project_matches_opencv_and_backproject_inverts():
    points = hand_points()
    pixels = PINHOLE.project(points)
    expected, _ = cv2.projectPoints(points, np.zeros(3), np.zeros(3), PINHOLE.matrix, None)
    np.testing.assert_allclose(pixels, expected.reshape(-1, 2), atol=1e-9)
    np.testing.assert_allclose(PINHOLE.backproject(pixels, points[:, 2]), points, atol=1e-12)
    # batched leading dims and a scalar depth
    grid = pixel_grid()
    back = PINHOLE.backproject(grid, 0.5)
    assert back.shape == grid.shape[:-1] + (3,)
    np.testing.assert_allclose(back[..., 2], 0.5)
    np.testing.assert_allclose(PINHOLE.project(back), grid, atol=1e-9)


def test_principal_point_backprojects_onto_the_optical_axis():
    point = PINHOLE.backproject([PINHOLE.cx, PINHOLE.cy], 0.7)
    np.testing.assert_allclose(point, [0, 0, 0.7], atol=1e-15)
    # x right, y down: a point right of and below the axis lands right of and below the centre
    u, v = PINHOLE.project([0.1, 0.05, 1.0])
    assert u > PINHOLE.cx and v > PINHOLE.cy


def test_pinhole_functions_work_on_torch_with_gradients():
    points = torch.tensor(hand_points(), requires_grad=True)
    pixels = cam.pinhole_project(points, PINHOLE.fx, PINHOLE.fy, PINHOLE.cx, PINHOLE.cy)
    np.testing.assert_allclose(pixels.detach().numpy(), PINHOLE.project(points.detach().numpy()), atol=1e-9)
    pixels.sum().backward()
    assert torch.isfinite(points.grad).all()
    back = cam.pinhole_backproject(pixels, points[:, 2], PINHOLE.fx, PINHOLE.fy, PINHOLE.cx, PINHOLE.cy)
    assert torch.allclose(back, points, atol=1e-12)


def test_project_points_with_a_matrix_matches_the_intrinsics_and_keeps_skew():
    points = hand_points()
    np.testing.assert_allclose(cam.project_points(points, PINHOLE.matrix), PINHOLE.project(points), atol=1e-9)
    batch = np.stack([points, points + [0.0, 0.0, 0.2]])                       # (2, N, 3) -> (2, N, 2)
    assert cam.project_points(batch, PINHOLE.matrix).shape == batch.shape[:-1] + (2,)
    skewed = np.array([[500.0, 3.0, 320.0], [0.0, 510.0, 240.0], [0.0, 0.0, 1.0]])
    x, y, z = 0.1, -0.05, 0.5
    np.testing.assert_allclose(cam.project_points([x, y, z], skewed),
                               [500 * x / z + 3 * y / z + 320, 510 * y / z + 240], atol=1e-12)
    assert not np.isfinite(cam.project_points([0.1, 0.0, 0.0], skewed)).all()   # z = 0: no warning, inf


def test_depth_image_to_points():
    depth = np.full((48, 64), 0.8)
    depth[10, 20] = 0.0
    small = cam.CameraIntrinsics(60.0, 60.0, 31.5, 23.5)
    points = small.depth_image_to_points(depth)
    assert points.shape == (48, 64, 3)
    np.testing.assert_allclose(points[23, 40], [(40 - 31.5) / 60 * 0.8, (23 - 23.5) / 60 * 0.8, 0.8])
    np.testing.assert_array_equal(points[10, 20], [0, 0, 0])


@pytest.mark.parametrize("distortion", [PLUMB_BOB, RATIONAL], ids=["plumb_bob", "rational_polynomial"])
def test_undistort_distort_round_trip(distortion):
    lens = cam.CameraIntrinsics(614.6, 615.1, 321.3, 238.7, distortion)
    raw = pixel_grid()
    ideal = lens.undistort_pixels(raw)
    assert np.abs(ideal - raw).max() > 5.0  # the lens really distorts
    np.testing.assert_allclose(lens.distort_pixels(ideal), raw, atol=1e-6)
    # 3D: project applies distortion (as OpenCV does), backproject removes it
    points = hand_points()
    pixels = lens.project(points)
    expected, _ = cv2.projectPoints(points, np.zeros(3), np.zeros(3), lens.matrix, np.array(distortion))
    np.testing.assert_allclose(pixels, expected.reshape(-1, 2), atol=1e-9)
    np.testing.assert_allclose(lens.backproject(pixels, points[:, 2]), points, atol=1e-8)


def test_zero_distortion_is_a_no_op():
    zero = cam.CameraIntrinsics(614.6, 615.1, 321.3, 238.7, (0.0,) * 5)
    assert not zero.has_distortion
    grid = pixel_grid()
    np.testing.assert_array_equal(zero.undistort_pixels(grid), grid)
    np.testing.assert_array_equal(zero.distort_pixels(grid), grid)


def test_camera_info_raw_vs_rectified():
    k = [600.0, 0, 320.0, 0, 601.0, 240.0, 0, 0, 1]
    p = [590.0, 0, 322.0, 0, 0, 592.0, 238.0, 0, 0, 0, 1, 0]
    raw = cam.intrinsics_from_camera_info(k, PLUMB_BOB, p, "plumb_bob", 640, 480)
    assert (raw.fx, raw.cy, raw.distortion) == (600.0, 240.0, PLUMB_BOB) and raw.width == 640
    rect = cam.intrinsics_from_camera_info(k, PLUMB_BOB, p, "plumb_bob", 640, 480, rectified=True)
    assert (rect.fx, rect.fy, rect.cx, rect.cy) == (590.0, 592.0, 322.0, 238.0) and not rect.has_distortion
    rational = cam.intrinsics_from_camera_info(k, RATIONAL, p, "rational_polynomial")
    assert len(rational.distortion) == 8
    # an all-zero D of any model means no distortion
    assert not cam.intrinsics_from_camera_info(k, [0.0] * 4, None, "equidistant").has_distortion


@pytest.mark.parametrize("kwargs, message", [
    (dict(fx=0.0, fy=600.0, cx=320.0, cy=240.0), "focal lengths must be > 0"),
    (dict(fx=600.0, fy=-1.0, cx=320.0, cy=240.0), "focal lengths must be > 0"),
    (dict(fx=float("nan"), fy=600.0, cx=320.0, cy=240.0), "fx must be finite"),
    (dict(fx=600.0, fy=600.0, cx=320.0, cy=240.0, distortion=(0.1, 0.2, 0.3)), "distortion coefficients"),
])
def test_bad_intrinsics_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        cam.CameraIntrinsics(**kwargs)


def test_bad_camera_inputs_raise():
    with pytest.raises(ValueError, match="expected 3x3"):
        cam.CameraIntrinsics.from_matrix(np.eye(4))
    with pytest.raises(ValueError, match="fx, 0, cx"):
        cam.CameraIntrinsics.from_matrix([[600, 1, 320], [0, 600, 240], [0, 0, 1]])
    with pytest.raises(ValueError, match="focal lengths"):
        cam.CameraIntrinsics.from_matrix(np.zeros((3, 3)) + np.diag([0, 0, 1]))
    with pytest.raises(ValueError, match=r"points: expected shape \(\.\.\., 3\)"):
        PINHOLE.project(np.zeros((5, 2)))
    with pytest.raises(ValueError, match=r"pixels: expected shape \(\.\.\., 2\)"):
        PINHOLE.backproject(np.zeros((5, 3)), 1.0)
    with pytest.raises(ValueError, match="z <= 0"):
        PINHOLE.project([[0.0, 0.0, -0.5], [0.0, 0.0, 1.0]])
    with pytest.raises(ValueError, match="depth_image"):
        PINHOLE.depth_image_to_points(np.zeros((4, 4, 1)))
    with pytest.raises(ValueError, match="not supported"):
        cam.intrinsics_from_camera_info(np.eye(3), [0.1, 0.0, 0.0, 0.0], distortion_model="equidistant")
    with pytest.raises(ValueError, match="needs the 3x4"):
        cam.intrinsics_from_camera_info(np.eye(3), rectified=True)
    with pytest.raises(ValueError, match="baseline"):
        cam.intrinsics_from_camera_info(np.eye(3), p=[600, 0, 320, -36, 0, 600, 240, 0, 0, 0, 1, 0], rectified=True)


def test_square_box_is_official_process_bbox():
    box = cam.square_box([100.0, 50.0, 40.0, 80.0])
    np.testing.assert_allclose(box, [70.0, 40.0, 100.0, 100.0])  # centre (120, 90), side 80 * 1.25
    wide = cam.square_box([0.0, 0.0, 60.0, 20.0], enlarge=1.0)
    np.testing.assert_allclose(wide, [0.0, -20.0, 60.0, 60.0])


def test_box_around_points():
    points = np.array([[10.0, 20.0], [50.0, 40.0], [np.nan, np.nan]])
    np.testing.assert_allclose(cam.bounding_box(points), [10, 20, 40, 20])
    np.testing.assert_allclose(cam.bounding_box(points, margin=10), [0, 10, 60, 40])
    np.testing.assert_allclose(cam.box_around_points(points), [5, 5, 50, 50])
    with pytest.raises(ValueError, match="no finite"):
        cam.bounding_box(np.full((3, 2), np.nan))


def test_crop_affine_maps_box_edges_and_back():
    box = np.array([100.0, 60.0, 200.0, 200.0])
    a = cam.crop_affine(box, 256)
    np.testing.assert_allclose(cam.apply_affine([[100, 60], [300, 260], [200, 160]], a),
                               [[0, 0], [256, 256], [128, 128]])
    pixels = np.random.default_rng(0).uniform(0, 640, size=(7, 21, 2))
    np.testing.assert_allclose(cam.apply_affine(cam.apply_affine(pixels, a), cam.invert_affine(a)), pixels,
                               atol=1e-10)


def test_crop_intrinsics_consistency():
    """Projecting with K' = A K equals mapping the K-projection through A, with and without distortion."""
    points = hand_points()
    a = cam.crop_affine(cam.box_around_points(PINHOLE.project(points)), 256)
    for intrinsics in (PINHOLE, cam.CameraIntrinsics(614.6, 615.1, 321.3, 238.7, PLUMB_BOB)):
        cropped = intrinsics.transformed(a, 256, 256)
        np.testing.assert_allclose(cropped.project(points), cam.apply_affine(intrinsics.project(points), a),
                                   atol=1e-9)
        expected_k = np.vstack([a, [0, 0, 1]]) @ intrinsics.matrix
        np.testing.assert_allclose(cropped.matrix, expected_k, atol=1e-12)
        # back-projecting crop pixels with K' recovers the 3D points
        np.testing.assert_allclose(cropped.backproject(cropped.project(points), points[:, 2]), points,
                                   atol=1e-8)


def test_resize_then_crop_composes():
    """DMA-style: resize 640x480 to 256x256, then crop; the composed intrinsics still project right."""
    resize = cam.resize_affine((640, 480), (256, 256))
    np.testing.assert_allclose(resize, [[0.4, 0, 0], [0, 256 / 480, 0]])
    crop = cam.crop_affine([30.0, 40.0, 128.0, 128.0], 256)
    both = cam.compose_affines(crop, resize)
    points = hand_points()
    np.testing.assert_allclose(cam.apply_affine(PINHOLE.project(points), both),
                               cam.apply_affine(cam.apply_affine(PINHOLE.project(points), resize), crop))
    np.testing.assert_allclose(PINHOLE.transformed(resize).transformed(crop).matrix,
                               PINHOLE.transformed(both).matrix, atol=1e-12)


def test_warp_image_uses_the_same_pixel_convention():
    """Warp coordinate images: each crop pixel must hold the image coordinates A^-1 maps it to."""
    v, u = np.mgrid[0:480, 0:640].astype(np.float32)
    coords = np.stack([u, v], axis=-1)
    box = cam.square_box([201.3, 97.8, 150.0, 170.0], 1.25)
    a = cam.crop_affine(box, 256)
    crop = cam.warp_image(coords, a, 256)
    assert crop.shape == (256, 256, 2) and crop.dtype == np.float32
    cv, cu = np.mgrid[0:256, 0:256]
    expected = cam.apply_affine(np.stack([cu, cv], axis=-1), cam.invert_affine(a))
    # OpenCV quantises sampling positions to 1/32 pixel
    np.testing.assert_allclose(crop, expected, atol=1 / 32 + 1e-3)
    # outside the image the border is constant
    outside = cam.warp_image(np.ones((10, 10), np.uint8), cam.crop_affine([-50.0, -50.0, 20.0, 20.0], 8), 8)
    assert not outside.any()


def test_bad_affine_inputs_raise():
    with pytest.raises(ValueError, match="2x3"):
        cam.apply_affine(np.zeros((3, 2)), np.eye(3))
    with pytest.raises(ValueError, match="singular"):
        cam.invert_affine(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="positive width and height"):
        cam.crop_affine([0, 0, 0, 10], 256)
    with pytest.raises(ValueError, match="positive size"):
        cam.crop_affine([0, 0, 10, 10], 0)
    with pytest.raises(ValueError, match="scale \\+ translation"):
        PINHOLE.transformed(cv2.getRotationMatrix2D((320, 240), 30, 1.0))
    with pytest.raises(ValueError, match="image of shape"):
        cam.warp_image(np.zeros(5), np.eye(2, 3), 4)
    with pytest.raises(ValueError, match="enlarge"):
        cam.square_box([0, 0, 10, 10], enlarge=0)


def test_opengl_opencv_swap():
    gl = np.array([[0.1, 0.2, -0.5]])  # in front of an OpenGL camera: negative z
    cv = cam.swap_opengl_opencv(gl)
    np.testing.assert_array_equal(cv, [[0.1, -0.2, 0.5]])
    np.testing.assert_array_equal(cam.swap_opengl_opencv(cv), gl)
    np.testing.assert_array_equal(cam.OPENGL_TO_OPENCV @ gl[0], cv[0])
    assert torch.equal(cam.swap_opengl_opencv(torch.from_numpy(gl)), torch.from_numpy(cv))
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        cam.swap_opengl_opencv(np.zeros((4, 2)))
