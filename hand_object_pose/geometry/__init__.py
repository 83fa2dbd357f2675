"""Geometry shared by every model and by inference: no ROS, no training code.

Submodules (import the one you need; this package imports none of them eagerly, so importing
``hand_object_pose.geometry`` stays cheap):

- ``skeleton``: the canonical 21-joint wrist-first hand order, names, parents, fingers, bones, and the
  index maps to and from InterHand2.6M, MANO(+tips), HO-3D and DexYCB orders.
- ``rotations``: axis-angle, quaternion (w, x, y, z), rotation matrix and 6D (two columns) conversions,
  for numpy arrays and torch tensors.
- ``camera``: pinhole intrinsics with optional lens distortion, projection / back-projection, crop and
  resize affines with the matching intrinsics.

Conventions: metres and radians; the OpenCV optical camera frame (x right, y down, z forward); pixel
coordinates with the centre of the top-left pixel at (0, 0).
"""
