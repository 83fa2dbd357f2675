"""The shared DETR-style transformer: attention equals torch's, masks and the pluggable weights work."""
from __future__ import annotations

import torch
from torch import nn

from hand_object_pose.models.common.transformer import MultiheadAttention, Transformer, softmax_attention


def _pair(seed=0, d=32, heads=4):
    torch.manual_seed(seed)
    ours = MultiheadAttention(d, heads)
    ref = nn.MultiheadAttention(d, heads)
    nn.init.normal_(ours.in_proj_bias, std=0.1)
    ref.load_state_dict(ours.state_dict())   # same parameter names and layout
    return ours.eval(), ref.eval()


def test_attention_matches_torch_with_padding_and_attention_masks():
    ours, ref = _pair()
    q, kv = torch.randn(5, 2, 32), torch.randn(7, 2, 32)
    pad = torch.zeros(2, 7, dtype=torch.bool)
    pad[1, 4:] = True
    attn = torch.rand(5, 7) > 0.6
    attn[:, 0] = False  # every row keeps a key
    out, w = ours(q, kv, kv, attn_mask=attn, key_padding_mask=pad)
    ref_out, ref_w = ref(q, kv, kv, attn_mask=attn, key_padding_mask=pad)
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(w, ref_w, atol=1e-6, rtol=1e-5)


def test_per_sample_attention_mask_equals_separate_calls():
    ours, ref = _pair(1)
    q, kv = torch.randn(3, 2, 32), torch.randn(6, 2, 32)
    masks = torch.rand(2, 3, 6) > 0.5
    masks[..., 2] = False
    out, _ = ours(q, kv, kv, attn_mask=masks)
    for b in range(2):
        ref_out, _ = ref(q[:, b:b + 1], kv[:, b:b + 1], kv[:, b:b + 1], attn_mask=masks[b])
        torch.testing.assert_close(out[:, b:b + 1], ref_out, atol=1e-5, rtol=1e-5)


def test_fully_masked_row_stays_finite():
    ours, _ = _pair(2)
    q, kv = torch.randn(2, 1, 32), torch.randn(4, 1, 32)
    mask = torch.zeros(2, 4, dtype=torch.bool)
    mask[0] = True
    out, w = ours(q, kv, kv, attn_mask=mask)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(w[0, 0], torch.full((4,), 0.25))


def test_pluggable_attention_weights_reach_every_layer():
    calls = []

    def gated(logits, blocked):
        calls.append(logits.shape)
        return softmax_attention(logits, blocked) * torch.sigmoid(logits)

    torch.manual_seed(0)
    model = Transformer(32, 4, 2, 3, 64, 0.0, attention_weights=gated).eval()
    plain = Transformer(32, 4, 2, 3, 64, 0.0).eval()
    plain.load_state_dict(model.state_dict())
    src, query = torch.randn(6, 1, 32), torch.randn(4, 1, 32)
    enc, dec = model(src, query)
    assert len(calls) == 2 + 2 * 3  # 2 encoder self-attn, 3 x (self + cross) in the decoder
    enc_plain, dec_plain = plain(src, query)
    assert not torch.allclose(dec.hs, dec_plain.hs)
    assert enc.layer_out.shape == (2, 6, 1, 32) and dec.hs.shape == (3, 4, 1, 32)
    assert dec.cross_attn_weights.shape == (3, 1, 4, 6)


def test_decoder_uses_memory_mask_and_final_norm():
    torch.manual_seed(3)
    model = Transformer(32, 4, 1, 2, 64, 0.0).eval()
    src, query = torch.randn(5, 1, 32), torch.randn(3, 1, 32)
    mask = torch.zeros(1, 3, 5, dtype=torch.bool)
    mask[0, 1, :3] = True  # query 1 sees only tokens 3, 4
    _, dec = model(src, query, memory_mask=mask)
    assert torch.all(dec.cross_attn_weights[:, 0, 1, :3] == 0)
    torch.testing.assert_close(dec.hs, model.decoder.norm(dec.layer_out))
