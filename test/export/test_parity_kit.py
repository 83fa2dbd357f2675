"""The shared comparison of the parity runners (`parity_kit.compare_all`), on small synthetic kits."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hand_object_pose.export.parity_kit import DEFAULT_RTOL, ParityKit, compare_all, subsample, subsampling_rule

RNG = np.random.default_rng(0)
FEATURE = RNG.standard_normal((1, 8, 4, 4)).astype(np.float32)      # "full" tensor of our model
FEATURE_NOTE = {"full_shape": [1, 8, 4, 4], "subsampled": "axis 1 taken with step 4 (indices 0, 4, 2*4, ...)"}


def make_kit(arrays: dict, descriptions: dict | None = None, kept_official=()) -> ParityKit:
    """A kit as `load_kit` returns it, minus the weights (compare_all never reads them)."""
    meta = {"arrays": {name: {"shape": list(a.shape), **(descriptions or {}).get(name, {})}
                       for name, a in arrays.items()}}
    return ParityKit("synthetic", Path("."), Path("."), {"kept_official": list(kept_official)}, meta, arrays, None)


def rows(report) -> dict:
    return {row.name: row for row in report.rows}


def test_subsampling_notes_in_both_documented_forms():
    full = np.arange(2 * 10 * 3).reshape(2, 10, 3)
    np.testing.assert_array_equal(subsample(full, FEATURE_NOTE | {"full_shape": [2, 10, 3]}), full[:, [0, 4, 8]])
    assert subsampling_rule({"subsampled": "(ax2/16 of 6x1x1600x256)"}) == (2, 16)
    np.testing.assert_array_equal(subsample(full, {}), full)
    with pytest.raises(ValueError, match="unrecognised subsampling note"):
        subsampling_rule({"subsampled": "every other row"})


def test_matching_arrays_pass_and_subsampled_ones_are_compared_on_the_stored_indices():
    kit = make_kit({"input/img": np.zeros((1, 3, 2, 2), np.float32), "backbone/feat": FEATURE[:, ::4].copy(),
                    "out/mask": np.array([True, False]), "out/index": np.array([3, 1], np.int64)},
                   {"backbone/feat": FEATURE_NOTE})
    ours = {"backbone/feat": FEATURE * (1 + 1e-6), "out/mask": np.array([True, False]),
            "out/index": np.array([3, 1], np.int32)}
    report = compare_all(kit, ours, {"input/img": "model input"})
    assert report.ok, report.format()
    assert report.not_compared == {"input/img": "model input"}
    assert set(rows(report)) == {"backbone/feat", "out/mask", "out/index"}
    assert rows(report)["backbone/feat"].tolerance == DEFAULT_RTOL
    assert "ax1/4 of 1x8x4x4" in rows(report)["backbone/feat"].note


def test_a_kit_array_neither_produced_nor_declared_an_input_fails():
    kit = make_kit({"out/joints": np.ones((2, 3), np.float32), "decoder/extra_intermediate": np.ones(4, np.float32)})
    report = compare_all(kit, {"out/joints": np.ones((2, 3), np.float32)}, {})
    assert not report.ok
    extra = rows(report)["decoder/extra_intermediate"]
    assert not extra.ok and "not produced" in extra.note
    assert rows(report)["out/joints"].ok and "decoder/extra_intermediate" not in report.not_compared


def test_an_array_cannot_be_both_produced_and_declared_not_compared():
    kit = make_kit({"out/template": np.ones(3, np.float32)})
    with pytest.raises(ValueError, match="out/template"):
        compare_all(kit, {"out/template": np.ones(3, np.float32)}, {"out/template": "fed in"})


def test_kept_official_tensors_are_skipped_unless_the_runner_compares_them():
    kit = make_kit({"kept/a.eps": np.zeros(1, np.float32), "kept/anchors": np.ones((2, 2), np.float32)},
                   kept_official=("a.eps", "anchors"))
    report = compare_all(kit, {"kept/anchors": np.ones((2, 2), np.float32)}, {})
    assert report.ok and set(report.not_compared) == {"kept/a.eps"} and set(rows(report)) == {"kept/anchors"}
    # a kept/ array the spec does not list is unknown, so it fails
    report = compare_all(make_kit({"kept/b": np.zeros(1, np.float32)}), {}, {})
    assert not report.ok


def test_errors_beyond_tolerance_wrong_integers_and_wrong_full_shapes_fail():
    ref = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    kit = make_kit({"gcn/proj": ref, "heads/x": ref, "out/index": np.array([1, 2]),
                    "backbone/feat": FEATURE[:, ::4].copy()}, {"backbone/feat": FEATURE_NOTE})
    off = ref + np.float32(5e-4)                                       # 5e-4 relative to max|ref| = 1
    ours = {"gcn/proj": off, "heads/x": off, "out/index": np.array([1, 3]), "backbone/feat": FEATURE[0]}
    report = compare_all(kit, ours, {}, tolerances={r"gcn/": 1e-3})
    by_name = rows(report)
    assert by_name["gcn/proj"].ok and by_name["gcn/proj"].tolerance == 1e-3   # per-array tolerance
    assert not by_name["heads/x"].ok                                           # default 1e-4
    assert not by_name["out/index"].ok and by_name["out/index"].tolerance == 0.0
    assert not by_name["backbone/feat"].ok and "full shape" in by_name["backbone/feat"].note
    assert not report.ok


def test_notes_are_attached_by_pattern():
    kit = make_kit({"decoder/hs": np.ones(2, np.float32), "backbone/c5": np.ones(2, np.float32)})
    ours = {"decoder/hs": np.ones(2, np.float32), "backbone/c5": np.ones(2, np.float32)}
    by_name = rows(compare_all(kit, ours, {}, notes={r"decoder/": "ran on the kit's tokens"}))
    assert by_name["decoder/hs"].note == "ran on the kit's tokens" and by_name["backbone/c5"].note == ""
