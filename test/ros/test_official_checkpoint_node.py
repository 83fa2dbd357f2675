"""An authors' `.pth.tar` as the node's model_path: exported once into the cache, reused on the next start.

The weights are the parity kit's official-format tensors of the released `kpt_ih26m_2p5d` configuration,
saved in the authors' layout (`{"epoch": ..., "network": DataParallel state dict}`).
"""
from __future__ import annotations

import os
import time

import numpy as np
import pytest
import torch

from hand_object_pose.export.parity_kit import SHARED_PARITY_DIR, load_kit
from hand_object_pose.msg import HandPose
from node_process import NodeProcess, Peer, now_ns, write_params
from ros_test_helpers import env_without_tf2_fixture, ros_session

pytestmark = pytest.mark.skipif(not (SHARED_PARITY_DIR / "parity_spec.json").is_file(),
                                reason="parity kit not available (../shared beside the clone)")

PRESET = "kpt_ih26m_2p5d"


@pytest.fixture(scope="module")
def official_file(tmp_path_factory):
    kit = load_kit("kypt_ih26m_2p5d", SHARED_PARITY_DIR)
    path = tmp_path_factory.mktemp("release") / "snapshot_49.pth.tar"
    torch.save({"epoch": 49, "network": {"module." + k: torch.from_numpy(np.array(v))
                                         for k, v in kit.official_state_dict().items()}}, path)
    return path


def _params(directory, official_file, cache, **changes):
    directory.mkdir(exist_ok=True)
    values = dict(model=PRESET, backend="onnxruntime", model_path=str(official_file), allow_random_weights=False,
                  model_cache_dir=str(cache), object_catalogue="", object_id="")
    return write_params(directory, **{**values, **changes})


def _results_arrive() -> None:
    """Send fresh frames (the first ones may be lost while subscriptions settle) until a result returns."""
    with ros_session() as session:
        peer = Peer(session, with_tf=False)
        peer.wait_matched(use_depth=False)
        start = now_ns(peer.node)
        deadline = time.monotonic() + 180.0
        k = 0
        while not peer.results and time.monotonic() < deadline:
            peer.send(start + k * 50_000_000, depth_mm=None)
            k += 1
            time.sleep(0.5)
        assert peer.results, "no result from the node"
        result = peer.results[0]
        assert result.model == PRESET and result.backend.startswith("onnxruntime")
        assert [h.side for h in result.hands] == [HandPose.SIDE_RIGHT, HandPose.SIDE_LEFT]


def test_official_checkpoint_is_exported_once_and_the_cache_reused(tmp_path, official_file):
    cache = tmp_path / "cache"
    params = _params(tmp_path / "run", official_file, cache)
    first = NodeProcess(params, env_without_tf2_fixture())
    try:
        first.wait_ready(timeout=300.0)
        _results_arrive()
    finally:
        assert first.stop() == 0, first.output
    assert first.count("export cache miss") == 1 and first.count("export cached:") == 1, first.output
    entries = sorted(p.name for p in cache.iterdir())
    assert len(entries) == 2 and entries[0].startswith(PRESET) and entries[0].endswith(".onnx"), entries

    second = NodeProcess(params, env_without_tf2_fixture())
    try:
        second.wait_ready(timeout=120.0)
        _results_arrive()
    finally:
        assert second.stop() == 0, second.output
    assert second.count("export cache hit") == 1 and second.count("export cache miss") == 0, second.output
    assert sorted(p.name for p in cache.iterdir()) == entries


def test_another_preset_stops_the_node_with_one_line_and_an_unwritable_cache_falls_back(tmp_path, official_file):
    """Both in one start (each export costs a minute): the cache directory cannot be created, so a temporary one
    is used with a warning; then the checkpoint does not fit the preset, and the node stops with one line."""
    if os.geteuid() == 0:
        blocker = tmp_path / "a_file_not_a_directory"  # root writes anywhere: a path below a file cannot exist
        blocker.write_text("x")
        cache = blocker / "cache"
    else:
        cache = tmp_path / "locked"
        cache.mkdir(mode=0o500)
    node = NodeProcess(_params(tmp_path / "wrong", official_file, cache, model="kpt_h2o3d_3d"),
                       env_without_tf2_fixture())
    node.proc.wait(timeout=300)
    assert node.stop() == 2, node.output
    assert node.count("is not writable") == 1, node.output
    errors = [line for line in node.lines if line.startswith("hand_object_pose: error:")]
    assert len(errors) == 1 and "does not fit preset 'kpt_h2o3d_3d'" in errors[0], node.output
    assert "first missing tensor" in errors[0] and "first unexpected" in errors[0], node.output
    assert "Traceback" not in node.output, node.output
