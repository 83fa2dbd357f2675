"""Conversion of MediaPipe's hand models (palm detector + hand landmark network) from TFLite to ONNX.

MediaPipe's hand models are Apache-2.0 and ship inside the `mediapipe==0.10.21` wheel (the last
release that bundles model files; see shared/reference/hand-detector.md). This module takes that
wheel, extracts the two `.tflite` files, converts them with tf2onnx, renames the graphs' inputs and
outputs to plain names, checks ONNX Runtime against the TFLite interpreter on several images and
refuses the result beyond `TOLERANCE`, and writes a model folder:

    <out>/palm_detection_<variant>.onnx   input "image" (1, 192, 192, 3) RGB in [0, 1], NHWC;
                                          outputs "raw_boxes" (1, 2016, 18) (box + 7 keypoints, anchor-
                                          relative, in 192-px input units), "raw_scores" (1, 2016, 1) logits
    <out>/hand_landmark_<variant>.onnx    input "image" (1, 224, 224, 3) RGB in [0, 1], NHWC;
                                          outputs "landmarks" (1, 63): 21 x (x, y, z) in input pixels,
                                          "presence" (1, 1) in [0, 1], "handedness" (1, 1) in [0, 1],
                                          "world_landmarks" (1, 63): 21 x (x, y, z) metres, origin near
                                          the hand's centre, axes of the (rotated) input crop
    <out>/LICENSE                         the Apache-2.0 text shipped in the wheel
    <out>/README.md                       attribution and what the files are
    <out>/metadata.json                   source wheel + sha256, tool versions, measured differences, date

Heavy dependencies (tensorflow-cpu, tf2onnx, ai-edge-litert) are needed only here, at conversion
time, and belong to the optional `convert-hands` extra, never to the run-time or test environment.
The run-time code (`hand_object_pose.inference.hand_detection`) needs onnxruntime only.

Nothing in this module imports torch, so it runs in a throwaway venv that holds only the extra.
"""
from __future__ import annotations

import datetime
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from hand_object_pose.file_digest import sha256_of

MEDIAPIPE_VERSION = "0.10.21"
VARIANTS = ("lite", "full")
DEFAULT_VARIANT = "lite"
OPSET = 17
METADATA_FILE = "metadata.json"
LICENSE_MEMBER = f"mediapipe-{MEDIAPIPE_VERSION}.dist-info/LICENSE"

# ONNX Runtime vs the TFLite interpreter, per output: max |onnx - tflite| <= ATOL + RTOL * max |tflite|
# (the measured difference is ~1.2e-4 on landmarks of magnitude ~200, i.e. well inside).
TOLERANCE_ATOL = 1e-4
TOLERANCE_RTOL = 1e-5
TOLERANCE = f"max |ONNX Runtime - TFLite| <= {TOLERANCE_ATOL:g} + {TOLERANCE_RTOL:g} * max |TFLite| per output"


@dataclass(frozen=True)
class NetworkSpec:
    """One network in the wheel: its member path, input size and the plain output names, in the
    order of the TFLite model's outputs (Identity, Identity_1, ...)."""
    key: str
    member: str
    input_size: int
    outputs: tuple[str, ...]

    def file_name(self, variant: str) -> str:
        return f"{self.key}_{variant}.onnx"


NETWORKS = (
    NetworkSpec("palm_detection", "mediapipe/modules/palm_detection/palm_detection_{variant}.tflite", 192,
                ("raw_boxes", "raw_scores")),
    NetworkSpec("hand_landmark", "mediapipe/modules/hand_landmark/hand_landmark_{variant}.tflite", 224,
                ("landmarks", "presence", "handedness", "world_landmarks")),
)
INPUT_NAME = "image"


class ConversionError(RuntimeError):
    """The conversion or its check failed (missing extra, wrong wheel, outputs beyond tolerance)."""


