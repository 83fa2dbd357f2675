"""Parity of our Keypoint Transformer with the official code on a parity kit (kit README 6.1, 7).

`run_parity(kit)`:
1. regenerates the official-format weights from the kit's spec, infers the KptConfig from the keys,
   converts them with `models.kpt.checkpoint` and loads them strictly;
2. runs our model on `input/img` with our own greedy peak detector and checks that it reproduces
   the kit's peak lists (`tokens/hand_peaks_rc`, `tokens/obj_peaks_rc`, values) exactly;
3. if our token list differs from the kit's, runs the network again on the kit's tokens (so the
   transformer stage is still compared; the peak rows then show the detector failure);
4. compares every kit array with `parity_kit.compare_all` (subsampled ones on the stored indices only,
   layouts converted to the official sequence-first ones); floats within 1e-4 x max|ref|, ints/bools
   exact. Only the arrays in `INPUTS` are not compared; any other kit array we do not produce fails.
"""
from __future__ import annotations

import gc

import numpy as np
import torch

from hand_object_pose.export.parity_kit import ParityKit, ParityReport, compare_all
from hand_object_pose.models.kpt import KeypointTransformer, infer_config, load_official
from hand_object_pose.models.kpt.heads import pooled_c5
from hand_object_pose.models.kpt.selection import greedy_peaks, tokens_from_locations

# Kit arrays that are not results of the model (everything else must be produced and compared).
INPUTS = {"input/img": "model input", "input/img_uint8": "model input (uint8 copy of input/img)"}
# Rows computed from the token list: they ran on the kit's tokens when our selection differed.
TOKEN_DEPENDENT = (r"(tokens/(pos_sampled|multiscale_feat|linear1)|transformer/(src|tgt_mask|memory_mask)|encoder/"
                   r"|decoder/(layer_out|hs|cross_attn)|heads/(joint_|rel_trans|cam|obj_|pose|shape)"
                   r"|out/(?!joint_loc_pred_out|seq_mask_out|joint_heatmap_out|obj_seg_pred_out))")


def _peaks(heatmap: torch.Tensor, threshold: float, radius: float, cap: int) -> tuple[np.ndarray, np.ndarray]:
    peaks = greedy_peaks(heatmap, threshold, radius, cap)
    valid = peaks.valid[0].numpy()
    return peaks.rc[0].numpy()[valid], peaks.value[0].numpy()[valid]


def _kit_tokens(arrays: dict, grid: int):
    xy = torch.from_numpy(arrays["tokens/joint_loc_pred_out"]).float()
    valid = torch.from_numpy(arrays["tokens/seq_valid"])
    kind = torch.from_numpy(arrays["tokens/peak_joints_map"]).long()
    return tokens_from_locations(xy, valid, kind, grid)


def _seq_first(x: torch.Tensor) -> torch.Tensor:
    """(L, N, Q, ...) -> (L, Q, N, ...), the official layout of per-query tensors."""
    return x.transpose(1, 2)


def _token_arrays(tok) -> dict:
    """The token list (locations, validity, kind) under the kit's array names."""
    return {"tokens/joint_loc_pred_out": tok.xy, "out/joint_loc_pred_out": tok.xy,
            "tokens/seq_valid": tok.valid, "out/seq_mask_out": tok.valid, "tokens/peak_joints_map": tok.kind,
            "transformer/key_padding_mask": ~tok.valid}


def _numpy(arrays: dict) -> dict:
    return {k: (v.detach().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)) for k, v in arrays.items()}


