"""The Estimator's path for a family that sees one hand per crop (`ModelFamily.per_hand_crops`, hand_heatmap).

Per frame:
1. the hands' boxes: given per side (ground-truth boxes in evaluation, the hand detector's hands), else
   a coarse pass of the network on the whole letterboxed frame (or the external ROI) gives each hand's
   presence and keypoints; a hand tracked from the previous frame keeps its tracked box (the box around
   its refined keypoints), the others get the box around their coarse keypoints and their side checked (their
   crop run as a right and as a left hand: the more peaked heat-maps tell the side, or, for a network trained
   for handedness, the crops' right-hand presence: SIDE_CUES);
2. one crop per present hand (left hands mirrored by the adapter), lifted to the camera frame like any
   other crop (`lifting.lift_prediction`: depth image -> 2D fit -> default depth); a right and a left hand on
   the same place are one hand found twice, unless (presence cue) both crops show the hand of their side: the
   less sure side is dropped (`one_hand_per_place`), and the frame is looked at again with the kept hand painted
   over for the hand the coarse pass missed (`_look_beside`, SECOND_LOOK_PRESENCE); with a depth image each
   visible joint's depth is then moved half way towards the measured one (`joint_depth.refine_joint_depths`);
3. the object: a crop around its tracked box, else its coarse-pass points (with the hands' boxes given, the
   coarse pass runs for the object alone, and after such a search found nothing the next one comes
   OBJECT_SEARCH_INTERVAL frames later); its class, centre point and 9 log heat-maps -> the class's box pose that
   the heat-maps find most likely (object_heatmap_pose), its depth from a depth image around its centre
   point when there is one (`_object_surface_depth`), else searched too; with a depth image, fitted to it
   (object_depth_fit), on the object's own pixels when the object network segments its crop (object_pixels);
   a tracked object's class remembers its last frames (OBJECT_CLASS_MEMORY), and a sure class with weak heat-maps
   may pass by its fit's agreement instead (SURE_CLASS).
The hands' crops and the object's first crop go to the network in ONE call (a batch; with an object network of its
own, `object_run`, the object's crop is that network's call), the second crops (a coarse-pass hand's refinement, the
object's) in one more, a frame whose coarse pass finds a new hand pays one call before them (its side check), and
one whose coarse pass saw a hand twice up to three after them (the second look): at camera rate the fixed cost of
each call counts.
Boxes are (x0, y0, width, height) image pixels; results in metres, camera optical frame.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Optional

import cv2
import numpy as np

from hand_object_pose.geometry.camera import CameraIntrinsics, apply_affine, crop_affine, invert_affine, warp_image
from hand_object_pose.geometry.skeleton import WRIST

from . import crops as crop_lib
from . import object_depth_fit
from .adapters import CropPrediction
from .config import EstimatorConfig
from .depth import root_depth_from_image
from .hand_cover import cover_hands
from .joint_depth import refine_joint_depths
from .lifting import lift_prediction
from .object_pixels import ObjectPixels, object_pixels
from .result import HandEstimate, ObjectEstimate

MIN_OBJECT_PRESENCE = 0.5
"""Coarse-pass object presence at or above which the object is looked for."""

MIN_OBJECT_CONFIDENCE = 0.2
"""An object is reported only when its class probability x the mean heat-map support of its pose (each corner's
mass in the 3 x 3 cells around where the pose projects it, and the centre's peakedness) reaches this (an
untrained or lost object head spreads its heat-maps: about 0.01)."""

MIN_DEPTH_AGREEMENT = 0.5
"""With a depth image, an object that passes MIN_OBJECT_CONFIDENCE is fitted to it (`_fit_to_depth`) and reported
when its fit's `DepthAgreement.agreement` (the share of what the depth image says about its visible surface, hands
aside, that confirms the pose) reaches this; its confidence is then the heat-maps' times the agreement."""

SURE_CLASS = 0.9
SURE_CLASS_MIN_CONFIDENCE = 0.12
SURE_CLASS_MIN_AGREEMENT = 0.9
"""A second way past the gates, with a depth image (heat-map path): an object whose class probability reaches
SURE_CLASS and whose heat-map confidence reaches SURE_CLASS_MIN_CONFIDENCE (under MIN_OBJECT_CONFIDENCE) is fitted
too, and reported when its fit's agreement reaches SURE_CLASS_MIN_AGREEMENT. The heat-maps of a ball or a cylinder
held in the fingers are often weak where the depth image confirms the fit. Calibration splits (own crops, seeds 2001
/ 2002, 775 objects; well posed / poorly / of the wrong class / on a frame without an object): 302 / 36 / 19 / 0 ->
329 / 41 / 23 / 1 (class 0.95: 325 / 39 / 21 / 1; heat-maps 0.1: 331 / 46 / 23 / 3). Not for HEATMAP_GATED_CLASSES."""

HEATMAP_GATED_CLASSES = ("synthetic_mug",)
"""Objects that pass the heat-map gate only (never SURE_CLASS's way). Chosen when the generator's mug was closed and
looked the same upside down about its handle's axis, while its labels said it had no symmetry: its heat-maps were
flat and about half its fits upside down (with mugs on that way, 2 more well posed and 8 more poorly posed on the
calibration splits). Since generator version 12 the mug is open; with the object network trained on it the mugs'
heat-map confidence is still 0.08-0.14 (10th-90th percentile) and their fits mostly turned 50-170 degrees off, and
letting them take the sure way changed nothing on the calibration splits (no mug passed the agreement gate either
way)."""

MIN_OBJECT_PIXELS = 30
"""With an object network that segments its crop (`object_pixels`) and a depth image: an object is fitted (and
may be reported) when at least this many of its pixels have a depth; the heat-map gate (MIN_OBJECT_CONFIDENCE)
does not apply then: MIN_SEGMENTED_CONFIDENCE does (with fewer pixels, the heat-map path as without the head)."""

