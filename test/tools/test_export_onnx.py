"""`python -m hand_object_pose.tools.export_onnx`: checkpoint -> ONNX file the node's Estimator accepts.

A tiny KPT variant (ResNet-18, one encoder and one decoder layer) keeps the training-checkpoint path
fast; the official `.pth.tar` path uses the parity kit's official-format weights for
`kypt_ih26m_2p5d` (the released configuration), whose file the command must turn into a graph that
reproduces the official network's own outputs on the kit's input.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hand_object_pose.models.kpt.inference_graph import KptInferenceGraph
from hand_object_pose.export.parity_kit import SHARED_PARITY_DIR, load_kit
from hand_object_pose.geometry.camera import CameraIntrinsics
from hand_object_pose.inference.estimator import Estimator, EstimatorConfig
from hand_object_pose.models.kpt import PRESETS, build
from hand_object_pose.tools import export_onnx
from hand_object_pose.export.check import compare_output
from hand_object_pose.export.preset_export import ExportError, template_assets
from hand_object_pose.tools.export_onnx import main

REPO = Path(__file__).resolve().parents[2]
PRESET = "kpt_h2o3d_3d"
TINY = {"backbone_depth": 18, "enc_layers": 1, "dec_layers": 1, "selection": "maxpool"}
TINY_ARGS = [arg for name, value in TINY.items() for arg in ("--override", f"{name}={value}")]
CAMERA = CameraIntrinsics(600.0, 600.0, 320.0, 240.0, width=640, height=480)


def run_command(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hand_object_pose.tools.export_onnx", *map(str, args)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A training-engine checkpoint (`runs/<name>/latest.pt` layout) of the tiny variant, and its model."""
    torch.manual_seed(3)
    model = build(dataclasses.replace(PRESETS[PRESET], **TINY)).eval()
    path = tmp_path_factory.mktemp("run") / "latest.pt"
    torch.save({"model": model.state_dict(), "optimizer": {}, "epoch": 4, "step": 120, "task": "kpt",
                "config": {"epochs": 5}}, path)
    return path, model


def test_training_checkpoint_exports_checks_and_runs_in_the_estimator(tiny_run, tmp_path):
    checkpoint, model = tiny_run
    out = tmp_path / "models" / f"{PRESET}.onnx"
    done = run_command(PRESET, out, "--checkpoint", checkpoint, *TINY_ARGS, "--check")
    assert done.returncode == 0, done.stderr
    assert "PASS" in done.stdout and "RANDOM" not in done.stderr
    assert not list(out.parent.glob("*.partial"))

    meta = json.loads((out.parent / f"{PRESET}.onnx.json").read_text())
    assert meta["preset"] == PRESET and meta["family"] == "kpt" and meta["overrides"] == TINY
    assert meta["weights"] == {"trained": True, "source": "training engine", "checkpoint": str(checkpoint.resolve()),
                               "sha256": sha256(checkpoint), "epoch": 4, "step": 120, "task": "kpt"}
    assert meta["onnx"]["sha256"] == sha256(out) and meta["onnx"]["opset"] == 17
    assert meta["onnx"]["inputs"] == ["image"] and "joints_3d" in meta["onnx"]["outputs"]
    assert meta["input"]["size"] == 256 and meta["input"]["channels"] == "RGB"
    assert meta["joint_order"]["joints"][0] == "thumb4" and meta["joint_order"]["joints"][20] == "wrist"
    assert meta["token_selection"] == "maxpool" and meta["versions"]["torch"] == torch.__version__
    assert meta["check"]["passed"] and meta["check"]["worst_relative_error"] <= 1e-4

    # The node's own loader accepts the file as the preset's network (no overrides: the file fixes them) ...
    estimator = Estimator(EstimatorConfig(model=PRESET, model_path=str(out), warmup_runs=0, threads=1))
    assert estimator.backend_in_use == "onnxruntime:CPUExecutionProvider"
    image = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    result = estimator.estimate(image, CAMERA, stamp_s=1.0)
    assert result.model == PRESET and [h.side for h in result.hands] == ["right", "left"]
    assert all(np.isfinite(h.joints_xyz).all() for h in result.hands)
    # ... and it computes with the checkpoint's weights, not fresh random ones.
    crop = image[100:356, 200:456]
    got = estimator.run_network(crop)
    with torch.no_grad():
        tensor = torch.from_numpy(crop.transpose(2, 0, 1)[None].astype(np.float32) / 255.0)
        expected = dict(zip(KptInferenceGraph(model).names, KptInferenceGraph(model)(tensor)))
    for name in ("heatmap", "hand_type", "joints_3d", "obj_trans"):
        ref = expected[name].numpy()
        assert np.abs(got[name] - ref).max() <= 1e-4 * max(np.abs(ref).max(), 1e-3), name


