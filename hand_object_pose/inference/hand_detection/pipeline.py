"""Hands in a video: palm detection, landmarks on rotated ROIs, and tracking between frames.

Per frame (`HandDetector.process`):
1. Tracked hands (ROIs from the previous frame's landmarks) go straight to the landmark network.
2. The palm detector runs when no hand is tracked, when a tracked hand was lost on the previous
   frame (its presence fell below `min_presence`), when fewer than `max_hands` are tracked and
   `search_interval` frames have passed since it last ran, or every `redetect_interval` frames
   (0 = never forced). With `tracking=False` it runs on every frame. New palms whose ROI overlaps a
   tracked hand's are dropped (the tracked one is kept).
3. The landmark network runs on each ROI; hands with presence >= `min_presence` are kept; the kept
   hands' landmarks give the next frame's ROIs. Duplicates (two ROIs that converged on one hand)
   are merged, keeping the more present one.

Sides come from the network's handedness corrected for the camera (`mirrored`: a selfie-style,
horizontally flipped image), averaged over a tracked hand's last `side_memory` frames so that a
hand's side (and so its TF frame) does not flicker; with two hands of one side, the less confident
one takes the other.
All pixel values are in the full input image. Timings are wall-clock milliseconds.
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from .files import HandDetectorFiles, HandDetectorFilesError, locate
from .landmarks import LandmarkNetwork, LandmarkResult
from .palm import PalmDetection, PalmDetector
from .roi import HandRoi, box_iou, roi_from_landmarks, roi_from_palm


@dataclass(frozen=True)
class HandDetectorConfig:
    model_dir: str = ""                 # "" = the shipped models/hand_detector
    max_hands: int = 2
    min_detection_score: float = 0.5    # palm detector score threshold
    nms_iou: float = 0.3                # weighted NMS overlap
    min_presence: float = 0.5           # landmark network's hand presence to keep (and track) a hand
    tracking: bool = True               # next ROI from this frame's landmarks
    redetect_interval: int = 0          # palm detector at least every N frames while tracking (0: when needed)
    search_interval: int = 10           # with fewer than max_hands tracked, look for more every N frames
    duplicate_iou: float = 0.5          # ROIs/hands overlapping more are one hand
    mirrored: bool = False              # the input is a mirrored (selfie) image
    unique_sides: bool = True           # two hands never get the same side
    side_memory: int = 10               # a tracked hand's side: mean handedness of its last N frames (1: this one)
    verify_files: bool = True           # sha256 of the ONNX files at start-up
    providers: tuple[str, ...] = ("CPUExecutionProvider",)
    fp16: bool = False
    trt_cache_dir: str = ""
    threads: int = 0                    # palm detector's ONNX Runtime intra-op threads (0: its default)
    landmark_threads: int = 1           # the landmark network's: a 2.6 ms network gains nothing from a
                                        # second thread on 2 cores and loses much under load (measured)
    require_gpu: bool = False
    cuda_graph: bool = False            # on the CUDA provider: replay each network as a CUDA graph (backends)

    def __post_init__(self):
        if self.max_hands < 1:
            raise ValueError(f"max_hands must be >= 1, got {self.max_hands}")
        for name in ("min_detection_score", "nms_iou", "min_presence", "duplicate_iou"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.side_memory < 1:
            raise ValueError(f"side_memory must be >= 1, got {self.side_memory}")
        if self.threads < 0 or self.landmark_threads < 0:
            raise ValueError("threads and landmark_threads must be >= 0")
        if self.redetect_interval < 0 or self.search_interval < 0:
            raise ValueError("redetect_interval and search_interval must be >= 0")


@dataclass(frozen=True)
class DetectedHand:
    side: str                     # "right" or "left", corrected for mirroring
    side_score: float             # probability of `side` in [0.5, 1] (lower when unique_sides flipped it)
    presence: float               # landmark network's hand presence in [0, 1]
    detection_score: float        # the palm score that started this track (kept while tracking)
    landmarks_px: np.ndarray      # (21, 2) full-image pixels, canonical order
    depth_px: np.ndarray          # (21,) wrist-relative depth, pixel scale (smaller = nearer)
    world_m: np.ndarray           # (21, 3) metres, image-aligned axes (x right, y down, z forward),
    #                               origin near the hand's centre
    roi: HandRoi                  # the ROI the landmarks came from
    tracked: bool                 # the ROI came from the previous frame's landmarks

    def box_px(self) -> np.ndarray:
        """(4,) axis-aligned landmark bounds x0, y0, x1, y1, pixels."""
        return np.concatenate([self.landmarks_px.min(axis=0), self.landmarks_px.max(axis=0)])


@dataclass
class HandDetections:
    hands: list                   # [DetectedHand], right first
    detector_ran: bool
    palm_scores: list             # scores of the palm detections this frame (after NMS), [] when it did not run
    detector_ms: float
    landmark_ms: float
    total_ms: float
    landmark_runs: int


@dataclass
class _Track:
    roi: HandRoi
    detection_score: float
    right_score: float = 0.5      # mean probability of a right hand over the track's last frames
    frames: int = 0               # frames in that mean (at most side_memory)


RATE_WINDOW_S = 5.0


@dataclass
class HandDetectorStats:
    """Counters since construction, and the palm detector's recent run times (monotonic seconds)."""
    frames: int = 0
    detector_runs: int = 0
    landmark_runs: int = 0
    hands_found: int = 0
    frames_without_hands: int = 0
    detector_ms_total: float = 0.0
    landmark_ms_total: float = 0.0
    recent_runs_s: deque = field(default_factory=deque)

    def detector_ran(self, now_s: float) -> None:
        self.detector_runs += 1
        self.recent_runs_s.append(now_s)

    def detector_runs_per_s(self, now_s: Optional[float] = None) -> float:
        """Palm detector runs per second over the last RATE_WINDOW_S seconds."""
        now_s = time.monotonic() if now_s is None else now_s
        while self.recent_runs_s and self.recent_runs_s[0] < now_s - RATE_WINDOW_S:
            self.recent_runs_s.popleft()
        return len(self.recent_runs_s) / RATE_WINDOW_S