MIN_SEGMENTED_CONFIDENCE = 0.5
"""The gate of a fit on the object's pixels: its class probability (MASK_CLASS_WEIGHT) x its
`DepthAgreement.agreement` x its coverage reaches this; that product is the reported confidence. On the calibration
split (own crops, 6 Dec 2026, every fit reported to the gate) it kept 109 objects, 88 well posed, 18 poorly, 3 of
the wrong class; agreement x coverage >= 0.5 alone: 130, 92, 26, 12 (docs/hand_heatmap.md)."""

MIN_SEGMENTED_HEATMAP_CONFIDENCE = 0.1
"""A fit on the object's pixels is reported only when the heat-maps' confidence (MIN_OBJECT_CONFIDENCE's measure)
reaches this too: on the calibration split it cost 1 well posed object of 82 and 1 of the wrong class; in make
demo, whose mug the networks take for other classes, it halved the frames with a wrong object (15 -> 8)."""

MASK_CLASS_WEIGHT = 0.5
"""The class of a segmented object crop: (1 - w) x the class head's probabilities + w x the pixels' class votes
(0.2 / 0.5 / 0.8 posed 119 / 117 / 115 of 266 calibration objects well with every fit reported)."""

OBJECT_CLASS_MEMORY = 0.7
"""A tracked object's class probabilities are this share its last reported frame's (themselves so mixed) and the rest
this frame's: a class seen over several frames outweighs one frame's doubt (a switch of class is a full depth fit of
the new class and a jump of the reported pose). The memory lasts while the object is tracked (its crop from its last
pose); a lost track, `reset` or a frame without an object forgets it. 12 rendered sequences (720 frames): class
switches 2 -> 0, frames with the object well posed 303 -> 307."""

RAY_STARTS_M = (0.02, 0.04, -0.03, -0.06)
"""An object new to the fit also starts from its heat-map pose moved this far along its ray (metres; positive:
further from the camera). Further: the depth image at its centre point often measures the fingers in front of it
(calibration splits, own crops, well posed of 266 / 509: 78 -> 96 and 176 -> 202). Nearer: a heat-map rotation that
stands a long object on end when it lies (or the reverse) sets its centre up to half its length too deep, and a fit
started 6-9 cm too deep does not come back (generator version 12, the object network of
config/train/hand_heatmap_synthetic_v12_object.yaml: 112 -> 121 and 243 -> 256, the bottle 24 -> 33 and 61 -> 76;
nearer by 2 and 4 cm, or by 2, 4 and 6 cm: 120 / 257 and 121 / 257). docs/hand_heatmap.md has the tables."""

OBJECT_SEARCH_INTERVAL = 5
"""With the hands' boxes given (the hand detector's) and no object tracked, the object is looked for (the coarse pass
on the whole frame for its points, then its crop in the hands' call) on every this many frames, as the palm detector
looks for missing hands; likewise a fit on the object's pixels that found nothing is not repeated for this many frames
less one (a stream whose object stays under the gate otherwise pays a full fit, 20-60 ms, every frame): an object
appears up to 4 frames (133 ms at 30 Hz) later, and a frame without one costs the hands' crops only. A lost track is
searched on the next frame; `reset` makes the next frame search."""

HAND_EXTENT_M = 0.11
"""Median image-plane extent of a hand in the synthetic training set (the larger side of its keypoints'
box x wrist depth / focal length, metres): the size prior of a hand box. Uncertain keypoints bunch up
towards their mean (soft-argmax), so a box around them alone is too small (coarse pass: about half the
ground-truth box) and tracking would shrink it frame after frame."""

OBJECT_EXTENT_M = 0.14
"""Median image-plane extent of an object in the synthetic set (the larger side of its projected box corners' box x
its depth / focal length, metres; calibration split, seed 2001: 0.143, the ball 0.13, the bottle 0.21): the size
prior of an object box whose points came from a network. Uncertain points bunch up (soft-argmax), so the box around
the coarse pass's object points was too small: 193 of 256 object crops sat at min_crop_size_px, their median side
0.72 of the box around the true corners, and the class was right for 37 % of crops under 0.8 of it, 76 % above."""


SAME_HAND_WRIST_DISTANCE = 0.3
"""A right and a left hand whose wrists lie closer than this share of their crops' side (geometric mean) are one
hand seen twice: the coarse pass put both sides' heat-maps on it. Measured on a calibration split (seed 2001,
the phase-3 default): 48 of 54 such doubles lie within 0.3, and 3 of 112 pairs of two real hands."""


def one_hand_per_place(hands: list, side_belief: Optional[dict] = None) -> list:
    """`hands` without the weaker of a right and a left hand found on the same place (SAME_HAND_WRIST_DISTANCE).

    With `side_belief` (side -> the probability that its crop, as the network saw it, shows a right hand: a
    network trained for handedness, SIDE_CUE_PRESENCE), two hands whose crops both show the hand of their side
    (belief >= BOTH_SIDES_BELIEF) are two hands side by side and both kept; else the one kept is the side its
    crop believes more. Without, the side whose crop gave the more peaked heat-maps (mean joint confidence): the
    network only saw right hands and left hands mirrored, so the crop mirrored the wrong way round is the less
    sure one (on the calibration split it picks the true side of 42 of 54 doubles, presence alone 35)."""
    present = [h for h in hands if h.present and h.crop_box is not None]
    if len(present) != 2:
        return hands
    a, b = present
    side = float(np.sqrt(a.crop_box[2] * b.crop_box[2]))
    if not np.linalg.norm(a.joints_uv[0] - b.joints_uv[0]) < SAME_HAND_WRIST_DISTANCE * side:
        return hands
    if side_belief is not None:
        if min(side_belief[h.side] for h in present) >= BOTH_SIDES_BELIEF:
            return hands
        weaker = min(present, key=lambda h: side_belief[h.side])
    else:
        weaker = min(present, key=lambda h: float(np.mean(h.joint_confidence)))
    return [h for h in hands if h is not weaker]


