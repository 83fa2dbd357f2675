"""hand_object_pose: 3D poses of two hands and a manipulated object from a camera stream.

The generated message modules (``hand_object_pose.msg``) are installed by the ROS build into a
different directory (a ROS install, or the venv via ``make msgs``) than this source tree. Extending
``__path__`` lets both halves of the package be imported together when the source tree comes first
on ``sys.path``; on an installed package both halves already share one directory.
"""
from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)
