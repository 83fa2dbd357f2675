"""A2J-Transformer parity runner: our model vs the official code's arrays in a parity kit.

Used by `python -m hand_object_pose.tools.parity a2j_ih26m KIT_DIR`. The official-format weights
are regenerated from the kit, converted by `models.a2j.checkpoint` (the same path as a real
checkpoint), the model runs on `input/img`, and every array of the kit is compared by
`parity_kit.compare_all` (after the subsampling the kit's json describes); only the arrays in
`INPUT_ARRAYS` are not compared, any other array we do not produce fails.
"""
from __future__ import annotations

import numpy as np
import torch

from hand_object_pose.export.parity_kit import ParityKit, ParityReport, compare_all
from hand_object_pose.models.a2j import PRESETS, build
from hand_object_pose.models.a2j.checkpoint import load_official

# Kit arrays that are not results of the model (everything else must be produced and compared).
INPUT_ARRAYS = {"input/img": "model input", "input/img_uint8": "model input (uint8 copy of input/img)"}


def _numpy(t) -> np.ndarray:
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def run_model(kit: ParityKit, config_name: str = "a2j_ih26m") -> dict:
    """Run our model on the kit's input; return our full arrays under the kit's names."""
    model = build(PRESETS[config_name]).eval()
    load_official(model, kit.official_state_dict())
    cross0 = model.decoder.layers[0].cross_attn
    captured = {}
    # The fused attention does not call its `sampling_offsets` / `attention_weights` modules; the
    # kit's layer-0 internals are those modules applied to the query the layer received.
    def keep_first_call(module, args, out):
        captured.setdefault("query_out", (args[0], out))      # returns None: output unchanged

    hook = cross0.register_forward_hook(keep_first_call)
    trace = {}
    try:
        with torch.no_grad():
            out = model(torch.from_numpy(kit.arrays["input/img"]), all_layers=True, trace=trace)
    finally:
        hook.remove()
    query, cross_out = captured["query_out"]
    with torch.no_grad():
        offsets, logits = cross0.sampling_offsets(query), cross0.attention_weights(query)
    d = model.config.d_model
    last_h, last_w = model.spatial_shapes[-1]
    ours = {
        "backbone/c3_layer2": trace["c3"], "backbone/c4_layer3": trace["c4"], "backbone/c5_layer4_dilated": trace["c5"],
        **{f"input_proj/level{i}": x for i, x in enumerate(trace["levels"])},
        "transformer/pos_level3": model.position_code[-last_h * last_w:].t().reshape(1, d, last_h, last_w),
        "encoder/layer_out": torch.stack(trace["encoder_layers"]),
        "encoder/memory": trace["memory"],
        "decoder/query_sine_embed": trace["query_sine_embed"],
        "decoder/ref_point_head_out": trace["ref_point_head_out"],
        "decoder/query_scale_out": torch.stack(trace["query_scale_out"]),
        "decoder/hs": torch.stack(trace["hs"]),
        "decoder/hs_last": trace["hs"][-1],
        "decoder/cross_attn_sampling_offsets_l0": offsets,
        "decoder/cross_attn_attention_logits_l0": logits,
        "decoder/cross_attn_out_l0": cross_out,
        "decoder/cross_attn_ref_points_l0": trace["cross_attn_ref_points_l0"],
        "heads/offsets_raw": torch.stack(trace["offsets_raw"]),
        "heads/offsets_raw_last": trace["offsets_raw"][-1],
        "heads/anchor_weight_logits": torch.stack(trace["anchor_weight_logits"]),
        "heads/anchor_weight_logits_last": trace["anchor_weight_logits"][-1],
        "heads/keypoints_all_layers": out.joints_per_layer,
        "heads/anchor_positions_all_layers": out.anchor_positions_per_layer,
        "out/joint_coord": out.joints,
        "kept/refpoint_embed.weight": model.anchors,
    }
    return {name: _numpy(value) for name, value in ours.items()}


def run_parity(kit: ParityKit) -> ParityReport:
    return compare_all(kit, run_model(kit), INPUT_ARRAYS)
