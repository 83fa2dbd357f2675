"""The pose node as a managed (lifecycle) node: `python -m hand_object_pose.ros.pose_node --managed`.

The same node as `PoseNode` (parameters declared and validated at construction, the same topics
and counters), with its model and its topics tied to the ROS 2 lifecycle states (the yolo_ros
pattern), driven by `ros2 lifecycle set`, a lifecycle manager, or `--autostart`:

| transition | what happens |
|---|---|
| configure  | loads the model (the Estimator: file, backend session, warm-up); logs the load time |
| activate   | subscribes and publishes (image pairing, worker thread, outputs, /diagnostics); loads the model first when a deactivate released it |
| deactivate | stops processing (worker stopped, every subscription, publisher and timer of activate destroyed) and releases the model, so its backend session frees its (device) memory |
| cleanup    | frees everything configure made: back to unconfigured |
| shutdown   | as deactivate + cleanup, from any state |

A failing configure (missing / corrupt model file, ...) logs one line naming the reason and leaves
the node unconfigured (state FAILURE -> unconfigured); the process keeps serving its lifecycle
services. Counters in /diagnostics run on across activations.
"""
from __future__ import annotations

import gc
import time

from rclpy.duration import Duration
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn

from hand_object_pose.inference.estimator import Estimator
from hand_object_pose.ros.parameters import ParameterError
from hand_object_pose.ros.pose_node import PoseNode, check_model_file


FINAL_STATUS_ACK_S = 2.0
"""How long a deactivate waits for the subscribers of /diagnostics to acknowledge its final status."""


class ManagedPoseNode(PoseNode, LifecycleNode):
    """`PoseNode` whose model is loaded on configure and whose topics exist only while active."""

    def __init__(self, **node_kwargs):
        self._loaded = None            # the Estimator while configured (and not released by deactivate)
        self._active_entities = ()     # (subscriptions, publishers, timers) created by activate
        self._last_problem = ""
        super().__init__(**node_kwargs)

    # ----- model ----------------------------------------------------------------------------------
    def _load(self) -> str:
        """Load the model; "" on success, else the reason (one line)."""
        started = time.perf_counter()
        try:
            check_model_file(self)
            self._loaded = Estimator(self.estimator_config)
        except (ParameterError, ValueError, FileNotFoundError, RuntimeError) as exc:
            return " ".join(str(exc).split())
        self.get_logger().info(f"model {self._loaded.model_name} loaded on {self._loaded.backend_in_use} in "
                               f"{time.perf_counter() - started:.2f} s")
        return ""

    def _release(self) -> None:
        """Drop the model: its backend session and (on a GPU) its device memory go with the last reference."""
        self._loaded = None
        self._estimator = None
        gc.collect()
        try:
            import torch
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:
            pass

    # ----- topics ---------------------------------------------------------------------------------
    def _entities(self) -> tuple:
        return set(self.subscriptions), set(self.publishers), set(self.timers)

    def _activate(self) -> str:
        if self._loaded is None:
            problem = self._load()
            if problem:
                return problem
        before = self._entities()
        try:
            self.start(self._loaded)
        except ParameterError as exc:
            return " ".join(str(exc).split())
        self._active_entities = tuple(now - then for now, then in zip(self._entities(), before))
        return ""

    def _deactivate(self) -> None:
        if not self._active_entities:          # not active: nothing runs
            return
        self.stop()
        self._worker = None
        # Frames in flight will never be processed: counted, so that the counters still add up.
        if self._slot.take(0.0) is not None:
            self.stats.discarded()
        self._inputs.expire(-1.0)              # images waiting for partners: unpaired
        self._on_timer()                       # the final counters, before /diagnostics goes
        # Destroying a publisher right after publishing can drop the sample before a subscriber has it (seen in
        # a loaded test run): wait (briefly) until the subscribers have acknowledged the final status.
        self._diag_pub.wait_for_all_acked(Duration(seconds=FINAL_STATUS_ACK_S))
        subscriptions, publishers, timers = self._active_entities
        for timer in timers:
            self.destroy_timer(timer)
        for subscription in subscriptions:
            self.destroy_subscription(subscription)
        for publisher in publishers:
            self.destroy_publisher(publisher)
        self._active_entities = ()

    # ----- lifecycle callbacks ---------------------------------------------------------------------
    def _result(self, transition: str, problem: str) -> TransitionCallbackReturn:
        self._last_problem = problem
        if problem:
            self.get_logger().error(f"{transition} failed: {problem}")
            return TransitionCallbackReturn.FAILURE
        self.get_logger().info(f"{transition}: done")
        return TransitionCallbackReturn.SUCCESS

    def on_configure(self, state) -> TransitionCallbackReturn:
        return self._result("configure", self._load())

    def on_activate(self, state) -> TransitionCallbackReturn:
        problem = self._activate()
        if not problem:
            super().on_activate(state)     # lifecycle-managed entities (none today) follow the state
        return self._result("activate", problem)

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        self._deactivate()
        self._release()
        super().on_deactivate(state)
        return self._result("deactivate (model released)", "")

    def on_cleanup(self, state) -> TransitionCallbackReturn:
        self._release()
        return self._result("cleanup", "")

    def on_shutdown(self, state) -> TransitionCallbackReturn:
        self._deactivate()
        self._release()
        return self._result("shutdown", "")

    def autostart(self) -> str:
        """configure + activate now (the `--autostart` start-up); "" on success, else the reason."""
        for name, trigger in (("configure", self.trigger_configure), ("activate", self.trigger_activate)):
            if trigger() != TransitionCallbackReturn.SUCCESS:
                return self._last_problem or f"lifecycle {name} failed"
        return ""
