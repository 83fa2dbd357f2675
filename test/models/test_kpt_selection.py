"""Keypoint selection: the official greedy peak NMS, the fixed-K max-pool variant, token packing."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hand_object_pose.models.kpt import KptConfig
from hand_object_pose.models.kpt.selection import (HAND_TOKEN, OBJECT_TOKEN, PAD_TOKEN, Peaks, assemble_tokens,
                                                   disk_neighbours, greedy_peaks, greedy_peaks_of_two, maxpool_peaks, select_tokens,
                                                   tokens_from_locations)


def reference_greedy(heatmap: np.ndarray, threshold: float, radius: float, cap: int):
    """The official rule written as plainly as possible (pixel loops)."""
    work = heatmap.astype(np.float64).copy()
    h, w = work.shape
    peaks, values = [], []
    while work.max() > threshold and len(peaks) < cap:
        flat = int(np.argmax(work))          # first maximum in row-major order
        r, c = divmod(flat, w)
        peaks.append((r, c))
        values.append(work[r, c])
        for i in range(h):
            for j in range(w):
                if (i - r) ** 2 + (j - c) ** 2 <= radius ** 2:
                    work[i, j] = threshold
    return np.array(peaks, dtype=np.int64).reshape(-1, 2), np.array(values)


def blobs(seed: int, size: int = 32, count: int = 12) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    out = np.zeros((size, size))
    for _ in range(count):
        cy, cx = rng.uniform(0, size, 2)
        sigma = rng.uniform(0.8, 4.0)
        out += rng.uniform(10, 60) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma ** 2))
    return out.astype(np.float32)


@pytest.mark.parametrize("seed", range(4))
def test_greedy_peaks_match_the_reference_rule(seed):
    maps = np.stack([blobs(seed), blobs(seed + 10)])
    peaks = greedy_peaks(torch.from_numpy(maps), threshold=20.0, radius=5.0, max_peaks=30)
    for b in range(2):
        rc, values = reference_greedy(maps[b], 20.0, 5.0, 30)
        assert len(rc) > 3  # the maps are built to have several peaks
        valid = peaks.valid[b].numpy()
        np.testing.assert_array_equal(peaks.rc[b].numpy()[valid], rc)
        np.testing.assert_allclose(peaks.value[b].numpy()[valid], values, rtol=1e-6)
        assert valid[: len(rc)].all() and not valid[len(rc):].any()


def test_greedy_peaks_match_the_reference_rule_on_a_full_size_crowded_map():
    """128x128, radius 5, 100 peaks as the KPT presets run it: many blobs, a plateau (ties) and a cap that cuts
    the list, so the scatter loop's picks after the last valid one and the end-of-loop validity are exercised."""
    heat = blobs(5, size=128, count=150)
    heat[40:46, 70:80] = 75.0                                 # a flat top: row-major ties inside it
    for cap in (100, 300):
        peaks = greedy_peaks(torch.from_numpy(heat[None]), 20.0, 5.0, cap)
        rc, values = reference_greedy(heat, 20.0, 5.0, cap)
        valid = peaks.valid[0].numpy()
        np.testing.assert_array_equal(peaks.rc[0].numpy()[valid], rc)
        np.testing.assert_allclose(peaks.value[0].numpy()[valid], values, rtol=1e-6)
        assert valid.sum() == len(rc) and valid[: len(rc)].all()
        assert (peaks.rc[0].numpy()[~valid] == 0).all() and (peaks.value[0].numpy()[~valid] == 20.0).all()
    assert 100 < len(reference_greedy(heat, 20.0, 5.0, 300)[0]) < 300  # cap 100 cuts the list, 300 runs past it


@pytest.mark.parametrize("caps", [(50, 50), (12, 30)])
def test_greedy_peaks_of_two_maps_in_one_loop_equal_two_separate_calls(caps):
    hand = torch.from_numpy(np.stack([blobs(s, size=64, count=60) for s in (1, 2)]))
    seg = torch.from_numpy(np.stack([blobs(s, size=64, count=40) for s in (3, 4)])) * 0.5
    together = greedy_peaks_of_two(hand, seg, (20.0, 12.0), 3.0, caps)
    alone = greedy_peaks(hand, 20.0, 3.0, caps[0]), greedy_peaks(seg, 12.0, 3.0, caps[1])
    for got, want in zip(together, alone):
        for a, b in zip(got, want):
            assert torch.equal(a, b)
    assert 5 < int(together[1].valid.sum(1).min()) and int(together[0].valid.sum(1).min()) >= min(caps[0], 20)


def test_disk_neighbours_are_the_pixels_within_the_radius_clipped_to_the_map():
    table = disk_neighbours(9, 7, 2.0).numpy()
    assert table.shape == (63, 13)            # 13 pixels within distance 2 of a pixel
    for index in (0, 6, 31, 62):
        r, c = divmod(index, 7)
        want = {i * 7 + j for i in range(9) for j in range(7) if (i - r) ** 2 + (j - c) ** 2 <= 4}
        assert set(table[index].tolist()) == want   # off-map offsets repeat the pixel itself


