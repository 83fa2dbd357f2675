"""The one sample type every dataset reader returns (real datasets and the synthetic one alike).

Conventions, fixed when the files are read: metres; the OpenCV camera frame of the image (x right,
y down, z forward; HO-3D's OpenGL frame is flipped on read); joints in the canonical wrist-first
order of `geometry.skeleton`; hands keyed by side, right first; images RGB uint8.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from hand_object_pose.geometry.skeleton import HAND_SIDES, NUM_JOINTS


@dataclass
class HandLabel:
    side: str                                  # "right" | "left"
    joints_cam: np.ndarray                     # (21, 3) float32, metres, camera frame, canonical order
    joints_valid: np.ndarray                   # (21,) bool
    mano_pose: Optional[np.ndarray] = None     # (48,) axis-angle, radians, global orientation first
    mano_shape: Optional[np.ndarray] = None    # (10,)
    mano_trans: Optional[np.ndarray] = None    # (3,) metres (in the frame the dataset's MANO fits use)
    root_only: bool = False                    # evaluation splits that publish only the wrist

    def __post_init__(self):
        self.joints_cam = np.asarray(self.joints_cam, np.float32).reshape(NUM_JOINTS, 3)
        self.joints_valid = np.asarray(self.joints_valid, bool).reshape(NUM_JOINTS)
        if self.side not in HAND_SIDES:
            raise ValueError(f"hand side must be one of {HAND_SIDES}; got {self.side!r}")


@dataclass
class ObjectLabel:
    object_id: str                             # dataset object name, e.g. "006_mustard_bottle"
    rotation: np.ndarray                       # (3, 3) camera <- object
    translation: np.ndarray                    # (3,) metres, camera frame
    corners_cam: Optional[np.ndarray] = None   # (8, 3) metres, camera frame, when the dataset gives them
    corners_rest: Optional[np.ndarray] = None  # (8, 3) metres, object frame: the 3D bounding box
    symmetric_z180: bool = False               # looks the same after 180 deg about its z axis
    symmetry: Optional[dict] = None            # {"kind", "axis", "order"} (catalogue spelling) when known

    def symmetry_record(self) -> dict:
        """The object's symmetry in the catalogue spelling: `symmetry` when the dataset gives it, else a
        180-degree turn about z when `symmetric_z180`, else none."""
        if self.symmetry:
            return dict(self.symmetry)
        if self.symmetric_z180:
            return {"kind": "discrete", "axis": [0.0, 0.0, 1.0], "order": 2}
        return {"kind": "none"}


@dataclass
class Sample:
    dataset: str                               # e.g. "interhand26m", "ho3d", "h2o3d", "dexycb", "synthetic"
    frame_id: str                              # unique within the dataset split
    image_path: str
    intrinsics: np.ndarray                     # (3, 3) K of the full image, pixels
    image_size: tuple                          # (width, height)
    hands: dict = field(default_factory=dict)  # side -> HandLabel
    objects: list = field(default_factory=list)  # list[ObjectLabel]
    hand_box: Optional[np.ndarray] = None      # (4,) x, y, width, height (pixels) when the dataset gives one
    interacting: bool = False                  # both hands annotated and interacting (IH2.6M "interacting")
    depth_path: Optional[str] = None           # depth image aligned to the colour image, when the dataset has one
    object_mask_path: Optional[str] = None     # image whose non-zero pixels are the object
    load_image_fn: Optional[Callable[[str], np.ndarray]] = None
    load_depth_fn: Optional[Callable[[str], np.ndarray]] = None  # decoder of depth_path; default read_depth_mm

    def load_image(self) -> np.ndarray:
        """(H, W, 3) uint8 RGB."""
        if self.load_image_fn is not None:
            return self.load_image_fn(self.image_path)
        return read_rgb(self.image_path)

    def load_depth(self) -> Optional[np.ndarray]:
        """(H, W) float32 depth in metres aligned to the colour image (0 = no measurement), or None when the
        sample has no depth image. Decoded by `load_depth_fn` (the dataset's own encoding), by default a
        16-bit PNG in millimetres (`read_depth_mm`)."""
        if self.depth_path is None:
            return None
        return (self.load_depth_fn or read_depth_mm)(self.depth_path)


def read_rgb(path: str) -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 RGB; FileNotFoundError/ValueError name the path."""
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        import os

        if not os.path.exists(path):
            raise FileNotFoundError(f"image not found: {path}")
        raise ValueError(f"cannot decode image file: {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _read_unchanged(path: str) -> np.ndarray:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        import os

        if not os.path.exists(path):
            raise FileNotFoundError(f"depth image not found: {path}")
        raise ValueError(f"cannot decode depth image file: {path}")
    return image


def read_depth_mm(path: str) -> np.ndarray:
    """A single-channel 16-bit PNG of millimetres (DexYCB, the synthetic dataset) -> (H, W) float32 metres,
    0 = no measurement. ValueError naming the file when it is not a 16-bit single-channel image."""
    image = _read_unchanged(path)
    if image.ndim != 2 or image.dtype != np.uint16:
        raise ValueError(f"{path}: expected a single-channel 16-bit depth image in millimetres, got "
                         f"shape {image.shape} dtype {image.dtype}")
    return image.astype(np.float32) / 1000.0


HO3D_DEPTH_SCALE_M = 0.00012498664727900177
"""Metres per unit of HO-3D's depth encoding (the dataset's own reader, `read_depth_img`)."""


def read_ho3d_depth(path: str) -> np.ndarray:
    """An HO-3D / H2O-3D depth PNG (the 16-bit value split over the red (low byte) and green (high byte)
    channels) -> (H, W) float32 metres, 0 = no measurement."""
    image = _read_unchanged(path)
    if image.ndim != 3 or image.shape[2] < 3 or image.dtype != np.uint8:
        raise ValueError(f"{path}: expected HO-3D's 8-bit 3-channel depth encoding, got shape {image.shape} "
                         f"dtype {image.dtype}")
    # OpenCV reads BGR: channel 2 is red, 1 is green.
    value = image[:, :, 2].astype(np.float32) + image[:, :, 1].astype(np.float32) * 256.0
    return value * np.float32(HO3D_DEPTH_SCALE_M)


def intrinsics_matrix(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=np.float64)


# OpenGL camera (x right, y up, z backwards) -> OpenCV optical frame (x right, y down, z forward).
OPENGL_TO_OPENCV = np.diag([1.0, -1.0, -1.0])
