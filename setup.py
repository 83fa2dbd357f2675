"""pip installation of hand_object_pose for training and offline use, without ROS.

On a ROS 2 machine build the package with colcon instead (it also generates the messages); see
README.md. Exact, tested versions are pinned in requirements/*.txt; the ranges here are what the code
needs.
"""
import glob

from setuptools import find_packages, setup

ROS_RUNTIME = [
    # Real ROS 2 Jazzy from PyPI wheels (rclpy with its only PyPI RMW, Fast DDS), for machines
    # without a ROS install. Never mix ros-jazzy-* with unprefixed ros-* names (those are Kilted).
    "ros-jazzy-rclpy[fastrtps]>=7.1.6",
    "ros-jazzy-builtin-interfaces>=2.0.3",
    "ros-jazzy-std-msgs>=5.3.6",
    "ros-jazzy-geometry-msgs>=5.3.6",
    "ros-jazzy-sensor-msgs>=5.3.6",
    "ros-jazzy-visualization-msgs>=5.3.6",
    "ros-jazzy-diagnostic-msgs>=5.3.6",
    "ros-wheels-bootstrapper>=0.1.2",
]

EXTRAS = {
    "ros": ROS_RUNTIME,
    # onnxruntime and onnxruntime-gpu install the same `onnxruntime` Python module: with both
    # installed, the one installed last silently overwrites the other's files, and uninstalling one
    # breaks the other. Pick exactly one of these two extras.
    "onnx-cpu": ["onnxruntime>=1.17"],
    "onnx-gpu": ["onnxruntime-gpu>=1.17"],
    "train": ["tensorboard>=2.14", "tqdm>=4.66", "pyyaml>=6.0",
              # tools/object_template (ACVD resampling of object meshes for DMA)
              "pyacvd>=0.4"],
    "dev": ["pytest>=8.0", "pytest-timeout>=2.2", "pytest-xdist>=3.5"],
    # Only for tools/convert_mediapipe_hands (TFLite -> ONNX of the shipped hand detector), in a
    # throwaway venv: never part of the run-time or test environment (requirements/*.txt).
    "convert-hands": ["tensorflow-cpu>=2.16", "tf2onnx>=1.16", "ai-edge-litert>=1.0", "onnx>=1.15",
                      "onnxruntime>=1.17"],
}

setup(
    name="hand_object_pose",
    version="0.1.0",
    description="3D poses of two hands and a manipulated object from a camera stream "
    "(Keypoint Transformer, OccRobNet, A2J-Transformer, Dense Mutual Attention), for ROS 2 and offline use",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["hand_object_pose", "hand_object_pose.*"]),
    install_requires=[
        "numpy>=1.24",
        "torch>=2.1",
        "smplx>=0.1.28",
        "transforms3d>=0.4",
        "opencv-python-headless>=4.8",
        "pyyaml>=6.0",
        "onnx>=1.15",
    ],
    extras_require=EXTRAS,
    # The licence-free stand-in hand (NOT MANO): found under <prefix>/share/hand_object_pose/models/
    # standin_hand by geometry.hand_model_files.standin_hand_dirs(), as after a colcon install.
    # The shipped default network (models/default: ONNX + metadata.json) goes beside it.
    data_files=[("share/hand_object_pose/models/standin_hand", sorted(glob.glob("models/standin_hand/*"))),
                ("share/hand_object_pose/models/default", sorted(glob.glob("models/default/*"))),
                # The offline hand detector (MediaPipe's Apache-2.0 models as ONNX, with their LICENSE).
                ("share/hand_object_pose/models/hand_detector", sorted(glob.glob("models/hand_detector/*")))],
    entry_points={
        "console_scripts": [
            "hand-object-pose-train = hand_object_pose.training.train:main",
            "hand-object-pose-evaluate = hand_object_pose.evaluation.evaluate:main",
            "hand-object-pose-convert-mano = hand_object_pose.tools.convert_mano:main",
            "hand-object-pose-generate-synthetic = hand_object_pose.tools.generate_synthetic:main",
            "hand-object-pose-object-template = hand_object_pose.tools.object_template:main",
            "hand-object-pose-parity = hand_object_pose.tools.parity:main",
            "hand-object-pose-export-onnx = hand_object_pose.tools.export_onnx:main",
            # Needs the [ros] extra (or a ROS 2 install providing rclpy and the messages).
            "hand-object-pose-node = hand_object_pose.ros.pose_node:run",
        ],
    },
)