def test_greedy_peaks_break_ties_row_major_and_respect_the_cap():
    heat = torch.zeros(1, 16, 16)
    heat[0, 3, 9] = heat[0, 3, 2] = heat[0, 12, 1] = 50.0   # equal values: row-major order wins
    heat[0, 3, 4] = 49.0                                    # within radius of (3, 2): suppressed
    peaks = greedy_peaks(heat, 20.0, 5.0, max_peaks=2)
    assert peaks.rc[0].tolist() == [[3, 2], [3, 9]]
    assert peaks.valid.all()
    peaks = greedy_peaks(heat, 20.0, 5.0, max_peaks=5)
    assert peaks.rc[0, :3].tolist() == [[3, 2], [3, 9], [12, 1]]
    assert peaks.valid[0].tolist() == [True, True, True, False, False]


def test_greedy_peaks_on_an_empty_map_are_all_invalid():
    peaks = greedy_peaks(torch.full((2, 8, 8), 5.0), 20.0, 5.0, max_peaks=4)
    assert peaks.rc.shape == (2, 4, 2) and not peaks.valid.any()


def test_maxpool_peaks_keep_local_maxima_only():
    maps = torch.from_numpy(np.stack([blobs(3)]))
    peaks = maxpool_peaks(maps, 20.0, 5.0, max_peaks=30)
    valid = peaks.valid[0]
    rc = peaks.rc[0][valid]
    heat = maps[0]
    for r, c in rc.tolist():
        window = heat[max(r - 5, 0): r + 6, max(c - 5, 0): c + 6]
        assert heat[r, c] == window.max() and heat[r, c] > 20
    values = peaks.value[0][valid]
    assert torch.all(values[:-1] >= values[1:])
    # every max-pool peak is also a greedy peak on well-separated blobs' maxima: the global max is first
    assert rc[0].tolist() == greedy_peaks(maps, 20.0, 5.0, 30).rc[0, 0].tolist()


def test_assemble_tokens_packs_hand_then_object_then_padding():
    hand = Peaks(torch.tensor([[[1, 2], [3, 4], [0, 0]]]), torch.tensor([[30.0, 25.0, 20.0]]),
                 torch.tensor([[True, True, False]]))
    obj = Peaks(torch.tensor([[[5, 6], [0, 0]]]), torch.tensor([[40.0, 15.0]]), torch.tensor([[True, False]]))
    tokens = assemble_tokens(hand, obj, max_tokens=5, grid_size=128)
    assert tokens.kind[0].tolist() == [HAND_TOKEN, HAND_TOKEN, OBJECT_TOKEN, PAD_TOKEN, PAD_TOKEN]
    assert tokens.xy[0].tolist() == [[2, 1], [4, 3], [6, 5], [0, 0], [0, 0]]  # (x = col, y = row)
    assert tokens.valid[0].tolist() == [True, True, True, False, False]
    np.testing.assert_allclose(tokens.norm[0, 0].numpy(), [(2 - 63.5) / 63.5, (1 - 63.5) / 63.5])
    assert tokens.norm[0, 3].tolist() == [-1.0, -1.0]


def test_tokens_from_locations_mask_invalid_entries():
    xy = torch.tensor([[[10.5, 20.0], [127.0, 0.0]]])
    tokens = tokens_from_locations(xy, torch.tensor([[True, False]]), torch.tensor([[1, 1]]), 128)
    assert tokens.kind[0].tolist() == [1, 0]
    np.testing.assert_allclose(tokens.norm[0].numpy(), [[(10.5 - 63.5) / 63.5, (20 - 63.5) / 63.5], [-1, -1]])


@pytest.mark.parametrize("selection", ["greedy", "maxpool"])
def test_select_tokens_uses_the_configured_detector_thresholds_and_caps(selection):
    cfg = KptConfig(has_object=True, selection=selection, heatmap_size=32, max_tokens=12, max_object_tokens=4,
                    hand_threshold=20.0, object_threshold=15.0, nms_radius=3.0)
    heatmap = torch.from_numpy(np.stack([blobs(0), blobs(1)]))
    seg = torch.from_numpy(np.stack([blobs(2), blobs(3)]))
    tokens = select_tokens(cfg, heatmap, seg)
    detect = {"greedy": greedy_peaks, "maxpool": maxpool_peaks}[selection]
    hand, obj = detect(heatmap, 20.0, 3.0, 8), detect(seg, 15.0, 3.0, 4)
    expected = assemble_tokens(hand, obj, 12, 32)
    for got, want in zip(tokens, expected):
        assert torch.equal(got, want)
    n_hand = hand.valid.sum(1)
    assert torch.equal((tokens.kind == HAND_TOKEN).sum(1), n_hand) and int(n_hand.max()) <= 8
    assert torch.equal((tokens.kind == OBJECT_TOKEN).sum(1), obj.valid.sum(1))


def test_select_tokens_without_object_ignores_the_segmentation():
    cfg = KptConfig(heatmap_size=32, max_tokens=6, nms_radius=3.0)
    heatmap = torch.from_numpy(blobs(0))[None]
    tokens = select_tokens(cfg, heatmap, None)
    assert not (tokens.kind == OBJECT_TOKEN).any()
    assert torch.equal(tokens.xy, assemble_tokens(greedy_peaks(heatmap, 20.0, 3.0, 6), None, 6, 32).xy)