@pytest.mark.skipif(not (SHARED_PARITY_DIR / "parity_spec.json").is_file(), reason="parity kit not available")
def test_official_pth_tar_reproduces_the_official_network_through_the_estimator(tmp_path):
    kit = load_kit("kypt_ih26m_2p5d", SHARED_PARITY_DIR)
    official = tmp_path / "snapshot_kpt_ih26m.pth.tar"
    # The authors' layout: a training dict whose `network` is a DataParallel state dict.
    torch.save({"epoch": 49, "network": {"module." + k: torch.from_numpy(np.array(v))
                                         for k, v in kit.official_state_dict().items()}}, official)
    out = tmp_path / "kpt_ih26m_2p5d.onnx"
    assert main(["kpt_ih26m_2p5d", str(out), "--checkpoint", str(official)]) == 0  # in-process: saves a start-up
    meta = json.loads(out.with_name(out.name + ".json").read_text())
    assert meta["weights"]["source"] == "official release" and meta["weights"]["epoch"] == 49
    assert meta["token_selection"] == "greedy" and "check" not in meta

    estimator = Estimator(EstimatorConfig(model="kpt_ih26m_2p5d", model_path=str(out), warmup_runs=0, threads=1))
    got = estimator.run_network(kit.arrays["input/img_uint8"].transpose(1, 2, 0))
    ref = kit.arrays["out/joint_heatmap_out"]
    assert np.abs(got["heatmap"] - ref).max() <= 1e-4 * np.abs(ref).max()
    np.testing.assert_allclose(got["hand_type"], kit.arrays["out/hand_type_out"], atol=1e-5)
    assert int(got["token_valid"].sum()) == int(kit.arrays["out/seq_mask_out"].sum()) == 40
    np.testing.assert_array_equal(got["joint_2p5d"], kit.arrays["out/joint_2p5d_out"])


def test_compact_weights_shrink_the_lite_default_and_the_estimator_runs_it(tmp_path, capsys):
    """The committed default's storage: kpt_h2o3d_3d_lite (128 input) with int8 / fp16 weights."""
    out = tmp_path / "kpt_h2o3d_3d_lite.onnx"
    assert main(["kpt_h2o3d_3d_lite", str(out), "--random-weights", "--weights", "compact", "--check"]) == 0
    printed = capsys.readouterr().out
    assert "compact weights:" in printed and "PASS" in printed and "tolerance 0.05" in printed
    meta = json.loads(out.with_name(out.name + ".json").read_text())
    storage = meta["weight_storage"]
    assert storage["mode"] == "compact" and storage["int8_tensors"] > 0
    assert storage["bytes_after"] == out.stat().st_size < 40e6 < storage["bytes_before"]  # the budget
    assert meta["input"]["size"] == 128 and meta["check"]["rtol"] == 0.05
    estimator = Estimator(EstimatorConfig(model="kpt_h2o3d_3d_lite", model_path=str(out), warmup_runs=0, threads=1))
    image = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    result = estimator.estimate(image, CAMERA, stamp_s=1.0)
    assert [h.side for h in result.hands] == ["right", "left"]
    assert all(np.isfinite(h.joints_xyz).all() for h in result.hands)


def test_random_weights_only_on_request_and_loudly(tmp_path, capsys):
    out = tmp_path / "random.onnx"
    assert main([PRESET, str(out)]) == 2
    assert "refusing to export random weights" in capsys.readouterr().err and not out.exists()
    assert main([PRESET, str(out), "--random-weights", *TINY_ARGS, "--opset", "16"]) == 0
    assert "RANDOM, UNTRAINED" in capsys.readouterr().err
    meta = json.loads(out.with_name("random.onnx.json").read_text())
    assert meta["weights"] == {"trained": False, "source": "random (NOT TRAINED)"} and meta["onnx"]["opset"] == 16
    import onnx
    assert onnx.load(str(out), load_external_data=False).opset_import[0].version == 16


def _error(capsys, *argv) -> str:
    """Run the command in-process; it must fail with exit status 2 and exactly one line on stderr."""
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("export_onnx: error: "), err
    return err


def test_usage_errors_are_one_line_with_exit_status_2(tiny_run, tmp_path, capsys):
    checkpoint, _ = tiny_run
    out = tmp_path / "x.onnx"
    err = _error(capsys, "kpt_nope", out, "--random-weights")
    assert "unknown model preset 'kpt_nope'" in err and "a2j_ih26m" in err and PRESET in err
    assert "weights file not found" in _error(capsys, PRESET, out, "--checkpoint", tmp_path / "missing.pt")
    corrupt = tmp_path / "corrupt.pth.tar"
    corrupt.write_bytes(checkpoint.read_bytes()[:4096])
    assert "cannot read weights file" in _error(capsys, PRESET, out, "--checkpoint", corrupt)
    assert "must be a .onnx file" in _error(capsys, PRESET, tmp_path / "x.trt", "--random-weights")
    err = _error(capsys, PRESET, out, "--random-weights", "--override", "no_such_field=1")
    assert "not a field of KptConfig" in err and "backbone_depth" in err
    assert "change the graph's interface" in _error(capsys, PRESET, out, "--random-weights",
                                                    "--override", "pose_representation=2p5D")
    assert "built around object templates" in _error(capsys, PRESET, out, "--random-weights", "--mano-path", tmp_path)
    assert not out.exists()