BOTH_SIDES_BELIEF = 0.4
"""A right and a left hand on one place (SAME_HAND_WRIST_DISTANCE) are both kept when each one's crop shows the hand
of its side with at least this probability (presence side cue only). Two hands whose wrists meet (holding an object
from both sides, palm on palm) are often closer than the distance rule allows, while one hand seen twice has one
crop mirrored the wrong way round, which a network trained for handedness calls the other side. Calibration splits
(seeds 2001 and 2002, 900 frames, the handedness pass's network, pair margin 0.3 but for "off"): off 106 presence
errors of 1800, 0.3 / 0.5 / 0.7: 91 / 93 / 97 (two real hands reported as one: 63 -> 43 / 50 / 53), MRRPE
30.6 -> 33.5 / 32.6 / 31.7 mm; the shipped default (a whole-frame pass after it): off 92, 0.5: 85. With the coarse
network (6 Dec 2026, night; presence errors of 1800): 0.5 / 0.45 / 0.4 / 0.35 / 0.3: 78 / 71 / 69 / 71 / 71, of
them phantoms 21 / 21 / 21 / 23 / 24: the hands recovered had crops at 0.4-0.5 for their side."""

SECOND_LOOK_PRESENCE = 0.9
"""After one hand was seen as both (`one_hand_per_place` dropped a side), the coarse pass runs again on the frame
with the kept hand and its forearm painted over (hand_cover); its strongest hand whose wrist lies outside the paint
and whose presence reaches this is run as the missing side (a crop and a second crop around it) and kept when
present. Calibration splits (seeds 2001 and 2002, 900 frames, own crops; presence errors of 1800): without 72,
with 60 (12 hands found, none of them a phantom); 0.85 60, 0.8 63 (5 phantoms: the forearm, the object, a hand
1 m behind); the paint 0.8 / 1.3 x the hand's box: 61 / 64. Looking again beside every lone hand (not only after a
double) found 2 hands and 27 phantoms (other side's first-pass presence >= 0) or 8 (>= 0.1)."""


SIDE_MARGIN = 0.05
"""A hand found by the coarse pass takes the other side when its crop, mirrored the other way, gives heat-maps more
peaked (mean joint confidence) by more than this. On a calibration split (seed 2001, ground-truth boxes) the more
peaked way is the true side for 86 % of hands, 93 % of those 77 % whose margin exceeds 0.05; the coarse pass alone
called 25 of 44 lone left hands right."""


PAIR_SIDE_MARGIN = 0.15
"""Two hands new to the coarse pass swap sides only when their crops, each mirrored the other way, are more peaked
in sum (mean joint confidence) by more than this. The coarse pass tells two hands' sides apart far better than it
tells one hand's side: on pairs on two places its sides were right for 113 of 118 (calibration split, seed 2001)
and 121 of 123 (held-out split), the joint check's for 235 of the 241 at any margin from 0.05 to 0.15, while
checking each hand on its own (SIDE_MARGIN, as before) swapped held-out pairs the coarse pass had right (3 of 123,
each a right/left swap of about 0.45 m)."""


SIDE_CUE_PEAKEDNESS = "peakedness"
SIDE_CUE_PRESENCE = "presence"
SIDE_CUES = (SIDE_CUE_PEAKEDNESS, SIDE_CUE_PRESENCE)
"""What tells a new hand's side when its crop runs both ways round: how peaked its heat-maps are (any network;
SIDE_MARGIN, PAIR_SIDE_MARGIN), or the crop's right-hand presence (PRESENCE_SIDE_MARGIN, PRESENCE_PAIR_SIDE_MARGIN,
BOTH_SIDES_BELIEF), for a network trained for handedness (training option `side_crops`; its export record says
`hand_side_cue: presence`). The shipped default's: presence. Calibration splits (seeds 2001 and 2002, 900 frames,
the pipeline's own crops, the handedness pass's network): peakedness 114 presence errors of 1800 (21 lone hands on
the wrong side), MRRPE 33.4 mm; presence 93 (13), 32.6 mm; the shipped default (a whole-frame pass after it) 85
(9), 34.4 mm; the default before them (peakedness, never trained for handedness): 150 (36)."""

PRESENCE_SIDE_MARGIN = 0.0
"""A lone new hand takes the other side when its crop mirrored the other way round shows a right hand with a
probability higher by more than this (presence cue). 0 and 0.15 gave the same 96 errors on the calibration splits."""

SIDE_CHECK_TURNS_DEG = (20.0, -20.0)
"""A lone new hand's side check (presence cue) also runs its crop turned by these angles about the crop's centre,
both ways round, and compares the right-hand presences averaged over the turns: the network's handedness is less
sure of some views, and a turned view is a second opinion (4 more crops in the side check's one call). Calibration
splits (seeds 2001 and 2002, 900 frames, with the second look; presence errors of 1800): none 60, +-20 54, +-15 58,
+-30 56, +-20 and +-40 56, +-10 and +-20 58 (the 3 frames +-20 changed, all to the true side: two by under 0.001
of averaged presence, one by 0.18; a small gain, mostly at the decision's edge). Frames on their own (every hand new;
seed 2001, 300 frames, one process, with the second look): median 27.2 -> 27.5 ms, p90 49.4 -> 53.9 ms; a tracked
hand runs no side check."""

PRESENCE_PAIR_SIDE_MARGIN = 0.3
"""Two new hands swap sides when their crops, each mirrored the other way round, show right hands with a summed
probability higher by more than this (presence cue); the coarse pass tells two hands apart better than one hand's
side (PAIR_SIDE_MARGIN). Calibration splits: 0 -> 0.3: 96 -> 93 presence errors, MRRPE 32.6 mm both."""


TRACKED_REFINE_SHIFT = 0.1
"""A hand whose crop came from tracking (the box around its last keypoints) gets a second crop, as a coarse-pass hand
does, when the box around its new keypoints is centred more than this share of the crop's side away: the hand moved
out of its crop. `make demo`'s 90 frames (small moves) are unchanged; the fast demo test's 6 frames of the same
motion (large moves, its tracked frames 2-3x worse than its coarse-pass ones): right 17.7 -> 14.6 mm, left 32.8 ->
26.8 mm (0.05: 14.6 / 25.8, 0.15: 17.0 / 28.2)."""

