"""Parity of our Dense Mutual Attention model with the official code on a parity kit (`dma_*` configs).

Regenerates the kit's official-format weights, converts them with `models.dma.checkpoint`, builds the
model with the kit's hand faces, MANO J_regressor (turned into the 21x778 regressor by our own code,
then checked against the kit's) and object template, runs it on the kit inputs (fed as is: the kit
image is already in the BGR order the official pipeline uses) and compares every intermediate and
output the kit stores. Tolerances: kit README section 7.
"""
from __future__ import annotations

import dataclasses
import re

import numpy as np
import torch

from hand_object_pose.export.parity_kit import ParityKit, ParityReport, compare_array
from hand_object_pose.models.dma import PRESETS, build
from hand_object_pose.models.dma.assets import HandTopology, ObjectTemplate, joint_regressor_21
from hand_object_pose.models.dma.checkpoint import load_official_weights

# Bilinear sampling at rough vertices amplifies fp32 noise of the x300-scaled lixel logits (kit README 7).
SAMPLED_RTOL = 1e-3
SAMPLED_ARRAYS = re.compile(r"^gcn/(proj_|input_|attn_A_)")
INPUT_GROUPS = ("input/", "kept/")


def _subsample(ours: np.ndarray, description: str | None) -> np.ndarray:
    """Apply the kit's "axis K taken with step S" subsampling to our full array."""
    if not description:
        return ours
    match = re.match(r"axis (\d+) taken with step (\d+)", description)
    if match is None:
        raise ValueError(f"unknown subsampling description {description!r}")
    axis, step = int(match.group(1)), int(match.group(2))
    index = [slice(None)] * ours.ndim
    index[axis] = slice(None, None, step)
    return ours[tuple(index)]


def build_kit_model(kit: ParityKit, compute_discarded_blocks: bool = True):
    """Our model with the kit's converted weights, hand topology and object template, plus the kit inputs.

    Returns (model in eval mode, conversion report, inputs tuple for `model(*inputs)`, 21x778 regressor
    built by our code from the kit's MANO J_regressor).
    """
    arrays = kit.arrays
    preset = PRESETS.get(kit.config, PRESETS["dma_ho3d"])
    config = dataclasses.replace(preset, name=kit.config, compute_discarded_blocks=compute_discarded_blocks)
    regressor = joint_regressor_21(arrays["kept/human_model_layer.th_J_regressor"])
    hand = HandTopology(arrays["kept/human_model_layer.th_faces"], regressor)
    obj = ObjectTemplate(f"kit_class_{int(arrays['input/obj_class'][0])}", arrays["out/obj_verts_template"][0],
                         arrays["out/obj_faces"])
    model = build(config, hand=hand, objects=[obj]).eval()
    conversion = load_official_weights(model, kit.official_state_dict())
    inputs = (torch.from_numpy(arrays["input/img"]), torch.from_numpy(arrays["input/root_joint"]),
              torch.from_numpy(arrays["input/focal"]), torch.from_numpy(arrays["input/principal_point"]),
              torch.zeros(1, dtype=torch.int64),  # the catalogue holds the kit's one object at index 0
              torch.from_numpy(arrays["input/root_joint_depth"]))
    return model, conversion, inputs, regressor


def run_parity(kit: ParityKit) -> ParityReport:
    torch.set_num_threads(2)
    arrays = kit.arrays
    model, conversion, inputs, regressor = build_kit_model(kit)
    trace: dict = {}
    with torch.no_grad():
        model(*inputs, trace=trace)
    ours = {name: value.numpy() for name, value in trace.items()}
    ours["graph/hand_edge_index"] = model.hand_edge_index().numpy()
    ours["graph/obj_edge_index"] = model.object_edge_index(0).numpy()
    ours["assets/joint_regressor_21x778"] = regressor

    report = ParityReport(kit.config)
    for name, ref in arrays.items():
        if name.startswith(INPUT_GROUPS):
            report.not_compared[name] = "model input / kept-official tensor (loaded, not an output)"
            continue
        if name == "out/obj_faces":
            report.not_compared[name] = "object template faces: an input of ours (the catalogue)"
            continue
        if name not in ours:  # a kit array we cannot produce fails the check
            report.rows.append(compare_array(name, np.zeros(0), ref, note="not produced by our model"))
            continue
        full = ours[name]
        meta = kit.meta.get("arrays", {}).get(name, {})
        if tuple(meta.get("full_shape", ref.shape)) != full.shape:
            full = full.reshape(meta.get("full_shape", ref.shape))
        rtol = SAMPLED_RTOL if SAMPLED_ARRAYS.match(name) else 1e-4
        report.rows.append(compare_array(name, _subsample(full, meta.get("subsampled")), ref, rtol=rtol))
    report.not_compared["(checkpoint conversion)"] = (f"{len(conversion.loaded)} tensors loaded; unused: "
                                                      + ", ".join(sorted(conversion.unused)))
    return report
