"""Dense Mutual Attention parity against the official code's arrays (shared parity kit)."""
from __future__ import annotations

import numpy as np
import pytest

from hand_object_pose.export.parity_dma import NOT_OUTPUTS, run_parity
from hand_object_pose.export.parity_kit import SHARED_PARITY_DIR, kept_official_arrays, load_kit
from hand_object_pose.tools import parity

CONFIG = "dma_ho3d"


@pytest.fixture(scope="module")
def kit():
    return load_kit(CONFIG, SHARED_PARITY_DIR)


def test_every_kit_array_is_compared_and_within_tolerance(kit):
    report = run_parity(kit)
    assert report.ok, report.format()
    compared = {row.name for row in report.rows}
    skipped = {name for name in report.not_compared if not name.startswith("(")}
    assert compared | skipped == set(kit.arrays)
    assert skipped == (set(NOT_OUTPUTS) | set(kept_official_arrays(kit))) & set(kit.arrays)
    # the template is fed into the model from the kit, so it is an input, not a compared output
    assert {"out/obj_verts_template", "out/obj_faces"} <= skipped
    for name in ("meshnet_hand/rough_verts", "gcn/input_obj", "graph/obj_edge_index", "gcn/attn_A_h",
                 "gcn/res1_h_discarded", "gcn/tail_o", "refine/obj_rot", "out/hand_joints_out",
                 "assets/joint_regressor_21x778"):
        assert name in compared
    # The official MANO buffers are reported as deliberately unused, with the loaded count.
    assert "human_model_layer.th_faces" in report.not_compared["(checkpoint conversion)"]


def test_rgb_input_breaks_parity(kit):
    """The official network sees BGR; feeding the channels reversed must be caught by the check."""
    flipped = dict(kit.arrays)
    flipped["input/img"] = np.ascontiguousarray(kit.arrays["input/img"][:, ::-1])
    kit_rgb = type(kit)(**{**kit.__dict__, "arrays": flipped})
    report = run_parity(kit_rgb)
    assert not report.ok
    failing = {row.name for row in report.rows if not row.ok}
    assert "backbone_hand/c5" in failing and "out/hand_joints_out" in failing


def test_cli_exit_code_reflects_parity(capsys):
    assert parity.main([CONFIG, str(SHARED_PARITY_DIR)]) == 0
    assert "59/59 arrays within tolerance" in capsys.readouterr().out
