"""bench/device_check.py, the GPU check prepared for a lent GPU machine, runs end to end here with the CPU
provider standing in for CUDA (--dry-run-cpu), and without a CUDA provider it says so and exits 0."""
import subprocess
import sys
from pathlib import Path

import onnxruntime
import pytest

REPO = Path(__file__).resolve().parents[2]


def run(*args, timeout=600):
    return subprocess.run([sys.executable, str(REPO / "bench" / "device_check.py"), *args], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO)


@pytest.mark.skipif("CUDAExecutionProvider" in onnxruntime.get_available_providers(), reason="CUDA is here")
def test_without_cuda_it_skips_with_one_line():
    done = run("--presets")
    assert done.returncode == 0, done.stderr
    assert "no CUDA provider" in done.stdout


def test_dry_run_measures_a_preset_and_prints_its_row(tmp_path):
    done = run("--dry-run-cpu", "--presets", "kpt_h2o3d_3d_lite", "--runs", "2", "--default-dir", str(tmp_path),
               "--trt-cache", str(tmp_path / "trt"))
    assert done.returncode == 0, done.stderr[-2000:]
    rows = {line.split("|")[4].strip(): line for line in done.stdout.splitlines()
            if line.startswith("| kpt_h2o3d_3d_lite |")}
    assert set(rows) == {"CUDA fp32 (CPUExecutionProvider)", "CUDA fp32 static batch (CPUExecutionProvider)",
                         "CUDA fp16 (CPUExecutionProvider)"}, rows
    for label, row in rows.items():
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert float(cells[5]) > 0, row                # FPS
        drift = float(cells[10].split(";")[0])
        # The same provider and graph as the reference: no drift; the float16 graph: half precision's.
        assert drift < (1e-5 if "fp16" not in label else 2e-2), row


def test_torch_check_without_cuda_skips_with_one_line():
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is here")
    done = subprocess.run([sys.executable, str(REPO / "bench" / "device_torch_check.py"), "--presets"],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith("device_torch_check: no CUDA device")
