"""ONNX Runtime against torch on the same seeded batch, output by output, for any family's export.

Floats are compared relative to the output's largest magnitude (probabilities against 1); integer and
boolean outputs by the count of differing elements. Outputs that depend on a top-k / argmax near-tie
are left out where the family says so (`ModelFamily.tie_free_outputs`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from .onnx import ort_session

# Relative tolerance: max |ORT - torch| / max |torch| per output (the families' ONNX tests).
CHECK_RTOL = 1e-4
# With compact weight storage ONNX Runtime runs on rounded weights (int8 / fp16) while torch keeps fp32.
CHECK_RTOL_COMPACT = 5e-2
# Outputs smaller than this overall are compared against it instead (a relative error of float noise on
# an all-but-zero output means nothing).
CHECK_SCALE_FLOOR = 1e-3
CHECK_BATCH = 2  # > 1, so that the dynamic batch axis is exercised
# Outputs bounded in [0, 1]: compared in absolute terms (near 0 for untrained weights, where a relative
# error means nothing).
PROBABILITY_OUTPUTS = ("hand_type", "joint_confidence", "hand_presence")


@dataclass
class CheckRow:
    """One output. Floats: `error` = max |ORT - torch|, `relative` = error / max(max |torch|,
    CHECK_SCALE_FLOOR). Integers / booleans: `error` = number of differing elements, `relative` None."""

    name: str
    error: float
    relative: Optional[float]
    checked: bool             # False: the output depends on a top-k / argmax tie that differed
    ok: bool

    def format(self) -> str:
        status = ("ok" if self.ok else "FAIL") if self.checked else "tie-dependent, not checked"
        if self.relative is None:
            return f"  {self.name:18s} {int(self.error)} elements differ  {status}"
        return f"  {self.name:18s} max abs diff {self.error:.3e}  relative {self.relative:.2e}  {status}"


@dataclass
class CheckResult:
    rows: list
    ok: bool
    note: str
    rtol: float

    @property
    def worst_relative(self) -> float:
        return max((r.relative for r in self.rows if r.checked and r.relative is not None), default=0.0)

    def as_dict(self) -> dict:
        return {"passed": self.ok, "worst_relative_error": self.worst_relative, "rtol": self.rtol, "note": self.note,
                "outputs": {r.name: {"error": r.error, "relative": r.relative, "checked": r.checked}
                            for r in self.rows}}


def compare_output(name: str, got: np.ndarray, ref: np.ndarray, checked: bool, rtol: Optional[float] = None) -> CheckRow:
    """Compare one output; probabilities are measured against 1 (absolute), others against max |ref|."""
    if got.shape != ref.shape:
        return CheckRow(name, float("inf"), float("inf"), True, False)
    if ref.dtype.kind in "biu":
        differ = int(np.count_nonzero(got != ref))
        return CheckRow(name, float(differ), None, checked, differ == 0 or not checked)
    err = float(np.abs(got.astype(np.float64) - ref.astype(np.float64)).max()) if ref.size else 0.0
    floor = 1.0 if name in PROBABILITY_OUTPUTS else CHECK_SCALE_FLOOR
    relative = err / max(float(np.abs(ref).max()) if ref.size else 0.0, floor)
    ok = bool(np.isfinite(relative)) and relative <= (CHECK_RTOL if rtol is None else rtol)
    return CheckRow(name, err, relative, checked, ok or not checked)


def check_export(family, model, path: str | Path, rtol: float = CHECK_RTOL, threads: int = 2) -> CheckResult:
    """ONNX Runtime on the file at `path` vs the family's inference graph of `model` in torch, on a seeded
    random batch of CHECK_BATCH."""
    config = model.config
    input_names, output_names = family.input_names(config), family.output_names(config)
    inputs = family.example_inputs(model, CHECK_BATCH, torch.Generator().manual_seed(0))
    session = ort_session(path, threads=threads)
    got = dict(zip(output_names, session.run(None, {n: t.numpy() for n, t in zip(input_names, inputs)})))
    with torch.no_grad():
        expected = {n: t.numpy() for n, t in zip(output_names, family.inference_graph(model)(*inputs))}
    checked, note = family.tie_free_outputs(config, got, expected)
    rows = [compare_output(n, np.asarray(got[n]), expected[n], n in checked, rtol) for n in output_names]
    return CheckResult(rows, all(r.ok for r in rows), note, rtol)