def download_wheel(directory: str | Path) -> Path:
    """`pip download mediapipe==0.10.21 --no-deps` into `directory`; returns the wheel path.

    Conversion-time only (an explicit user command), never at run time."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", f"mediapipe=={MEDIAPIPE_VERSION}", "--no-deps",
               "--only-binary=:all:", "-d", str(directory)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        reason = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else f"exit {result.returncode}"
        raise ConversionError(f"pip download of mediapipe=={MEDIAPIPE_VERSION} failed: {reason}")
    wheels = sorted(directory.glob(f"mediapipe-{MEDIAPIPE_VERSION}-*.whl"))
    if not wheels:
        raise ConversionError(f"pip download left no mediapipe-{MEDIAPIPE_VERSION} wheel in {directory}")
    return wheels[0]


def extract_from_wheel(wheel: str | Path, variant: str, directory: str | Path) -> dict[str, Path]:
    """Extract the two `.tflite` files of `variant` and the LICENSE from the wheel into `directory`.

    Returns {network key: tflite path, "LICENSE": path}."""
    if variant not in VARIANTS:
        raise ConversionError(f"unknown variant {variant!r}; choose one of {VARIANTS}")
    wheel, directory = Path(wheel), Path(directory)
    if not wheel.is_file():
        raise ConversionError(f"wheel not found: {wheel}")
    directory.mkdir(parents=True, exist_ok=True)
    members = {spec.key: spec.member.format(variant=variant) for spec in NETWORKS}
    members["LICENSE"] = LICENSE_MEMBER
    paths = {}
    try:
        with zipfile.ZipFile(wheel) as archive:
            names = set(archive.namelist())
            for key, member in members.items():
                if member not in names:
                    raise ConversionError(f"{wheel.name} has no {member}: the hand models are bundled in "
                                          f"mediapipe=={MEDIAPIPE_VERSION} only")
                target = directory / Path(member).name
                target.write_bytes(archive.read(member))
                paths[key] = target
    except zipfile.BadZipFile as exc:
        raise ConversionError(f"{wheel} is not a wheel (zip): {exc}") from exc
    return paths


def tflite_to_onnx(tflite_path: str | Path, spec: NetworkSpec, onnx_path: str | Path, opset: int = OPSET) -> Path:
    """Convert one TFLite model with tf2onnx and rename its input to "image" and its outputs to
    `spec.outputs` (in the TFLite output order). Returns the written path."""
    import os
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter
    try:
        import onnx
        import tf2onnx
    except ImportError as exc:
        raise ConversionError(f"the conversion needs the convert-hands extra (tensorflow-cpu, tf2onnx, "
                              f"ai-edge-litert): {exc}") from exc
    model, _ = tf2onnx.convert.from_tflite(str(tflite_path), opset=opset)
    graph = model.graph
    if len(graph.input) != 1 or len(graph.output) != len(spec.outputs):
        raise ConversionError(f"{spec.key}: expected 1 input and {len(spec.outputs)} outputs, got "
                              f"{len(graph.input)} and {len(graph.output)}")
    old_outputs = _tflite_output_names(tflite_path)
    onnx_outputs = [o.name for o in graph.output]
    order = [_match_name(name, onnx_outputs) for name in old_outputs]
    renames = {graph.input[0].name: INPUT_NAME}
    renames.update({onnx_outputs[i]: new for i, new in zip(order, spec.outputs)})
    for node in graph.node:
        node.input[:] = [renames.get(n, n) for n in node.input]
        node.output[:] = [renames.get(n, n) for n in node.output]
    for value in (*graph.input, *graph.output):
        value.name = renames.get(value.name, value.name)
    outputs_by_name = {o.name: o for o in graph.output}
    reordered = [outputs_by_name[name] for name in spec.outputs]
    copies = [type(o)() for o in reordered]
    for copy, original in zip(copies, reordered):
        copy.CopyFrom(original)
    del graph.output[:]
    graph.output.extend(copies)
    _canonical_names(graph)
    model.doc_string = f"MediaPipe {spec.key} ({Path(tflite_path).name}, mediapipe=={MEDIAPIPE_VERSION}, " \
                       f"Apache-2.0), converted by hand_object_pose.export.mediapipe_hands"
    onnx.checker.check_model(model)
    onnx_path = Path(onnx_path)
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(onnx_path))
    return onnx_path


def _canonical_names(graph) -> None:
    """Rename every internal tensor and node by its first use in node order and sort the initializers.

    tf2onnx names constants in an order that changes from run to run (Python's hash seed), which
    would make each conversion's bytes, and so its sha256, different; after this pass the same
    input gives the same file."""
    keep = {v.name for v in (*graph.input, *graph.output)}
    mapping: dict[str, str] = {}

    def canonical(name: str) -> str:
        if not name or name in keep:
            return name
        return mapping.setdefault(name, f"t{len(mapping)}")

    for k, node in enumerate(graph.node):
        if any(attribute.g.node or attribute.graphs for attribute in node.attribute):
            raise ConversionError(f"unexpected subgraph in node {node.name} ({node.op_type})")
        node.name = f"{node.op_type}_{k}"
        node.input[:] = [canonical(n) for n in node.input]
        node.output[:] = [canonical(n) for n in node.output]
    for init in graph.initializer:
        init.name = canonical(init.name)
    for info in graph.value_info:
        info.name = canonical(info.name)
    ordered = sorted(graph.initializer, key=lambda t: int(t.name[1:]) if t.name[1:].isdigit() else -1)
    copies = [type(t)() for t in ordered]
    for copy, original in zip(copies, ordered):
        copy.CopyFrom(original)
    del graph.initializer[:]
    graph.initializer.extend(copies)
    infos = sorted(graph.value_info, key=lambda v: v.name)
    info_copies = [type(v)() for v in infos]
    for copy, original in zip(info_copies, infos):
        copy.CopyFrom(original)
    del graph.value_info[:]
    graph.value_info.extend(info_copies)


def _tflite_output_names(tflite_path) -> list[str]:
    interpreter = _tflite_interpreter(tflite_path)
    return [d["name"] for d in interpreter.get_output_details()]


def _match_name(tflite_name: str, onnx_names: Sequence[str]) -> int:
    """Index of the ONNX output that tf2onnx made from the TFLite output `tflite_name`."""
    for i, name in enumerate(onnx_names):
        if name == tflite_name or name.split(":")[0] == tflite_name:
            return i
    raise ConversionError(f"no ONNX output matches TFLite output {tflite_name!r} (ONNX outputs {list(onnx_names)})")


def _tflite_interpreter(tflite_path):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tensorflow.lite import Interpreter  # older TensorFlow still bundles it
        except ImportError as exc:
            raise ConversionError("the check needs the TFLite interpreter (ai-edge-litert, in the "
                                  "convert-hands extra)") from exc
    interpreter = Interpreter(model_path=str(tflite_path))
    interpreter.allocate_tensors()
    return interpreter


def run_tflite(tflite_path, image: np.ndarray) -> list[np.ndarray]:
    """Outputs of the TFLite model on one (1, S, S, 3) float32 input, in the model's output order."""
    interpreter = _tflite_interpreter(tflite_path)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image)
    interpreter.invoke()
    return [np.array(interpreter.get_tensor(d["index"])) for d in interpreter.get_output_details()]


