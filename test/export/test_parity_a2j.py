"""A2J-Transformer parity against the official code's arrays (shared parity kit)."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from hand_object_pose.export.parity_a2j import run_parity
from hand_object_pose.export.parity_kit import SHARED_PARITY_DIR, load_kit
from hand_object_pose.tools import parity

CONFIG = "a2j_ih26m"


@pytest.fixture(scope="module")
def kit():
    return load_kit(CONFIG, SHARED_PARITY_DIR)


def test_every_kit_array_is_compared_and_within_tolerance(kit):
    report = run_parity(kit)
    assert report.ok, report.format()
    compared = {row.name for row in report.rows}
    assert set(report.not_compared) == {"input/img", "input/img_uint8"}
    assert compared | set(report.not_compared) == set(kit.arrays)
    # The kit provides intermediates of every stage; all of them must be among the compared arrays.
    for name in ("backbone/c5_layer4_dilated", "input_proj/level3", "encoder/memory", "decoder/hs",
                 "decoder/cross_attn_out_l0", "heads/anchor_weight_logits", "out/joint_coord"):
        assert name in compared


def test_cli_fails_on_a_kit_whose_reference_differs(tmp_path, kit):
    for name in ("parity_spec.json", f"{CONFIG}.json", "parity_weights.py"):
        shutil.copy(SHARED_PARITY_DIR / name, tmp_path / name)
    arrays = dict(kit.arrays)
    joints = arrays["out/joint_coord"].copy()
    joints[0, 5, 2] += 1e-2 * np.abs(joints).max()        # 1e-2 relative: far beyond tolerance
    arrays["out/joint_coord"] = joints
    np.savez_compressed(tmp_path / f"{CONFIG}.npz", **arrays)
    assert parity.main([CONFIG, str(tmp_path)]) == 1
