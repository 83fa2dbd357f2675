"""The camera, the synthetic objects and a rotation helper shared by the object-fit tests (rendered depth images of
the generator's procedural objects, known truth)."""
import math

import numpy as np

from hand_object_pose.geometry.camera import CameraIntrinsics
from hand_object_pose.synthetic.objects import default_objects

SIZE = (320, 240)
K = np.array([[300.0, 0.0, 159.5], [0.0, 300.0, 119.5], [0.0, 0.0, 1.0]])
CAMERA = CameraIntrinsics.from_matrix(K, width=SIZE[0], height=SIZE[1])
OBJECTS = {o.object_id: o for o in default_objects()}
NO_HANDS = np.zeros((0, 2, 3))


def turn(axis, degrees) -> np.ndarray:
    """(3, 3) rotation by `degrees` about `axis` (Rodrigues)."""
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    angle = math.radians(degrees)
    return np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * k @ k