TRACK_NEAR_COARSE = 1.0
"""A tracked box is kept only while the coarse pass sees a hand (either side: it mixes them up) centred within this
share of the box's side from the box's centre; else the hand starts again from its coarse-pass box. Tracked crops
otherwise stayed where a hand had been: after it left the image, on unrelated frames (a folder of photos). With
TRACK_AT_LEAST_COARSE, four rendered sequences with a depth image: roots more than 15 cm off 5 -> 0 hand-frames, MRRPE
mean 35.2 -> 30.2 mm, 3 more of ~500 hand-frames missed; 150 unrelated held-out frames, tracked: MPJPE right 66 ->
42 mm (0.5: 20.5 mm there, but 6 more sequence hand-frames missed). Numbers: docs/hand_heatmap.md."""

TRACK_AT_LEAST_COARSE = 1.0
"""A tracked box is grown to at least this share of the coarse pass's box side for the same hand. Without a depth
image nothing else bounds a tracked box from below, and it collapsed: a crop a little too small shows the network a
hand that overflows it, whose keypoints come out bunched together, the next box is smaller still, and the hand-size
depth fit puts the hand metres away (a hand 0.46 m away reported at 3.1 m ten frames later). Four rendered sequences
without a depth image: MRRPE mean 400 -> 88 mm (median 85 -> 54), roots more than 15 cm off 102 -> 40 hand-frames,
MPJPE right 30.9 -> 23.1, left 32.3 -> 29.7 mm; with one: right 20.1 -> 19.6, left 24.5 -> 24.8 mm (0.8: no-depth
MRRPE mean 153 mm; 1.2: right 22.8 mm with depth)."""


def _at_least(box: np.ndarray, side: float) -> np.ndarray:
    """Square `box` (x0, y0, side, side) grown about its centre to at least `side` pixels."""
    box = np.asarray(box, np.float64)
    if box[2] >= side:
        return box
    cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
    return np.array([cx - side / 2, cy - side / 2, side, side])


def _moved(box: np.ndarray, new_box: np.ndarray, share: float) -> bool:
    """The centre of `new_box` lies more than `share` of `box`'s side from `box`'s centre."""
    box, new_box = np.asarray(box, np.float64), np.asarray(new_box, np.float64)
    shift = (new_box[:2] + new_box[2:] / 2) - (box[:2] + box[2:] / 2)
    return bool(np.linalg.norm(shift) > share * box[2])


