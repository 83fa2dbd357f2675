"""Start-up failures of the plain entry point: exit status 2 and ONE line naming the reason; a native crash
prints every thread's stack. (The MANO fallback at start-up is checked by the end-to-end tests' node, which
starts with a missing mano_path.)"""
import signal

import pytest

from node_process import NodeProcess, write_params
from ros_test_helpers import env_without_tf2_fixture

FAILURES = {
    "unknown_preset": (dict(model="kpt_does_not_exist"), "unknown model preset 'kpt_does_not_exist'"),
    "missing_model": (dict(backend="onnxruntime", model_path="/nonexistent/kpt.onnx", allow_random_weights=False),
                      "/nonexistent/kpt.onnx"),
    "corrupt_model": (dict(backend="onnxruntime", allow_random_weights=False), "corrupt.onnx"),
    "bad_parameter": (dict(sync_slop_s=5.0), "parameter 'sync_slop_s' is out of range: expected 0.0 <= sync_slop_s"),
    "bad_catalogue_id": (dict(object_id="no_such_object"), "no_such_object"),
}


def test_startup_failures_exit_with_one_line(tmp_path):
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"this is not an onnx model" * 10)
    processes = {}
    for name, (changes, _) in FAILURES.items():
        if name == "corrupt_model":
            changes = dict(changes, model_path=str(corrupt))
        directory = tmp_path / name
        directory.mkdir()
        processes[name] = NodeProcess(write_params(directory, **changes), env_without_tf2_fixture())
    for name, proc in processes.items():   # started together: the imports overlap
        proc.proc.wait(timeout=120)
        rc = proc.stop()
        errors = [line for line in proc.lines if line.startswith("hand_object_pose: error:")]
        assert rc == 2, f"{name}: exit {rc}\n{proc.output}"
        assert len(errors) == 1 and FAILURES[name][1] in errors[0], f"{name}:\n{proc.output}"
        assert "Traceback" not in proc.output, f"{name}:\n{proc.output}"


@pytest.mark.parametrize("content", [None, "/**:\n  ros__parameters:\n    model: [unclosed\n"])
def test_missing_or_broken_params_file(tmp_path, content):
    path = tmp_path / "params.yaml"
    if content is not None:
        path.write_text(content)
    proc = NodeProcess(path, env_without_tf2_fixture())
    proc.proc.wait(timeout=120)
    assert proc.stop() == 2
    errors = [line for line in proc.lines if line.startswith("hand_object_pose: error: cannot initialise ROS")]
    assert len(errors) == 1 and "Couldn't parse params file" in errors[0] and "Traceback" not in proc.output


def test_a_native_crash_prints_every_threads_python_stack(tmp_path):
    """A crash inside a native library (simulated: SIGSEGV sent to the running node) is not silent: the
    entry point enables faulthandler, so stderr names the fatal signal and the Python stack of each thread
    (the executor and the inference thread)."""
    node = NodeProcess(write_params(tmp_path), env_without_tf2_fixture())
    try:
        node.wait_ready(timeout=120.0)
        node.proc.send_signal(signal.SIGSEGV)
        node.proc.wait(timeout=30)
    finally:
        rc = node.stop()
    assert rc == -signal.SIGSEGV, node.output
    assert node.count("Fatal Python error: Segmentation fault") == 1, node.output
    assert node.count("Thread 0x") + node.count("Current thread 0x") >= 2, node.output
