"""Keypoint selection: where on the 128x128 maps the transformer's tokens are sampled.

Three ways, all returning fixed-size tensors (so they batch and export):

1. `greedy_peaks` -- the official algorithm, exactly: repeat while some pixel is strictly above
   the threshold: take the first maximal pixel in row-major order, record it, then set it and every
   pixel within Euclidean distance <= radius to the threshold value. Peaks come out in descending
   value. It runs a fixed `max_peaks` iterations of tensor ops (argmax + a scatter onto the disk), so it
   traces into an ONNX graph unchanged; in eager mode it stops as soon as no pixel is left above
   the threshold.
2. `maxpool_peaks` -- a cheaper fixed-K variant: a pixel is a peak when it is above the threshold
   and equals the maximum of its (2r+1)^2 square window; the top-K by value are kept. It differs
   from (1): the window is a square, not a disk; a pixel on the flank of a broad blob more than r px
   from the blob's maximum is a greedy peak but never a max-pool peak (so broad blobs give fewer
   tokens); two equal neighbouring maxima are both kept; it does not "claim" pixels sequentially,
   so a lower peak within r of a higher one that was itself claimed is treated differently.
   Order is descending value (ties: lower row-major index first, as top-k does on CPU).
3. Ground-truth locations (early training): `tokens_from_locations` turns given joint / object
   pixel positions into the same token layout.

`assemble_tokens` packs hand peaks first, then object samples, then padding, into `max_tokens`
slots; padding tokens sit at normalised (-1, -1), as in the official code. `select_tokens` runs the
configured detector on the maps and packs the result (Keypoint Transformer and OccRobNet both use it).
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np
import torch
from torch.nn import functional as F

from .config import KptConfig

HAND_TOKEN = 1      # token type of a hand peak (official `peak_joints_map` value)
OBJECT_TOKEN = 43   # token type of an object sample
PAD_TOKEN = 0


class Peaks(NamedTuple):
    rc: torch.Tensor      # (N, K, 2) int64 (row, col) on the map; (0, 0) where not valid
    value: torch.Tensor   # (N, K) map value at the peak
    valid: torch.Tensor   # (N, K) bool; valid entries form a prefix of each row


def _fixed_iterations() -> bool:
    """Whether the greedy loop must run all its iterations: while tracing or exporting (the graph is fixed) and
    while a CUDA graph is captured (the early stop's host read is not allowed there)."""
    return (torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()
            or (torch.cuda.is_available() and torch.cuda.is_current_stream_capturing()))


def stack_in_groups(parts: list, group: int = 32) -> torch.Tensor:
    """torch.stack(parts, dim=1), exported as Concats of at most `group` inputs: ONNX Runtime's CUDA provider
    cannot capture a Concat of more than 32 inputs in a CUDA graph (one of 100 peaks stopped the capture)."""
    if len(parts) <= group:
        return torch.stack(parts, dim=1)
    return torch.cat([torch.stack(parts[i:i + group], dim=1) for i in range(0, len(parts), group)], dim=1)


def _disk_neighbour_table(h: int, w: int, radius: float) -> np.ndarray:
    reach = int(radius)
    dr, dc = np.meshgrid(np.arange(-reach, reach + 1), np.arange(-reach, reach + 1), indexing="ij")
    inside_disk = dr ** 2 + dc ** 2 <= radius * radius
    dr, dc = dr[inside_disk], dc[inside_disk]
    index = np.arange(h * w)
    rows, cols = index[:, None] // w + dr, index[:, None] % w + dc
    on_map = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    return np.where(on_map, rows * w + cols, index[:, None])


_NEIGHBOUR_TABLES: dict = {}


def disk_neighbours(h: int, w: int, radius: float, device: torch.device | str = "cpu") -> torch.Tensor:
    """(h*w, D) int64: for each row-major pixel index, the indices of the D pixels within Euclidean distance
    <= radius of it (D = the disk's pixel count); offsets that leave the map repeat the pixel's own index.

    Built with numpy and kept per device: an exported graph holds it as a constant (built from tensor ops, the
    traced graph recomputed it on every call: 10 ms on the CPU for a 128x128 map), and a GPU forward neither
    copies it again nor breaks a CUDA-graph capture with a host copy. Callers must not modify it."""
    key = (int(h), int(w), float(radius), str(torch.device(device)))
    table = _NEIGHBOUR_TABLES.get(key)
    if table is None:
        table = torch.from_numpy(_disk_neighbour_table(*key[:3])).to(torch.int64).to(device)
        _NEIGHBOUR_TABLES[key] = table
    return table


def greedy_peaks(heatmap: torch.Tensor, threshold: float | torch.Tensor, radius: float, max_peaks: int) -> Peaks:
    """Official greedy peak NMS (see module docstring). heatmap: (N, H, W) -> Peaks with K = max_peaks.

    threshold: a float, or (N,) one per map (so that maps with different thresholds share one loop).
    Each iteration is an argmax and a scatter of the threshold onto the pick's disk (a table lookup), so the
    exported graph has few kernels per iteration (on a GPU, 100 iterations of tiny kernels are the cost).
    The loop does not check whether the pick was above the threshold; which picks the official algorithm
    would have made is decided once at the end: a pick is valid while every pick so far was above the
    threshold and outside the disks of the picks before it. Up to the first invalid pick the scattered maps
    are the official ones, so the valid picks are identical; what the loop does after it is discarded.
    """
    n, h, w = heatmap.shape
    flat = heatmap.reshape(n, h * w)
    neighbours = disk_neighbours(h, w, radius, heatmap.device)
    if not isinstance(threshold, torch.Tensor):
        threshold = torch.full((n,), threshold, dtype=heatmap.dtype, device=heatmap.device)
    threshold = threshold.to(heatmap.dtype)[:, None]                          # (N, 1)
    fill = threshold.expand(n, neighbours.shape[1])
    work = flat
    picks = []
    for _ in range(max_peaks):
        index = work.argmax(dim=1)                          # first maximum in row-major order
        picks.append(index)
        if not _fixed_iterations() and not bool((work.gather(1, index[:, None]) > threshold).any()):
            break
        work = work.scatter(1, neighbours[index], fill)     # the pick and its disk drop to the threshold
    index = stack_in_groups(picks)                          # (N, k)
    value = flat.gather(1, index)
    rc = torch.stack((index // w, index % w), dim=2)
    gap2 = ((rc[:, :, None, :] - rc[:, None, :, :]) ** 2).sum(dim=3)        # (N, k, k) squared pixel distance
    earlier = torch.ones(index.shape[1], index.shape[1], dtype=torch.bool, device=heatmap.device).tril(-1)
    in_earlier_disk = ((gap2 <= radius * radius) & earlier).any(dim=2)
    failed = (value <= threshold) | in_earlier_disk
    valid = torch.cumsum(failed.to(torch.int64), dim=1) == 0
    if index.shape[1] < max_peaks:  # eager early stop: pad to the fixed size
        pad = max_peaks - index.shape[1]
        rc = F.pad(rc, (0, 0, 0, pad))
        value = F.pad(value, (0, pad))
        valid = F.pad(valid, (0, pad), value=False)
    value = torch.where(valid, value, threshold.expand_as(value))
    return Peaks(torch.where(valid[..., None], rc, torch.zeros_like(rc)), value, valid)


def greedy_peaks_of_two(first: torch.Tensor, second: torch.Tensor, thresholds: tuple[float, float], radius: float,
                        max_peaks: tuple[int, int]) -> tuple[Peaks, Peaks]:
    """`greedy_peaks` of two sets of (N, H, W) maps in one loop (stacked on the batch axis), each with its own
    threshold and cap: the same peaks as two calls, in max(caps) iterations instead of their sum (the loop's
    iterations are what a GPU spends its time on; the first k picks of a longer run are the run capped at k)."""
    n = first.shape[0]
    threshold = torch.cat([torch.full((n,), thresholds[0], dtype=first.dtype, device=first.device),
                           torch.full((n,), thresholds[1], dtype=first.dtype, device=first.device)])
    both = greedy_peaks(torch.cat([first, second.to(first.dtype)]), threshold, radius, max(max_peaks))
    return tuple(Peaks(both.rc[part][:, :cap], both.value[part][:, :cap], both.valid[part][:, :cap])
                 for part, cap in ((slice(0, n), max_peaks[0]), (slice(n, 2 * n), max_peaks[1])))


def maxpool_peaks(heatmap: torch.Tensor, threshold: float, radius: float, max_peaks: int) -> Peaks:
    """Fixed-K max-pool NMS + top-k (see module docstring). heatmap: (N, H, W) -> Peaks, K = max_peaks."""
    h, w = heatmap.shape[1:]
    k = 2 * int(radius) + 1
    pooled = F.max_pool2d(heatmap[:, None], k, stride=1, padding=k // 2)[:, 0]
    is_peak = (heatmap == pooled) & (heatmap > threshold)
    score = torch.where(is_peak, heatmap, torch.full_like(heatmap, float("-inf"))).reshape(-1, h * w)
    value, index = score.topk(max_peaks, dim=1)
    valid = value > threshold
    rc = torch.stack((index // w, index % w), dim=2)
    rc = torch.where(valid[..., None], rc, torch.zeros_like(rc))
    value = torch.where(valid, value, torch.full_like(value, threshold))
    return Peaks(rc, value, valid)


PEAK_DETECTORS = {"greedy": greedy_peaks, "maxpool": maxpool_peaks}


class Tokens(NamedTuple):
    """Token layout given to the transformer (S = max_tokens slots)."""

    xy: torch.Tensor     # (N, S, 2) float, (x = col, y = row) in grid pixels; padding (0, 0)
    norm: torch.Tensor   # (N, S, 2) float, normalised sampling coords (x, y) in [-1, 1]; padding (-1, -1)
    kind: torch.Tensor   # (N, S) int64 token type: 1 hand, 43 object, 0 padding
    valid: torch.Tensor  # (N, S) bool


def assemble_tokens(hand: Peaks, obj: Optional[Peaks], max_tokens: int, grid_size: int) -> Tokens:
    """Hand peaks first, then object samples, then padding, in `max_tokens` slots.

    Valid entries of `hand`/`obj` must be prefixes (as the detectors return them). Coordinates are
    normalised for `grid_sample(align_corners=True)`: (pixel - c) / c with c = (grid_size - 1) / 2.
    """
    n = hand.rc.shape[0]
    device = hand.rc.device
    slot = torch.arange(max_tokens, device=device).view(1, max_tokens).expand(n, max_tokens)
    n_hand = hand.valid.sum(dim=1, keepdim=True)
    hand_idx = slot.clamp(max=hand.rc.shape[1] - 1)
    rc = torch.gather(hand.rc, 1, hand_idx[..., None].expand(n, max_tokens, 2))
    is_hand = slot < n_hand
    kind = torch.where(is_hand, torch.full_like(slot, HAND_TOKEN), torch.full_like(slot, PAD_TOKEN))
    if obj is not None:
        n_obj = obj.valid.sum(dim=1, keepdim=True)
        obj_idx = (slot - n_hand).clamp(min=0, max=obj.rc.shape[1] - 1)
        obj_rc = torch.gather(obj.rc, 1, obj_idx[..., None].expand(n, max_tokens, 2))
        is_obj = (~is_hand) & (slot < n_hand + n_obj)
        rc = torch.where(is_obj[..., None], obj_rc, rc)
        kind = torch.where(is_obj, torch.full_like(slot, OBJECT_TOKEN), kind)
    valid = kind != PAD_TOKEN
    return tokens_from_locations(rc.flip(-1).to(torch.float32), valid, kind, grid_size)


def select_tokens(config: KptConfig, heatmap: torch.Tensor, seg: Optional[torch.Tensor]) -> Tokens:
    """Peaks of the hand map and, for object configs, samples of the object segmentation -> Tokens.

    heatmap, seg: (N, G, G) maps on the `config.heatmap_size` grid, in the units the thresholds are
    given in (255-scaled Gaussian targets); seg is ignored (may be None) when `config.has_object` is
    False. Uses `config.selection`'s detector with the config's thresholds, radius and token counts (the
    greedy one on both maps in one loop).
    """
    if config.has_object and config.selection == "greedy":
        hand, obj = greedy_peaks_of_two(heatmap, seg, (config.hand_threshold, config.object_threshold),
                                        config.nms_radius, (config.max_hand_tokens, config.max_object_tokens))
        return assemble_tokens(hand, obj, config.max_tokens, config.heatmap_size)
    detect = PEAK_DETECTORS[config.selection]
    hand = detect(heatmap, config.hand_threshold, config.nms_radius, config.max_hand_tokens)
    obj = None
    if config.has_object:
        obj = detect(seg, config.object_threshold, config.nms_radius, config.max_object_tokens)
    return assemble_tokens(hand, obj, config.max_tokens, config.heatmap_size)


def tokens_from_locations(xy: torch.Tensor, valid: torch.Tensor, kind: torch.Tensor, grid_size: int) -> Tokens:
    """Tokens at given positions (e.g. ground-truth joints early in training).

    xy: (N, S, 2) (x, y) in grid pixels (sub-pixel allowed); valid: (N, S) bool; kind: (N, S) int64
    token types (1 hand / 43 object; forced to 0 where not valid).
    """
    centre = (grid_size - 1) / 2.0
    norm = (xy - centre) / centre
    norm = torch.where(valid[..., None], norm, torch.full_like(norm, -1.0))
    kind = torch.where(valid, kind, torch.zeros_like(kind))
    xy = torch.where(valid[..., None], xy, torch.zeros_like(xy))
    return Tokens(xy, norm, kind, valid)