def _backend(path, config: HandDetectorConfig, threads: int):
    from hand_object_pose.inference.backends import OnnxRuntimeBackend

    try:
        return OnnxRuntimeBackend(str(path), providers=config.providers, fp16=config.fp16,
                                  trt_cache_dir=config.trt_cache_dir, threads=threads,
                                  require_gpu=config.require_gpu, cuda_graph=config.cuda_graph)
    except ValueError as exc:  # corrupt file or provider failure: one line naming the file
        raise HandDetectorFilesError(str(exc).splitlines()[0]) from exc


class HandDetector:
    """Palm detector + hand landmark network on ONNX Runtime, with tracking (see the module docstring).

    Build with `HandDetector.from_config(config)`; or pass two `run` callables (tests)."""

    def __init__(self, palm_run, landmark_run, config: Optional[HandDetectorConfig] = None,
                 in_use: str = "custom", on_gpu: bool = False, files: Optional[HandDetectorFiles] = None):
        self.config = config or HandDetectorConfig()
        self.on_gpu = bool(on_gpu)
        self.palm = PalmDetector(palm_run, self.config.min_detection_score, self.config.nms_iou)
        self.landmarks = LandmarkNetwork(landmark_run, mirrored=self.config.mirrored)
        self.in_use = in_use
        self.files = files
        self.stats = HandDetectorStats()
        self._tracks: list[_Track] = []
        self._lost = False
        self._since_detection = 0

    @classmethod
    def from_config(cls, config: Optional[HandDetectorConfig] = None) -> "HandDetector":
        """Load the ONNX files (HandDetectorFilesError, one line, when missing or corrupt)."""
        config = config or HandDetectorConfig()
        files = locate(config.model_dir, verify=config.verify_files)
        palm = _backend(files.palm_detection, config, config.threads)
        landmark = _backend(files.hand_landmark, config, config.landmark_threads)
        return cls(palm.run, landmark.run, config, in_use=palm.in_use, on_gpu=palm.on_gpu and landmark.on_gpu,
                   files=files)

    def warm_up(self, runs: int = 1) -> None:
        """Run both networks `runs` times on blank inputs (first-call allocations, TensorRT engine
        builds) without touching the tracking state or the statistics."""
        from .landmarks import LANDMARK_INPUT_SIZE
        from .roi import HandRoi

        blank = np.zeros((LANDMARK_INPUT_SIZE, LANDMARK_INPUT_SIZE, 3), np.uint8)
        roi = HandRoi(center_px=np.array([112.0, 112.0]), size_px=224.0, rotation=0.0)
        for _ in range(runs):
            self.palm.detect(blank)
            self.landmarks(blank, roi)

    def reset(self) -> None:
        """Forget the tracked hands (the next frame runs the palm detector)."""
        self._tracks = []
        self._lost = False
        self._since_detection = 0

    def _detector_due(self) -> bool:
        cfg = self.config
        if not cfg.tracking or not self._tracks or self._lost:
            return True
        if cfg.redetect_interval and self._since_detection >= cfg.redetect_interval:
            return True
        return len(self._tracks) < cfg.max_hands and self._since_detection >= cfg.search_interval

    def process(self, image: np.ndarray) -> HandDetections:
        """Hands in one (H, W, 3) uint8 RGB frame (consecutive calls are treated as a video)."""
        cfg = self.config
        start = time.perf_counter()
        previous = list(self._tracks) if cfg.tracking else []
        tracks = list(previous)
        self._since_detection += 1   # frames since the palm detector last ran, this one included
        detector_ran = self._detector_due()
        palm_scores, detector_ms = [], 0.0
        if detector_ran:
            t0 = time.perf_counter()
            palms = self.palm.detect(image)
            detector_ms = 1e3 * (time.perf_counter() - t0)
            palm_scores = [p.score for p in palms]
            tracks = self._merge(tracks, palms)
            self._since_detection = 0
        t0 = time.perf_counter()
        results: list[tuple[LandmarkResult, _Track]] = [(self.landmarks(image, t.roi), t) for t in tracks]
        landmark_ms = 1e3 * (time.perf_counter() - t0)
        kept = [(r, t) for r, t in results if r.presence >= cfg.min_presence]
        # Lost: a hand tracked from the previous frame fell below the presence threshold (a new palm
        # that the landmark network rejects, or a duplicate of a tracked hand, is no loss).
        self._lost = any(r.presence < cfg.min_presence for r, t in results if any(t is p for p in previous))
        kept = self._drop_duplicates(kept)
        found = []
        for r, t in kept:
            tracked = any(t is p for p in previous)
            n = min(t.frames, cfg.side_memory - 1) if tracked else 0
            mean = (t.right_score * n + r.right_score) / (n + 1)
            found.append((r, _Track(roi_from_landmarks(r.landmarks_px), t.detection_score, mean, n + 1), tracked))
        hands = self._sides(found)
        self._tracks = [track for _, track, _ in found]
        hands = sorted(hands, key=lambda h: h.side != "right")
        total_ms = 1e3 * (time.perf_counter() - start)
        st = self.stats
        st.frames += 1
        if detector_ran:
            st.detector_ran(time.monotonic())
        st.landmark_runs += len(results)
        st.hands_found += len(hands)
        st.frames_without_hands += int(not hands)
        st.detector_ms_total += detector_ms
        st.landmark_ms_total += landmark_ms
        return HandDetections(hands=hands, detector_ran=detector_ran, palm_scores=palm_scores,
                              detector_ms=detector_ms, landmark_ms=landmark_ms, total_ms=total_ms,
                              landmark_runs=len(results))

    def _merge(self, tracks: list[_Track], palms: Sequence[PalmDetection]) -> list[_Track]:
        tracks = list(tracks)
        for palm in palms:
            if len(tracks) >= self.config.max_hands:
                break
            roi = roi_from_palm(palm.box_px, palm.keypoints_px)
            if any(box_iou(roi.bounds_px(), t.roi.bounds_px()) > self.config.duplicate_iou for t in tracks):
                continue
            tracks.append(_Track(roi, palm.score))
        return tracks

    def _drop_duplicates(self, kept):
        kept = sorted(kept, key=lambda rt: -rt[0].presence)
        unique = []
        for r, t in kept:
            box = np.concatenate([r.landmarks_px.min(axis=0), r.landmarks_px.max(axis=0)])
            if all(box_iou(box, np.concatenate([u.landmarks_px.min(axis=0), u.landmarks_px.max(axis=0)]))
                   <= self.config.duplicate_iou for u, _ in unique):
                unique.append((r, t))
        return unique

    def _sides(self, found) -> list[DetectedHand]:
        """[(LandmarkResult, next frame's _Track with the side memory, tracked)] -> DetectedHands, same order."""
        sides = ["right" if t.right_score >= 0.5 else "left" for _, t, _ in found]
        scores = [max(t.right_score, 1.0 - t.right_score) for _, t, _ in found]
        if self.config.unique_sides and len(found) == 2 and sides[0] == sides[1]:
            weaker = int(np.argmin(scores))
            sides[weaker] = "left" if sides[weaker] == "right" else "right"
            scores[weaker] = 1.0 - scores[weaker]
        hands = [DetectedHand(side=side, side_score=score, presence=r.presence, detection_score=t.detection_score,
                              landmarks_px=r.landmarks_px, depth_px=r.depth_px, world_m=r.world_m, roi=r.roi,
                              tracked=tracked)
                 for (r, t, tracked), side, score in zip(found, sides, scores)]
        return hands