class PerHandCrops:
    """Runs a per-hand-crop family on frames; keeps the per-side and object crop tracking.

    adapter: the family's adapter (preprocess_hand, parse_hand, parse, parse_object); run: the backend's
    named inputs -> named outputs; config: the Estimator's validated config; batch: `run` takes several crops
    along the batch axis (a dynamic-batch export, torch), else each crop is its own call; object_run: the object
    network's backend (same inputs and outputs), which then runs the object crops, or None (`run` does);
    side_cue: SIDE_CUES, what tells a new hand's side; coarse: (adapter, run) of a coarse network, which then runs
    the coarse pass (the whole-frame crop) at its adapter's input size, or None (`run` does: `coarse_run` None)."""

    def __init__(self, adapter, run: Callable[[dict], dict], config: EstimatorConfig, batch: bool = True,
                 object_run: Optional[Callable[[dict], dict]] = None, side_cue: str = SIDE_CUE_PEAKEDNESS,
                 coarse: Optional[tuple] = None):
        if side_cue not in SIDE_CUES:
            raise ValueError(f"side cue {side_cue!r}: expected one of {SIDE_CUES}")
        self.adapter, self.run, self.config, self.batch = adapter, run, config, bool(batch)
        self.object_run = object_run
        self.coarse_adapter, self.coarse_run = coarse if coarse is not None else (adapter, None)
        self.side_cue = side_cue
        self._tracked: dict = {}
        self._object_box: Optional[np.ndarray] = None
        self._object_fit: Optional[tuple] = None   # (object id, rotation, translation) of the last frame's depth fit
        self._object_class: Optional[np.ndarray] = None   # the tracked object's class (OBJECT_CLASS_MEMORY)
        self._object_wait = 0   # frames until the next object search (OBJECT_SEARCH_INTERVAL)
        self._full_fit_wait = 0   # frames until the next full fit of an untracked object (OBJECT_SEARCH_INTERVAL)

    def reset(self) -> None:
        self._tracked = {}
        self._object_box = self._object_fit = self._object_class = None
        self._object_wait = self._full_fit_wait = 0

    def _box(self, uv_image: np.ndarray) -> np.ndarray:
        return crop_lib.box_around_keypoints([uv_image], self.config.crop_margin, self.config.min_crop_size_px)

    def _box_at_least(self, box: np.ndarray, extent_m: float, depth_m: Optional[float], camera) -> np.ndarray:
        """`box` grown about its centre to at least crop_margin x `extent_m` seen at `depth_m` (metres)."""
        if depth_m is None or not np.isfinite(depth_m) or depth_m <= 0:
            return box
        return _at_least(box, self.config.crop_margin * extent_m * float(camera.matrix[0, 0]) / depth_m)

    def _hand_box(self, hand: HandEstimate, camera: CameraIntrinsics) -> np.ndarray:
        """Square box around a placed hand's keypoints, at least crop_margin x HAND_EXTENT_M at its wrist depth."""
        return self._box_at_least(self._box(hand.joints_uv), HAND_EXTENT_M, float(hand.joints_xyz[0, 2]), camera)

    def _object_box_around(self, uv_image: np.ndarray, camera, depth_m: Optional[float]) -> np.ndarray:
        """Square box around an object's points, at least crop_margin x OBJECT_EXTENT_M at `depth_m` (the depth
        image's there, else its hands' wrists', else none)."""
        return self._box_at_least(self._box(uv_image), OBJECT_EXTENT_M, depth_m, camera)

    def _prepare(self, image, camera, box, origin, watch, side: str = "", adapter=None):
        """The crop at `box` (origin FROM_*) and its network inputs (batch 1); `side` for a hand crop; `adapter`
        (default the model's) gives the input size and the preprocessing."""
        adapter = adapter or self.adapter
        size = adapter.input_size
        crop = crop_lib.make_crop(np.asarray(box, np.float64), camera, size, origin)
        with watch.stage("preprocess"):
            pixels = warp_image(image, crop.affine, size)
            inputs = adapter.preprocess_hand(pixels, side) if side else adapter.preprocess(pixels)
        return crop, inputs

    def _run_inputs(self, inputs: list, watch, run: Optional[Callable[[dict], dict]] = None) -> list:
        """The network (`run`, default the main one) on several crops' inputs: ONE backend call with the crops
        along the batch axis (when the backend takes batches), else one call per crop. Returns each crop's
        outputs, batch axis of size 1."""
        run = run or self.run
        with watch.stage("inference"):
            if len(inputs) == 1 or not self.batch:
                return [run(i) for i in inputs]
            stacked = run({name: np.concatenate([i[name] for i in inputs]) for name in inputs[0]})
        return [{name: value[k:k + 1] for name, value in stacked.items()} for k in range(len(inputs))]

    def _run_jobs(self, inputs: list, is_object: list, watch) -> list:
        """`_run_inputs` for a mix of hand and object crops: with an object network, the object crops go to it
        (one call) and the rest to the main network (one call); outputs in the inputs' order."""
        if self.object_run is None or not any(is_object):
            return self._run_inputs(inputs, watch)
        outputs: list = [None] * len(inputs)
        for wanted, run in ((False, self.run), (True, self.object_run)):
            picked = [k for k, flag in enumerate(is_object) if flag == wanted]
            if picked:
                for k, out in zip(picked, self._run_inputs([inputs[k] for k in picked], watch, run)):
                    outputs[k] = out
        return outputs

    def _run_coarse_pass(self, image, camera, box, origin, watch):
        """(crop, outputs) of the coarse pass on `box`, by the coarse network (`coarse`) or the model."""
        crop, inputs = self._prepare(image, camera, box, origin, watch, adapter=self.coarse_adapter)
        return crop, self._run_inputs([inputs], watch, self.coarse_run)[0]

    def estimate(self, image: np.ndarray, camera: CameraIntrinsics, depth_m: Optional[np.ndarray], watch,
                 hand_boxes: Optional[dict] = None, roi_box: Optional[np.ndarray] = None,
                 box_origin: str = crop_lib.FROM_ROI) -> tuple[list, list, str]:
        """(hands: list[HandEstimate] right first, objects: list[ObjectEstimate], crop origin) for one frame.

        hand_boxes: side -> (box, presence) when the hands' boxes are known (origin `box_origin`); else
        the coarse pass runs on `roi_box` (or the whole frame when None).

        Network calls: the coarse pass (when it runs), then, for hands new to it, one call that runs each one's
        crop as a right and as a left hand (`_decide_sides`), then one call for every hand's crop and the object's
        crop together, then, only when needed, one call for the second crops (a hand whose box came from the
        coarse pass), and after a hand seen twice the second look. With the hands' boxes given, a frame that looks
        for the object runs the coarse pass for the object's points alone."""
        height, width = image.shape[:2]
        c = self.config
        self._full_fit_wait = max(self._full_fit_wait - 1, 0)
        coarse_object = None
        look_for_object = True
        searching = False   # boxes given: this frame's coarse pass is the object's search (OBJECT_SEARCH_INTERVAL)
        origin = box_origin
        from_coarse: dict = {}
        if hand_boxes is None:
            with watch.stage("coarse_pass"):
                frame_box = roi_box if roi_box is not None else crop_lib.full_frame_box(width, height)
                frame_origin = crop_lib.FROM_ROI if roi_box is not None else crop_lib.FROM_FULL_FRAME
                crop, outputs = self._run_coarse_pass(image, camera, frame_box, frame_origin, watch)
                coarse = self.coarse_adapter.parse(outputs)
                to_image = invert_affine(crop.affine)
                placed, _ = lift_prediction(coarse, crop, camera, depth_m, c, "", (width, height))
                hand_boxes = {}
                seen = {h.side: self._hand_box(h, camera) for h in placed if h.confidence >= c.presence_threshold}
                for hand in placed:
                    if hand.side not in seen:
                        self._tracked.pop(hand.side, None)
                        continue
                    box = self._tracked.get(hand.side)
                    coarse_box = seen[hand.side]
                    if box is not None and all(_moved(box, other, TRACK_NEAR_COARSE) for other in seen.values()):
                        box = None
                    if box is not None:
                        box = _at_least(box, TRACK_AT_LEAST_COARSE * coarse_box[2])
                    from_coarse[hand.side] = box is None
                    hand_boxes[hand.side] = (box if box is not None else coarse_box, hand.confidence)
                points = self.coarse_adapter.parse_object(outputs, whole_frame=True)
                look_for_object = points.presence >= MIN_OBJECT_PRESENCE
                if look_for_object:
                    uv_object = apply_affine(points.uv, to_image)
                    coarse_object = self._object_box_around(uv_object, camera, self._object_depth_hint(
                        depth_m, uv_object, [h for h in placed if h.confidence >= c.presence_threshold]))
                else:
                    self._object_box = self._object_fit = None
            origin = crop_lib.FROM_TRACKING if self._tracked else frame_origin
            hand_boxes = self._decide_sides(image, camera, hand_boxes, from_coarse, origin, watch)
        elif self._object_box is None and hand_boxes:   # hands' boxes given, no object tracked: search when due
            searching = self._object_wait == 0
            self._object_wait = max(self._object_wait - 1, 0)
            coarse_object = self._coarse_object_box(image, camera, depth_m, watch) if searching else None
            look_for_object = coarse_object is not None
            if searching and not look_for_object:
                self._object_fit = None
                self._object_wait = OBJECT_SEARCH_INTERVAL - 1
        sides = [s for s in self.adapter.sides if s in hand_boxes]
        # The object's crop: its tracked box, else the one around the coarse pass's object points.
        object_box = (self._object_box if self._object_box is not None else coarse_object) if look_for_object else None
        jobs = [(side, hand_boxes[side][0], origin) for side in sides]
        if object_box is not None:
            jobs.append(("", object_box, crop_lib.FROM_TRACKING))
        hands: dict = {}
        side_belief: dict = {}   # side -> P(its last crop, as the network saw it, shows a right hand)
        object_points = None
        passes = 1
        while jobs:
            prepared = [self._prepare(image, camera, box, crop_origin, watch, side) for side, box, crop_origin in jobs]
            outputs = self._run_jobs([inputs for _, inputs in prepared], [not side for side, _, _ in jobs], watch)
            again = []
            for (side, _, crop_origin), (crop, _), out in zip(jobs, prepared, outputs):
                if not side:
                    with watch.stage("postprocess"):
                        points = self.adapter.parse_object(out)
                        uv_image = apply_affine(points.uv, invert_affine(crop.affine))
                    object_points = (points, uv_image, self._object_box_around(
                        uv_image, camera, self._object_depth_hint(depth_m, uv_image, list(hands.values()))), crop.affine)
                    continue
                with watch.stage("postprocess"):
                    hand = self.adapter.parse_hand(out, side, hand_boxes[side][1])
                    side_belief[side] = self.adapter.right_hand_probability(out)
                with watch.stage("root_depth"):
                    lifted, _ = lift_prediction(CropPrediction(hands=[hand]), crop, camera, depth_m, c, "",
                                                (width, height))
                hands[side] = lifted[0]
                # A box from the coarse pass is refined once: a second crop around the first crop's hand; so is a
                # tracked box the hand has moved out of (its new box's centre off by TRACKED_REFINE_SHIFT).
                if passes == 1:
                    refined = self._hand_box(lifted[0], camera)
                    if from_coarse.get(side) or (from_coarse.get(side) is False and lifted[0].present and _moved(
                            hand_boxes[side][0], refined, TRACKED_REFINE_SHIFT)):
                        again.append((side, refined, crop_origin))
            jobs, passes = again, passes + 1
        hands = [hands[side] for side in sides]
        if from_coarse:   # two boxes of the coarse pass may be one hand's; given boxes (detector, labels) are not
            kept = one_hand_per_place(hands, side_belief if self.side_cue == SIDE_CUE_PRESENCE else None)
            present = [h for h in kept if h.present]
            if len(kept) < len(hands) and len(present) == 1:
                found = self._look_beside(image, camera, depth_m, present[0], frame_box, frame_origin, watch)
                if found is not None:
                    kept = sorted([present[0], found], key=lambda h: self.adapter.sides.index(h.side))
            hands = kept
        if depth_m is not None and "depth_image" in c.depth_sources:
            with watch.stage("root_depth"):   # each visible joint's depth towards the depth image's (joint_depth)
                for hand in hands:
                    if hand.present and np.all(np.isfinite(hand.joints_xyz)):
                        hand.joints_xyz, _ = refine_joint_depths(hand.joints_xyz, hand.joints_uv, depth_m)
        self._tracked = {h.side: self._hand_box(h, camera) for h in hands if h.present}
        objects = self._object_result(camera, depth_m, watch, hands, *object_points) if object_points is not None else []
        if searching and not objects:
            self._object_wait = OBJECT_SEARCH_INTERVAL - 1
        return hands, objects, origin

    def _look_beside(self, image, camera, depth_m, hand: HandEstimate, frame_box, frame_origin, watch):
        """The other side's hand looked for again after `hand` was seen as both sides (SECOND_LOOK_PRESENCE): the
        coarse pass on the frame with `hand` and its forearm painted over; its strongest hand whose wrist lies
        outside the paint, run as the other side (a crop, then a second crop around its answer). Returns that
        lifted HandEstimate when it is present, else None. Two or three more network calls, on such frames only."""
        c = self.config
        height, width = image.shape[:2]
        side = next(s for s in self.adapter.sides if s != hand.side)
        painted, covered = cover_hands(image, [(hand.joints_uv, self._hand_box(hand, camera))])
        crop, outputs = self._run_coarse_pass(painted, camera, frame_box, frame_origin, watch)
        placed, _ = lift_prediction(self.coarse_adapter.parse(outputs), crop, camera, depth_m, c, "", (width, height))

        def outside_paint(candidate: HandEstimate) -> bool:
            u, v = np.round(candidate.joints_uv[WRIST]).astype(int)
            return not (0 <= u < width and 0 <= v < height and covered[v, u])

        candidates = [h for h in placed if h.confidence >= max(SECOND_LOOK_PRESENCE, c.presence_threshold)
                      and outside_paint(h)]
        if not candidates:
            return None
        strongest = max(candidates, key=lambda h: h.confidence)
        box, found = self._hand_box(strongest, camera), None
        for _ in range(2):
            crop, inputs = self._prepare(image, camera, box, frame_origin, watch, side)
            out = self._run_inputs([inputs], watch)[0]
            with watch.stage("postprocess"):
                parsed = self.adapter.parse_hand(out, side, strongest.confidence)
            with watch.stage("root_depth"):
                (found,), _ = lift_prediction(CropPrediction(hands=[parsed]), crop, camera, depth_m, c, "",
                                              (width, height))
            if not found.present:
                return None
            box = self._hand_box(found, camera)
        return found

    def _turned_inputs(self, image, box, side: str, degrees: float, watch) -> dict:
        """Network inputs (batch 1) of the square crop at `box` (image pixels) turned `degrees` about its centre
        (OpenCV's sense: the crop's content turns counter-clockwise as seen), run as `side` (a left hand mirrored)."""
        size = self.adapter.input_size
        affine = np.vstack([crop_affine(np.asarray(box, np.float64), size), [0.0, 0.0, 1.0]])
        if degrees:
            centre = (size - 1) / 2.0
            turn = np.vstack([cv2.getRotationMatrix2D((centre, centre), degrees, 1.0), [0.0, 0.0, 1.0]])
            affine = turn @ affine
        with watch.stage("preprocess"):
            pixels = warp_image(image, affine[:2], size)
            return self.adapter.preprocess_hand(pixels, side)

    def _decide_sides(self, image, camera, hand_boxes: dict, from_coarse: dict, origin, watch) -> dict:
        """The coarse pass's hands with their sides checked: each new hand's crop is run as a right and as a left
        hand (one call for all of them). Two new hands swap sides together when the swapped crops are more peaked
        in sum by more than PAIR_SIDE_MARGIN, else keep the coarse pass's sides. One new hand takes the side whose
        heat-maps are more peaked by more than SIDE_MARGIN (else the coarse pass's side), unless a tracked hand
        holds that side. With the presence cue (`side_cue`) the crops' right-hand presence replaces the
        peakedness, with the PRESENCE_* margins, a lone hand's averaged over its crop turned (SIDE_CHECK_TURNS_DEG).
        Tracked hands keep their side. Returns side -> (box, presence)."""
        new = [side for side in hand_boxes if from_coarse.get(side)]
        if not new or len(self.adapter.sides) != 2:
            return hand_boxes
        turns = (0.0,) + (tuple(SIDE_CHECK_TURNS_DEG) if len(new) == 1 and self.side_cue == SIDE_CUE_PRESENCE else ())
        jobs = [(side, as_side) for side in new for as_side in self.adapter.sides]
        inputs = [self._turned_inputs(image, hand_boxes[side][0], as_side, turn, watch)
                  for side, as_side in jobs for turn in turns]
        outputs = self._run_inputs(inputs, watch)
        # (hand, run as side) -> how much the crop run that way round looks like the network's own hands
        if self.side_cue == SIDE_CUE_PRESENCE:
            support = {job: float(np.mean([self.adapter.right_hand_probability(out)
                                           for out in outputs[k * len(turns):(k + 1) * len(turns)]]))
                       for k, job in enumerate(jobs)}
            margin, pair_margin = PRESENCE_SIDE_MARGIN, PRESENCE_PAIR_SIDE_MARGIN
        else:
            support = {(side, as_side): float(np.mean(self.adapter.parse_hand(out, as_side).joint_confidence))
                       for (side, as_side), out in zip(jobs, outputs)}
            margin, pair_margin = SIDE_MARGIN, PAIR_SIDE_MARGIN
        if len(new) == 2:   # a pair: both keep their sides or both swap
            right, left = self.adapter.sides[0], self.adapter.sides[1]
            lead = support[(right, left)] + support[(left, right)] - support[(right, right)] - support[(left, left)]
            if lead <= pair_margin:
                return hand_boxes
            return {right: hand_boxes[left], left: hand_boxes[right]}
        (side,) = new
        other = next(s for s in self.adapter.sides if s != side)
        taken = other in hand_boxes   # a tracked hand keeps its side
        if taken or support[(side, other)] - support[(side, side)] <= margin:
            return hand_boxes
        from_coarse[other] = True
        return {other: hand_boxes[side]}

    def _object_surface_depth(self, depth_m: Optional[np.ndarray], uv_image: np.ndarray) -> Optional[float]:
        """The depth (metres) a depth image measures around the object's centre point (uv_image[-1], image px;
        `depth_window_px`, valid range and count as for the hands): the face the camera sees. None without a
        depth image (or `depth_image` not among `depth_sources`) or with too few valid pixels there."""
        c = self.config
        if depth_m is None or "depth_image" not in c.depth_sources:
            return None
        return root_depth_from_image(depth_m, uv_image[-1:], np.zeros(1), [0], c.depth_window_px, c.depth_min_m,
                                     c.depth_max_m, c.depth_min_valid, 0.0)

    def _object_depth_hint(self, depth_m: Optional[np.ndarray], uv_image: np.ndarray, hands: list) -> Optional[float]:
        """The depth (metres) at which to size an object's box: the depth image's around its centre point, else the
        median wrist depth of the (placed) hands that hold it, else None."""
        surface = self._object_surface_depth(depth_m, uv_image)
        if surface is not None:
            return surface
        depths = [float(h.joints_xyz[0, 2]) for h in hands if h.present and np.isfinite(h.joints_xyz[0, 2])]
        return float(np.median(depths)) if depths else None

    def _coarse_object_box(self, image, camera, depth_m, watch) -> Optional[np.ndarray]:
        """The box around the object's points from the coarse pass on the whole frame, when the hands' boxes were
        given (its hands are not used), or None when its object presence is under MIN_OBJECT_PRESENCE. It replaced a
        search crop around the hands' boxes and a second crop around its answer: ground-truth hand boxes,
        calibration splits (seeds 2001 / 2002), objects within 20 mm and 15 deg 113 -> 125 of 266 and 217 -> 258 of
        509 (the pipeline's own crops, whose coarse pass finds the object this way: 121 and 256)."""
        width, height = image.shape[1], image.shape[0]
        with watch.stage("coarse_pass"):
            crop, outputs = self._run_coarse_pass(image, camera, crop_lib.full_frame_box(width, height),
                                                  crop_lib.FROM_FULL_FRAME, watch)
            points = self.coarse_adapter.parse_object(outputs, whole_frame=True)
            if points.presence < MIN_OBJECT_PRESENCE:
                return None
            uv_object = apply_affine(points.uv, invert_affine(crop.affine))
            return self._object_box_around(uv_object, camera, self._object_depth_hint(depth_m, uv_object, []))

    def _object_result(self, camera, depth_m, watch, hands, points, uv_image, box, affine) -> list:
        """The object's pose from its last crop's heat-maps (`object_heatmap_pose.heatmap_pose`, the depth from the
        depth image when there is one), then, with a depth image, fitted to it (`_fit_to_depth`; on the object's
        pixels when the object network segments its crop); [] (and no tracked object) when none is found (the gates:
        MIN_OBJECT_CONFIDENCE and MIN_DEPTH_AGREEMENT, or MIN_SEGMENTED_CONFIDENCE on the object's pixels)."""
        with watch.stage("root_depth"):
            surface = self._object_surface_depth(depth_m, uv_image)
        with watch.stage("postprocess"):
            pixels = self._segmented_pixels(points, affine, depth_m) if surface is not None else None
            if pixels is not None:
                points = dataclasses.replace(points, class_probs=(1.0 - MASK_CLASS_WEIGHT) * points.class_probs
                                             + MASK_CLASS_WEIGHT * pixels.class_votes)
            if self._object_box is not None and self._object_class is not None:   # tracked: its class so far counts
                points = dataclasses.replace(points, class_probs=OBJECT_CLASS_MEMORY * self._object_class
                                             + (1.0 - OBJECT_CLASS_MEMORY) * points.class_probs)
            pose = self.adapter.object_pose(points, affine, camera, uv_image[-1], surface)
        if pose is None:
            self._object_box = self._object_fit = None
            return []
        object_id, rotation, translation = points.object_id, pose.rotation, pose.translation
        confidence = float(np.max(points.class_probs)) * float(np.mean(np.append(pose.support, points.confidence[-1])))
        if pixels is not None:
            fit = self._fit_to_depth(camera, depth_m, watch, hands, object_id, pose, pixels)
            if fit is None or confidence < MIN_SEGMENTED_HEATMAP_CONFIDENCE:
                found = False
            else:
                rotation, translation = fit.rotation, fit.translation
                confidence = float(np.max(points.class_probs)) * fit.agreement.agreement * fit.agreement.coverage
                found = confidence >= MIN_SEGMENTED_CONFIDENCE
        else:
            # The heat-maps' confidence gates first: an object that will not be reported is not fitted.
            found, fit = confidence >= MIN_OBJECT_CONFIDENCE, None
            sure = (not found and surface is not None and object_id not in HEATMAP_GATED_CLASSES
                    and confidence >= SURE_CLASS_MIN_CONFIDENCE and float(np.max(points.class_probs)) >= SURE_CLASS)
            if (found or sure) and surface is not None:
                fit = self._fit_to_depth(camera, depth_m, watch, hands, object_id, pose)
            if fit is not None:
                rotation, translation = fit.rotation, fit.translation
                confidence *= fit.agreement.agreement
                found = fit.agreement.agreement >= (SURE_CLASS_MIN_AGREEMENT if sure else MIN_DEPTH_AGREEMENT)
        if not found or not self.config.depth_min_m <= translation[2] <= self.config.depth_max_m:
            self._object_box = self._object_fit = None
            return []
        self._object_fit = (object_id, rotation, translation) if fit is not None else None
        self._object_class = points.class_probs
        self._full_fit_wait = 0
        # The next frame's crop: sized for the object at the depth just found (the points alone bunch up).
        self._object_box = self._box_at_least(box, OBJECT_EXTENT_M, float(translation[2]), camera)
        return [ObjectEstimate(object_id=object_id, confidence=confidence, rotation=rotation,
                               translation=translation)]

    def _segmented_pixels(self, points, affine, depth_m) -> Optional[ObjectPixels]:
        """The object crop's segmentation in the image (`object_pixels`) when the object network has that head and
        at least MIN_OBJECT_PIXELS of the object's pixels have a depth; else None (the heat-map path)."""
        if points.segmentation is None or depth_m is None:
            return None
        pixels = object_pixels(points.segmentation, affine, self.adapter.input_size, depth_m.shape)
        return pixels if len(pixels.measured_depths(depth_m)) >= MIN_OBJECT_PIXELS else None

    def _fit_to_depth(self, camera, depth_m, watch, hands, object_id: str, pose, pixels=None):
        """The heat-map pose fitted to the depth image (object_depth_fit), the hands' bones and forearms set
        aside as what covers the object. Its starts: the heat-map pose turned by each of the object's
        `start_turns`, with the object's `pixels` moved along its ray to the depth their measured depths suggest
        (their median, plus half the surface's median distance from its centre: the camera sees the near side),
        and the heat-map pose moved along its ray by each of RAY_STARTS_M; for an object of the same class fitted on
        the last frame, that fit and the heat-map pose alone (2 starts instead of up to 28). None for an object
        without a known surface (the adapter's `object_surface`), and on the OBJECT_SEARCH_INTERVAL - 1 frames after
        a fit on the pixels that found nothing."""
        shape = self.adapter.object_surface(object_id)
        if shape is None:
            return None
        surface, turns = shape
        tracked = self._object_fit is not None and self._object_fit[0] == object_id
        if pixels is not None and not tracked and self._full_fit_wait > 0:
            return None
        start = pose.translation
        if pixels is not None and pose.translation[2] > 0:
            # The heat-map pose's direction at the depth of the object's pixels (the pixels' own centre is off where
            # the hands hide part of the object, the heat-map pose's depth where the camera sees its near end).
            depth = float(np.median(pixels.measured_depths(depth_m)))
            depth += 0.5 * float(np.median(np.linalg.norm(surface.points, axis=1)))
            start = pose.translation * (depth / pose.translation[2])
        starts = [(pose.rotation @ turn, start) for turn in turns]
        if start[2] > 0:   # the heat-map pose along its ray: the depth at its centre may be a finger's, or its end's
            starts += [(pose.rotation, start * (1.0 + step / start[2])) for step in RAY_STARTS_M
                       if start[2] + step >= self.config.depth_min_m]   # never nearer than a depth can be measured
        if tracked:
            starts = [self._object_fit[1:], (pose.rotation, start)]
        elif pixels is not None:
            self._full_fit_wait = OBJECT_SEARCH_INTERVAL   # counted down per frame; cleared when one is reported
        with watch.stage("object_fit"):
            segments = object_depth_fit.hand_segments([h.joints_xyz for h in hands if h.present])
            return object_depth_fit.fit_to_depth(starts, surface, depth_m, camera, segments, pixels)
