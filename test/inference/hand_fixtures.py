"""Synthetic hands and depth images shared by the inference tests (real numpy data, known truth)."""
import numpy as np

K = np.array([[610.0, 0.0, 322.0], [0.0, 605.0, 238.0], [0.0, 0.0, 1.0]])
PALM = (0, 5, 9, 13, 17)


def synthetic_hand(seed=0):
    """A plausible root-relative hand: five fans of 4 joints (base at 3-8.5 cm from the wrist, 3 cm
    segments), spread over ~100 degrees, wrist at the origin, metres."""
    rng = np.random.default_rng(seed)
    rel = np.zeros((21, 3))
    for finger in range(5):
        angle = -0.9 + 0.45 * finger
        direction = np.array([np.sin(angle), -np.cos(angle), 0.3 * rng.uniform(-1, 1)])
        direction /= np.linalg.norm(direction)
        base = 0.03 if finger == 0 else 0.085
        for k in range(4):
            rel[1 + 4 * finger + k] = direction * (base + 0.03 * k) + rng.normal(0, 0.004, 3)
    return rel


def project(points, K=K):
    uvw = points @ K.T
    return uvw[:, :2] / uvw[:, 2:3]


def render_depth(points, surface_offset, K=K, shape=(480, 640), background=2.5, radius_m=0.007):
    """Depth image: background plane plus a disc (radius 7 mm) at each joint whose depth is the joint
    depth minus the surface offset (the skin in front of the joint)."""
    depth = np.full(shape, background, np.float32)
    uv = project(points, K)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    order = np.argsort(-points[:, 2])  # far first, near joints overwrite
    for j in order:
        radius = radius_m * K[0, 0] / points[j, 2]
        disc = (xx - uv[j, 0]) ** 2 + (yy - uv[j, 1]) ** 2 <= radius ** 2
        depth[disc] = points[j, 2] - surface_offset
    return depth
