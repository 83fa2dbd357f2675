"""Parity of our Dense Mutual Attention model with the official code on a parity kit (`dma_*` configs).

Regenerates the kit's official-format weights, converts them with `models.dma.checkpoint`, builds the
model with the kit's hand faces, MANO J_regressor (turned into the 21x778 regressor by our own code,
then checked against the kit's) and object template, runs it on the kit inputs (fed as is: the kit
image is already in the BGR order the official pipeline uses) and compares every intermediate and
output the kit stores with `parity_kit.compare_all`. Not compared: the arrays in `NOT_OUTPUTS` (what
we feed in) and the kit's kept official tensors; any other kit array we do not produce fails.
Tolerances: kit README section 7.
"""
from __future__ import annotations

import dataclasses

import torch

from hand_object_pose.export.parity_kit import ParityKit, ParityReport, compare_all
from hand_object_pose.models.dma import PRESETS, build
from hand_object_pose.models.dma.assets import HandTopology, ObjectTemplate, joint_regressor_21
from hand_object_pose.models.dma.checkpoint import load_official_weights

# Bilinear sampling at rough vertices amplifies fp32 noise of the x300-scaled lixel logits (kit README 7).
TOLERANCES = {r"gcn/(proj_|input_|attn_A_)": 1e-3}
# Kit arrays that are not results of the model (besides the kit's `kept/` tensors, which are weights
# or the MANO assets `build_kit_model` reads): each is something we feed in.
NOT_OUTPUTS = {
    "input/img": "model input (BGR image)",
    "input/img_uint8": "model input (uint8 copy of input/img)",
    "input/root_joint": "model input (root joint)",
    "input/root_joint_depth": "model input (root depth)",
    "input/focal": "model input (camera focal length)",
    "input/principal_point": "model input (camera principal point)",
    "input/obj_class": "object class: selects the template, which is fed in from the kit (out/obj_verts_template)",
    "input/data": "dataset id selecting the official template set; our catalogue holds the kit's template instead",
    "out/obj_verts_template": "object template vertices: an input of ours (the catalogue), fed from the kit",
    "out/obj_faces": "object template faces: an input of ours (the catalogue), fed from the kit",
}


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
    model, conversion, inputs, regressor = build_kit_model(kit)
    trace: dict = {}
    with torch.no_grad():
        model(*inputs, trace=trace)
    ours = {name: value.numpy() for name, value in trace.items()}
    del ours["out/obj_verts_template"]  # the trace echoes the template fed in: comparing it would prove nothing
    ours["graph/hand_edge_index"] = model.hand_edge_index().numpy()
    ours["graph/obj_edge_index"] = model.object_edge_index(0).numpy()
    ours["assets/joint_regressor_21x778"] = regressor

    report = compare_all(kit, ours, NOT_OUTPUTS, tolerances=TOLERANCES)
    report.not_compared["(checkpoint conversion)"] = (f"{len(conversion.loaded)} tensors loaded; unused: "
                                                      + ", ".join(sorted(conversion.unused)))
    return report