def our_arrays(model: KeypointTransformer, out, trace, peaks: dict) -> dict:
    """Our tensors under the kit's array names, in the kit's (full-size) layouts."""
    cfg = model.config
    f, maps, enc_t = trace.features, trace.maps, trace.encoded
    a = {
        "backbone/stride2": f.stem, "backbone/stride4": f.c2, "backbone/stride8": f.c3,
        "backbone/stride16": f.c4, "backbone/c5": f.c5,
        "heads/heatmap": out.heatmap, "out/joint_heatmap_out": out.heatmap,
        **_token_arrays(trace.tokens),
        "tokens/pos_sampled": enc_t.pos, "tokens/multiscale_feat": enc_t.multiscale_feat,
        "tokens/linear1_out": enc_t.hand_feat, "transformer/src": enc_t.src,
        "transformer/tgt_mask": trace.tgt_mask,
        "transformer/query_embed": model.query_embed.weight,
        "encoder/layer_out": trace.encoder.layer_out, "encoder/inter_norm_out": trace.encoder.normed,
        "decoder/layer_out": trace.decoder.layer_out, "decoder/hs": trace.decoder.hs,
        "decoder/cross_attn_weights": out.cross_attn_weights, "out/attn_weights_out": out.cross_attn_weights[0],
        "heads/joint_class_logits": _seq_first(out.class_logits), "out/joint_class_out": out.joint_class,
        "heads/rel_trans": out.rel_trans, "out/rel_trans_out": out.rel_trans[-1],
        "heads/cam": out.cam, "out/cam_param_out": out.cam[-1],
        "heads/hand_type_feat": pooled_c5(f.c5, model.heads.c5_size), "heads/hand_type_logits": out.hand_type_logits,
        "out/hand_type_out": out.hand_type,
    }
    for level, stride in enumerate((2, 4, 8, 16, 32)):
        if not (cfg.big_decoder and stride == 32):  # big decoder: stride 32 is C5 itself, not stored
            a[f"decoder/pyramid_stride{stride}"] = maps.pyramid[level]
    for name, (rc, value) in peaks.items():
        a[f"tokens/{name}_peaks_rc"] = rc
        a[f"tokens/{name}_peak_values"] = value
    if cfg.has_object:
        a.update({"heads/seg": out.seg, "out/obj_seg_pred_out": out.seg, "tokens/linear1_obj_out": enc_t.obj_feat,
                  "transformer/memory_mask": trace.memory_mask,
                  "heads/obj_rot": out.obj_rot6d, "out/obj_rot_out": out.obj_rot6d[-1],
                  "heads/obj_trans": out.obj_trans, "out/obj_trans_out": out.obj_trans[-1],
                  "heads/obj_corner_proj": out.obj_corner_proj, "out/obj_corner_proj_out": out.obj_corner_proj[-1]})
        if out.obj_left_trans is not None:
            a["heads/obj_left_trans"] = out.obj_left_trans
    if out.joint_vecs is not None:
        joints = out.joints_3d
        a.update({"heads/joint_vecs": _seq_first(out.joint_vecs), "out/joint_3d_right_out": joints[:, :, 0],
                  "out/joint_3d_left_out": joints[:, :, 1]})
    if out.joint_2p5d_logits is not None:
        for axis, name in enumerate(("px", "py", "dep")):
            a[f"heads/joint_2p5d_{name}"] = _seq_first(out.joint_2p5d_logits[..., axis, :])
        a["out/joint_2p5d_out"] = out.joint_2p5d
    if out.mano_pose is not None:
        a.update({"heads/pose": _seq_first(out.mano_pose), "out/pose_out": _seq_first(out.mano_pose),
                  "heads/shape": out.mano_shape, "out/shape_out": out.mano_shape})
    return _numpy(a)


def build_from_kit(kit: ParityKit) -> KeypointTransformer:
    """Model with the kit's regenerated official weights, converted and strictly loaded."""
    official = kit.official_state_dict()
    config = infer_config(official, dropout=0.0)
    model = KeypointTransformer(config).eval()
    load_official(model, {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in official.items()})
    del official
    gc.collect()
    return model


def _same_tokens(tokens, arrays: dict) -> bool:
    return (np.array_equal(tokens.xy[0].numpy(), arrays["tokens/joint_loc_pred_out"][0])
            and np.array_equal(tokens.kind[0].numpy(), arrays["tokens/peak_joints_map"][0])
            and np.array_equal(tokens.valid[0].numpy(), arrays["tokens/seq_valid"][0]))


def run_parity(kit: ParityKit) -> ParityReport:
    model = build_from_kit(kit)
    cfg = model.config
    arrays = kit.arrays
    image = torch.from_numpy(arrays["input/img"])
    with torch.no_grad():
        out, trace = model(image, trace=True)
        peaks = {"hand": _peaks(out.heatmap, cfg.hand_threshold, cfg.nms_radius, cfg.max_hand_tokens)}
        if cfg.has_object:
            peaks["obj"] = _peaks(out.seg, cfg.object_threshold, cfg.nms_radius, cfg.max_object_tokens)
        own_tokens = trace.tokens
        own_tokens_match = _same_tokens(own_tokens, arrays)
        if not own_tokens_match:
            out, trace = model(image, tokens=_kit_tokens(arrays, cfg.heatmap_size), trace=True)
        ours = our_arrays(model, out, trace, peaks)
        # the token rows show our own selection, not the kit's tokens fed into the second run
        ours.update(_numpy(_token_arrays(own_tokens)))
    token_note = "" if own_tokens_match else "transformer stage run on the kit's tokens (own selection differs)"
    return compare_all(kit, ours, INPUTS, notes={TOKEN_DEPENDENT: token_note} if token_note else None)
