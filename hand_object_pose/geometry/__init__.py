"""Geometry shared by every model and by inference: no ROS, no training code.

Submodules (import the one you need; this package imports none of them eagerly, so importing
``hand_object_pose.geometry`` stays cheap):

- ``skeleton``: the canonical 21-joint wrist-first hand order, names, parents, fingers, bones, and the
  index maps to and from InterHand2.6M, MANO(+tips), HO-3D and DexYCB orders.
- ``rotations``: axis-angle, quaternion (w, x, y, z), rotation matrix and 6D (two columns) conversions,
  for numpy arrays and torch tensors.
- ``camera``: pinhole intrinsics with optional lens distortion, projection / back-projection
  (``project_points`` with a K matrix), crop and resize affines with the matching intrinsics.
- ``mano``: the MANO layer; ``hand_model_files``: MANO-layout npz files and which one a hand side uses
  (the user's MANO or the licence-free stand-in, ``hand_model_file``).
- ``object_template``: object meshes with their symmetry (DMA templates), their npz files and resampling.

Conventions: metres and radians; the OpenCV optical camera frame (x right, y down, z forward); pixel
coordinates with the centre of the top-left pixel at (0, 0).
"""