def check_images(size: int, extra: Sequence[tuple[str, np.ndarray]] = ()) -> list[tuple[str, np.ndarray]]:
    """Deterministic check inputs [(name, (1, size, size, 3) float32 RGB in [0, 1])]: a smooth gradient,
    uniform noise, a skin-toned blob scene and a checkerboard, plus the named `extra` images (any
    (H, W, 3) uint8 or [0, 1] float, resized by nearest neighbour)."""
    rng = np.random.default_rng(13)
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    gradient = np.stack([xx, yy, 0.5 * (xx + yy)], axis=-1)
    noise = rng.uniform(0.0, 1.0, (size, size, 3))
    blobs = np.full((size, size, 3), (0.35, 0.4, 0.45))
    skin = np.array((0.92, 0.72, 0.58))
    # A palm-like ellipse with five finger-like ellipses above it and a forearm below.
    shapes = [(0.5, 0.62, 0.17, 0.2)] + [(0.3 + 0.1 * k, 0.32 - 0.04 * (k in (1, 2)), 0.035, 0.14)
                                         for k in range(4)] + [(0.28, 0.55, 0.05, 0.1), (0.5, 0.95, 0.13, 0.2)]
    for cx, cy, rx, ry in shapes:
        blobs[((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0] = skin
    checker = np.repeat(((np.floor(xx * 8) + np.floor(yy * 8)) % 2)[..., None], 3, axis=-1)
    images = [("gradient", gradient), ("noise", noise), ("hand_blobs", blobs), ("checkerboard", checker)]
    for name, image in extra:
        image = np.asarray(image)
        image = image.astype(np.float64) / 255.0 if image.dtype == np.uint8 else image.astype(np.float64)
        rows = (np.arange(size) * image.shape[0] / size).astype(int)
        cols = (np.arange(size) * image.shape[1] / size).astype(int)
        images.append((name, image[rows][:, cols, :3]))
    return [(name, np.clip(image, 0, 1).astype(np.float32)[None]) for name, image in images]


def compare(tflite_path, onnx_path, spec: NetworkSpec, images: Sequence[tuple[str, np.ndarray]]
            ) -> dict[str, float]:
    """Max |ONNX Runtime - TFLite| per output over `images`; raises ConversionError beyond TOLERANCE."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    worst = {name: 0.0 for name in spec.outputs}
    scale = {name: 0.0 for name in spec.outputs}
    for _, image in images:
        expected = run_tflite(tflite_path, image)
        got = session.run(list(spec.outputs), {INPUT_NAME: image})
        for name, e, g in zip(spec.outputs, expected, got):
            if e.shape != g.shape:
                raise ConversionError(f"{spec.key}.{name}: ONNX shape {g.shape} != TFLite shape {e.shape}")
            worst[name] = max(worst[name], float(np.abs(g.astype(np.float64) - e).max()))
            scale[name] = max(scale[name], float(np.abs(e).max()))
    beyond = {name: (worst[name], TOLERANCE_ATOL + TOLERANCE_RTOL * scale[name]) for name in spec.outputs
              if not worst[name] <= TOLERANCE_ATOL + TOLERANCE_RTOL * scale[name]}
    if beyond:
        raise ConversionError(f"{spec.key}: ONNX Runtime differs from TFLite beyond the tolerance "
                              f"({TOLERANCE}): " + ", ".join(f"{n} {d:.3g} > {t:.3g}" for n, (d, t) in beyond.items()))
    return worst


def _version(module: str) -> str:
    try:
        from importlib.metadata import version
        return version(module)
    except Exception:
        return "absent"


README_TEXT = """# MediaPipe hand models (palm detector + hand landmarks), as ONNX

These files are **Google's MediaPipe hand models** (Apache License 2.0, see `LICENSE`), taken
unchanged in their weights from the `mediapipe=={version}` wheel (`{members}`) and converted from
TFLite to ONNX by `python -m hand_object_pose.tools.convert_mediapipe_hands`. Copyright the
MediaPipe authors (Google LLC); the conversion (ONNX graphs, renamed inputs/outputs) is a
modification in the sense of the licence's section 4.

| file | input | outputs |
|---|---|---|
| `{palm}` | `image` (1, 192, 192, 3) RGB in [0, 1] | `raw_boxes` (1, 2016, 18), `raw_scores` (1, 2016, 1) logits |
| `{landmark}` | `image` (1, 224, 224, 3) RGB in [0, 1] | `landmarks` (1, 63) crop px, `presence` (1, 1), `handedness` (1, 1), `world_landmarks` (1, 63) m |

`metadata.json` records the source wheel's sha256, the tool versions, the measured difference
between ONNX Runtime and the TFLite interpreter per output and the tolerance the tool enforced
({tolerance}); check images: {checks}. The conversion is deterministic: the same wheel gives
byte-identical ONNX files. The run-time code is `hand_object_pose/inference/hand_detection/`.

Regenerate (needs the `convert-hands` extra, in a throwaway venv; downloads the wheel unless
`--wheel` names one):

    python -m hand_object_pose.tools.convert_mediapipe_hands --out models/hand_detector
"""


def convert(out_dir: str | Path, wheel: str | Path | None = None, variant: str = DEFAULT_VARIANT,
            extra_images: Sequence[tuple[str, np.ndarray]] = (), log: Callable[[str], None] = print) -> dict:
    """The whole conversion: wheel -> tflite -> ONNX -> check -> `out_dir` (ONNX, LICENSE, README.md,
    metadata.json). Returns the metadata dict. Raises ConversionError on any failure; writes the
    folder only after every check passed."""
    out_dir = Path(out_dir)
    with tempfile.TemporaryDirectory(prefix="convert_mediapipe_hands_") as tmp:
        tmp = Path(tmp)
        if wheel is None:
            log(f"downloading mediapipe=={MEDIAPIPE_VERSION} (no dependencies) ...")
            wheel = download_wheel(tmp / "wheel")
        wheel = Path(wheel)
        log(f"extracting the {variant} hand models from {wheel.name}")
        extracted = extract_from_wheel(wheel, variant, tmp / "tflite")
        staged = tmp / "out"
        networks = {}
        for spec in NETWORKS:
            onnx_path = staged / spec.file_name(variant)
            log(f"converting {extracted[spec.key].name} -> {onnx_path.name}")
            tflite_to_onnx(extracted[spec.key], spec, onnx_path)
            images = check_images(spec.input_size, extra_images)
            diffs = compare(extracted[spec.key], onnx_path, spec, images)
            log(f"  max |ONNX - TFLite| over {len(images)} images: "
                + ", ".join(f"{k} {v:.3g}" for k, v in diffs.items()))
            networks[spec.key] = {
                "file": onnx_path.name,
                "sha256": sha256_of(onnx_path),
                "bytes": onnx_path.stat().st_size,
                "source_member": spec.member.format(variant=variant),
                "source_sha256": sha256_of(extracted[spec.key]),
                "input": {"name": INPUT_NAME, "shape": [1, spec.input_size, spec.input_size, 3],
                          "layout": "NHWC RGB float32 in [0, 1]"},
                "outputs": list(spec.outputs),
                "max_abs_diff_vs_tflite": diffs,
                "check_images": [name for name, _ in images],
            }
        shutil.copyfile(extracted["LICENSE"], staged / "LICENSE")
        members = ", ".join(n["source_member"] for n in networks.values())
        (staged / "README.md").write_text(README_TEXT.format(
            version=MEDIAPIPE_VERSION, members=members, palm=networks["palm_detection"]["file"],
            landmark=networks["hand_landmark"]["file"], tolerance=TOLERANCE,
            checks=", ".join(networks["hand_landmark"]["check_images"])))
        metadata = {
            "source": {"package": "mediapipe", "version": MEDIAPIPE_VERSION, "wheel": wheel.name,
                       "wheel_sha256": sha256_of(wheel), "license": "Apache-2.0",
                       "copyright": "The MediaPipe Authors (Google LLC)"},
            "variant": variant,
            "networks": networks,
            "tolerance": {"rule": TOLERANCE, "atol": TOLERANCE_ATOL, "rtol": TOLERANCE_RTOL},
            "tools": {name: version for name in ("tf2onnx", "tensorflow-cpu", "tensorflow", "onnx", "onnxruntime",
                                                  "ai-edge-litert", "numpy")
                      if (version := _version(name)) != "absent"}
                     | {"python": sys.version.split()[0], "opset": OPSET},
            "converted_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tool": "python -m hand_object_pose.tools.convert_mediapipe_hands",
        }
        (staged / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
        out_dir.mkdir(parents=True, exist_ok=True)
        for path in staged.iterdir():
            shutil.copyfile(path, out_dir / path.name)
    log(f"wrote {out_dir}")
    return metadata