def test_checkpoints_of_another_architecture_are_refused(tiny_run, tmp_path, capsys):
    checkpoint, model = tiny_run
    out = tmp_path / "x.onnx"
    # Our training checkpoint: another family (recorded task), or the preset without the run's overrides.
    assert "trained by the 'kpt' task; preset 'a2j_ih26m' (a2j) takes checkpoints of the 'a2j' task" in _error(
        capsys, "a2j_ih26m", out, "--checkpoint", checkpoint)
    err = _error(capsys, PRESET, out, "--checkpoint", checkpoint)
    assert "does not fit preset 'kpt_h2o3d_3d' (kpt): first missing tensor" in err and "of another shape" in err
    # The authors' layout, converted by the family's converter: KPT tensors are no A2J release ...
    official_kpt = tmp_path / "kpt.pth.tar"
    torch.save({"network": {"module." + k: v for k, v in model.state_dict().items()}}, official_kpt)
    assert "does not fit preset 'a2j_ih26m' (a2j)" in _error(capsys, "a2j_ih26m", out, "--checkpoint", official_kpt)
    # ... and an official KPT release of another configuration is named by what it looks like.
    from hand_object_pose.models.kpt.checkpoint import PREFIX_MAP
    inverse = [(ours, official) for official, ours in PREFIX_MAP]
    renamed = {}
    for key, value in model.state_dict().items():
        if key.startswith("heads."):
            renamed["module." + key[len("heads."):]] = value
            continue
        ours, official = next((o, f) for o, f in inverse if key.startswith(o))
        renamed["module." + official + key[len(ours):]] = value
    torch.save({"network": renamed}, official_kpt)
    err = _error(capsys, PRESET, out, "--checkpoint", official_kpt)
    assert "does not fit preset 'kpt_h2o3d_3d' (kpt)" in err
    assert "looks like backbone_depth=18, enc_layers=1:" in err  # the preset has dec_layers=1 too
    assert not out.exists()


def test_dma_assets_are_checked_before_building(tmp_path):
    from hand_object_pose.models.dma.assets import placeholder_object
    from hand_object_pose.geometry.object_template import save_template

    assert export_onnx.parse_args(["dma_ho3d", "x.onnx", "--object-template", "a.npz",
                                   "--object-template", "b.npz"]).object_template == ["a.npz", "b.npz"]
    with pytest.raises(ExportError, match="--mano-path: cannot use"):
        template_assets("/nonexistent/MANO_RIGHT.npz", [], trained=True)
    with pytest.raises(ExportError, match="--object-template /nonexistent.npz"):
        template_assets("", ["/nonexistent.npz"], trained=True)
    template = save_template(tmp_path / "tube.npz", placeholder_object())
    with pytest.raises(ExportError, match="'placeholder_tube' given twice"):
        template_assets("", [template, template], trained=True)
    _, templates, meta = template_assets("", [template], trained=True)
    assert meta["object_templates"] == [{"index": 0, "id": "placeholder_tube", "file": str(template.resolve()),
                                         "sha256": sha256(template)}]
    hand, templates, meta = template_assets("", [], trained=False)
    assert hand.joint_regressor.shape == (21, 778) and templates[0].vertices.shape == (1000, 3)
    assert "NOT MANO" in meta["hand_topology"]["source"] and "NOT a real object" in meta["object_templates"][0]["file"]


def test_check_tolerance_and_tie_dependent_outputs():
    ref = np.linspace(-2.0, 2.0, 50, dtype=np.float32)
    assert compare_output("joints", ref + 1e-4, ref, checked=True).ok          # 5e-5 relative
    assert not compare_output("joints", ref + 5e-4, ref, checked=True).ok      # 2.5e-4 relative
    assert not compare_output("joints", ref[:10], ref, checked=True).ok        # shape differs
    probability = np.full(4, 1e-3, np.float32)                                 # untrained heads: near 0
    assert compare_output("hand_presence", probability + 5e-5, probability, checked=True).ok
    tokens = np.arange(6)
    assert not compare_output("token_kind", tokens[::-1].copy(), tokens, checked=True).ok
    row = compare_output("joint_2p5d", tokens[::-1].copy(), tokens, checked=False)
    assert row.ok and "not checked" in row.format() and "6 elements differ" in row.format()
