"""Which hand is which, for the per-hand-crop path: a hand found twice is reported once, and the side of a hand
found by the coarse pass is checked by running its crop as a right and as a left hand (inference/per_hand.py)."""
import contextlib
from pathlib import Path

import numpy as np
import pytest

import hand_object_pose.inference.per_hand as per_hand
from hand_object_pose.inference.result import HandEstimate

REPO = Path(__file__).resolve().parents[2]
DEFAULT_MODEL = REPO / "models" / "default" / "hand_heatmap_r18h.onnx"


def _hand(side, wrist_uv, box_side=100.0, joint_confidence=0.5, present=True):
    uv = np.asarray(wrist_uv, np.float64) + np.linspace(0.0, 40.0, 21)[:, None] * [0.3, -1.0]
    return HandEstimate(side=side, present=present, confidence=0.9, joints_xyz=np.ones((21, 3)), joints_uv=uv,
                        joint_confidence=np.full(21, joint_confidence),
                        crop_box=np.array([wrist_uv[0] - 50.0, wrist_uv[1] - 80.0, box_side, box_side]))


def test_a_hand_found_as_both_sides_is_kept_once_as_the_surer_side():
    right = _hand("right", (200.0, 150.0), joint_confidence=0.4)
    left = _hand("left", (210.0, 155.0), joint_confidence=0.6)       # wrists 11 px apart: one hand, 100 px crops
    assert per_hand.one_hand_per_place([right, left]) == [left]
    right.joint_confidence[:] = 0.7
    assert per_hand.one_hand_per_place([right, left]) == [right]


def test_two_hands_apart_or_one_absent_are_left_alone():
    right, left = _hand("right", (100.0, 150.0)), _hand("left", (100.0 + 0.3 * 100.0 + 1.0, 150.0))
    assert per_hand.one_hand_per_place([right, left]) == [right, left]
    gone = _hand("left", (101.0, 150.0), present=False)
    assert per_hand.one_hand_per_place([right, gone]) == [right, gone]
    assert per_hand.one_hand_per_place([right]) == [right]


@pytest.fixture(scope="module")
def lone_right_hands():
    """Synthetic frames (today's generator) with one right hand each; mirrored, each shows one left hand."""
    from hand_object_pose.synthetic.scene import SceneConfig, SceneGenerator

    generator = SceneGenerator(SceneConfig(p_left=0.0, p_right=1.0))
    frames = [generator.sample(77, index) for index in range(16)]
    return [frame for frame in frames if list(frame.hands) == ["right"]]


def _default_pipeline(side_cue: str = ""):
    """The trained default on the pipeline's own crops (coarse pass, side check, per-hand crops); `side_cue` replaces
    the one its export record names."""
    from hand_object_pose.inference.estimator import Estimator, EstimatorConfig

    estimator = Estimator(EstimatorConfig(model="hand_heatmap_r18h", model_path=str(DEFAULT_MODEL), warmup_runs=0,
                                          crop_source="auto", threads=1))
    if side_cue:
        estimator._per_hand.side_cue = side_cue
    return estimator


@contextlib.contextmanager
def _per_hand_constant(name: str, value: float):
    saved = getattr(per_hand, name)
    setattr(per_hand, name, value)
    try:
        yield
    finally:
        setattr(per_hand, name, saved)


def _sides_right(frames, margin_name: str, side_margin: float, side_cue: str = "") -> int:
    estimator = _default_pipeline(side_cue)
    with _per_hand_constant(margin_name, side_margin):
        correct = 0
        for frame in frames:
            for mirrored in (False, True):
                image, K = frame.rgb, frame.K.copy()
                if mirrored:
                    image = np.ascontiguousarray(image[:, ::-1])
                    K[0, 2] = image.shape[1] - 1 - K[0, 2]
                estimator.reset_tracking()
                sides = [h.side for h in estimator.estimate(image, K).hands if h.present]
                correct += sides == ["left" if mirrored else "right"]
        return correct


def test_the_side_check_names_lone_hands_and_their_mirror_images(lone_right_hands):
    """The trained default (trained for handedness: the presence side cue) on 16 lone right hands and their mirror
    images (lone left hands): with the side check the pipeline reports exactly the one true side for 31 of the 32;
    with the heat-maps' peakedness as the cue also 31; the coarse pass's side alone (a margin no crop reaches) 26.
    (The default before, peakedness: 31, coarse alone 25; on 900 calibration frames the presence cue has 9 lone
    hands on the wrong side where that default had 36: this 16-hand sample is small.)"""
    assert len(lone_right_hands) == 16
    assert _default_pipeline()._per_hand.side_cue == per_hand.SIDE_CUE_PRESENCE
    checked = _sides_right(lone_right_hands, "PRESENCE_SIDE_MARGIN", per_hand.PRESENCE_SIDE_MARGIN)
    peakedness = _sides_right(lone_right_hands, "SIDE_MARGIN", per_hand.SIDE_MARGIN, per_hand.SIDE_CUE_PEAKEDNESS)
    unchecked = _sides_right(lone_right_hands, "PRESENCE_SIDE_MARGIN", float("inf"))
    assert checked >= 26 and checked > unchecked, (checked, peakedness, unchecked)


@pytest.fixture(scope="module")
def two_hand_frames():
    """Synthetic frames (today's generator) that show a right and a left hand."""
    from hand_object_pose.synthetic.scene import SceneConfig, SceneGenerator

    generator = SceneGenerator(SceneConfig(p_left=1.0, p_right=1.0))
    frames = [generator.sample(78, index) for index in range(24)]
    return [frame for frame in frames if sorted(frame.hands) == ["left", "right"]][:16]


def _pairs_sided_right(frames, pair_margin: float) -> int:
    """Frames whose reported right and left hands both lie nearer (mean 2D joint distance) to the true hand of
    their own side than to the other one (the default's side cue, its pair margin set to `pair_margin`)."""
    estimator = _default_pipeline()
    with _per_hand_constant("PRESENCE_PAIR_SIDE_MARGIN", pair_margin):
        correct = 0
        for frame in frames:
            K = frame.K
            true_uv = {}
            for side, hand in frame.hands.items():
                joints = np.asarray(hand.joints_cam, np.float64)
                true_uv[side] = joints[:, :2] / joints[:, 2:3] * [K[0, 0], K[1, 1]] + [K[0, 2], K[1, 2]]
            estimator.reset_tracking()
            found = {h.side: h.joints_uv for h in estimator.estimate(frame.rgb, K).hands if h.present}
            correct += sorted(found) == ["left", "right"] and all(
                np.linalg.norm(uv - true_uv[side], axis=1).mean()
                < np.linalg.norm(uv - true_uv["left" if side == "right" else "right"], axis=1).mean()
                for side, uv in found.items())
        return correct


def test_two_new_hands_keep_the_coarse_sides_unless_both_crops_say_otherwise(two_hand_frames):
    """The trained default on 16 two-hand frames: the pipeline reports both hands on their true sides for 14 of
    them, the coarse pass's sides alone 13, a pair check that always swaps (a margin every pair exceeds) 2 (the
    default before, peakedness: 13 / 12 / 1)."""
    assert len(two_hand_frames) == 16
    checked = _pairs_sided_right(two_hand_frames, per_hand.PRESENCE_PAIR_SIDE_MARGIN)
    always_swapped = _pairs_sided_right(two_hand_frames, float("-inf"))
    assert checked >= 12 and always_swapped <= 2, (checked, always_swapped)


def test_a_tracked_hand_that_moved_out_of_its_crop_gets_a_second_crop(lone_right_hands):
    """A tracked box the hand has moved out of (its new keypoints' box centred > TRACKED_REFINE_SHIFT of the side
    away) is refined with a second crop, as a coarse-pass box is; a box still on the hand is not. Three hands, each
    tracked box shifted by 0.4 of its side: the default (trained for handedness) follows 2 of the 3 out of the box
    (the third it places inside the shifted crop, 33 px off; the default before followed all 3)."""
    estimator = _default_pipeline()
    refined, errors = 0, {"refined": [], "kept": []}
    for frame in lone_right_hands[:3]:
        estimator.reset_tracking()
        estimator.estimate(frame.rgb, frame.K)
        on_hand = estimator._per_hand._tracked["right"].copy()
        off_hand = on_hand + [0.4 * on_hand[2], 0.0, 0.0, 0.0]

        def tracked_from(box):
            estimator._per_hand._tracked = {"right": box.copy()}
            hand, = [h for h in estimator.estimate(frame.rgb, frame.K).hands if h.side == "right"]
            return hand.crop_box, float(np.linalg.norm(hand.joints_uv - frame.hands["right"].joints_2d, axis=1).mean())

        with _per_hand_constant("TRACK_AT_LEAST_COARSE", 0.0):   # boxes exactly as given (the coarse pass's floor off)
            crop_box, _ = tracked_from(on_hand)
            assert np.allclose(crop_box, on_hand)                    # still on the hand: its one crop
            refined_box, refined_error = tracked_from(off_hand)
            with _per_hand_constant("TRACKED_REFINE_SHIFT", float("inf")):
                kept_box, kept_error = tracked_from(off_hand)
        assert np.allclose(kept_box, off_hand)
        refined += not np.allclose(refined_box, off_hand)
        errors["refined"].append(refined_error)
        errors["kept"].append(kept_error)
    assert refined >= 2, errors
    assert np.mean(errors["refined"]) < np.mean(errors["kept"]), errors      # pixels from the true joints


def test_with_side_beliefs_two_hands_that_each_show_their_side_are_both_kept():
    """A network trained for handedness (presence side cue): a right and a left hand on one place whose crops both
    show the hand of their side are two hands side by side (wrists meet when both hold one object); otherwise the
    side the crops believe more is kept, whatever the heat-maps' peakedness."""
    right = _hand("right", (200.0, 150.0), joint_confidence=0.7)
    left = _hand("left", (210.0, 155.0), joint_confidence=0.4)
    both = {"right": per_hand.BOTH_SIDES_BELIEF + 0.1, "left": per_hand.BOTH_SIDES_BELIEF + 0.2}
    assert per_hand.one_hand_per_place([right, left], both) == [right, left]
    assert per_hand.one_hand_per_place([right, left], {"right": 0.1, "left": 0.8}) == [left]
    assert per_hand.one_hand_per_place([right, left]) == [right]       # peakedness without beliefs


def _tracked_from(estimator, frame, box):
    """The right hand of `frame` estimated (no depth image) with its tracked box set to `box`: (crop box, mean pixel
    error from the true joints, wrist depth in metres)."""
    estimator._per_hand._tracked = {"right": np.asarray(box, np.float64).copy()}
    hand, = [h for h in estimator.estimate(frame.rgb, frame.K).hands if h.side == "right"]
    error = float(np.linalg.norm(hand.joints_uv - frame.hands["right"].joints_2d, axis=1).mean())
    return hand.crop_box, error, float(hand.joints_xyz[0, 2])


def test_a_tracked_box_too_small_for_its_hand_grows_to_the_coarse_pass_box(lone_right_hands):
    """Without a depth image a tracked box had no lower bound: a box a third of the hand's showed the network a hand
    overflowing its crop, the keypoints came out bunched and the hand-size fit put the hand far away. The box now grows
    to the coarse pass's (TRACK_AT_LEAST_COARSE)."""
    estimator = _default_pipeline()
    grown, kept = [], []
    for frame in lone_right_hands[:3]:
        estimator.reset_tracking()
        estimator.estimate(frame.rgb, frame.K)
        on_hand = estimator._per_hand._tracked["right"]
        small = on_hand + np.array([1.0, 1.0, -2.0, -2.0]) * on_hand[2] / 3
        true_depth = float(frame.hands["right"].joints_cam[0, 2])
        box, error, depth = _tracked_from(estimator, frame, small)
        assert box[2] > 2 * small[2]
        grown.append((error, abs(depth - true_depth)))
        with _per_hand_constant("TRACK_AT_LEAST_COARSE", 0.0):
            box, error, depth = _tracked_from(estimator, frame, small)
        assert box[2] < 0.9 * on_hand[2]
        kept.append((error, abs(depth - true_depth)))
    grown, kept = np.array(grown), np.array(kept)
    assert np.all(grown[:, 0] < kept[:, 0]), (grown, kept)               # pixels
    assert np.mean(grown[:, 1]) < np.mean(kept[:, 1]), (grown, kept)     # metres of wrist depth


def test_a_tracked_box_where_the_coarse_pass_sees_no_hand_is_dropped(lone_right_hands):
    """A tracked box where the whole-frame pass sees no hand (an unrelated frame, a hand that left) is not kept: the
    hand starts again from its coarse-pass box (TRACK_NEAR_COARSE)."""
    estimator = _default_pipeline()
    for frame in lone_right_hands[:2]:
        estimator.reset_tracking()
        estimator.estimate(frame.rgb, frame.K)
        on_hand = estimator._per_hand._tracked["right"]
        width, height = frame.rgb.shape[1], frame.rgb.shape[0]
        centre = on_hand[:2] + on_hand[2:] / 2
        away = on_hand.copy()   # the same box in the image's farthest corner from the hand
        away[:2] = [0.0 if centre[0] > width / 2 else width - on_hand[2],
                    0.0 if centre[1] > height / 2 else height - on_hand[3]]
        assert np.linalg.norm(away[:2] - on_hand[:2]) > 1.5 * on_hand[2]
        box, error, _ = _tracked_from(estimator, frame, away)
        assert not np.allclose(box, away) and error < 0.1 * on_hand[2], (box, error)
        with _per_hand_constant("TRACK_NEAR_COARSE", float("inf")):
            box, error, _ = _tracked_from(estimator, frame, away)
        assert error > 0.3 * on_hand[2], (box, error)      # the stale crop (refined once) shows no hand


def test_without_tracking_every_frame_is_looked_at_afresh(lone_right_hands):
    """`tracking: false` (unrelated photos): a frame's result is what a fresh estimator gives on it, whatever came
    before; with tracking the crop of the frame before carries over and the result differs."""
    from hand_object_pose.inference.estimator import Estimator, EstimatorConfig

    first, second = lone_right_hands[0], lone_right_hands[1]

    def estimator(tracking: bool):
        return Estimator(EstimatorConfig(model="hand_heatmap_r18h", model_path=str(DEFAULT_MODEL), warmup_runs=0,
                                         crop_source="auto", threads=1, tracking=tracking))

    def right_joints(est, frame):
        return next(h for h in est.estimate(frame.rgb, frame.K).hands if h.side == "right").joints_uv

    fresh = right_joints(estimator(True), second)
    untracked, tracked = estimator(False), estimator(True)
    right_joints(untracked, first)
    right_joints(tracked, first)
    np.testing.assert_allclose(right_joints(untracked, second), fresh)
    assert not np.allclose(right_joints(tracked, second), fresh)


def test_a_turned_side_check_crop_is_the_crop_turned_about_its_centre():
    """0 degrees: the side check's own crop; 90 degrees: that crop turned a quarter counter-clockwise."""
    from hand_object_pose.geometry.camera import CameraIntrinsics
    from hand_object_pose.inference.estimator import _Stopwatch

    crops = _default_pipeline()._per_hand
    image = np.random.default_rng(3).integers(0, 255, (120, 160, 3), np.uint8)
    box = np.array([30.0, 10.0, 100.0, 100.0])
    camera = CameraIntrinsics(100.0, 100.0, 80.0, 60.0)
    watch = _Stopwatch({})
    _, plain = crops._prepare(image, camera, box, "tracking", watch, "left")
    np.testing.assert_array_equal(crops._turned_inputs(image, box, "left", 0.0, watch)["image"], plain["image"])
    quarter = crops._turned_inputs(image, box, "right", 90.0, watch)["image"]
    _, upright = crops._prepare(image, camera, box, "tracking", watch, "right")
    inner = slice(2, -2)   # away from the edges, where interpolation meets the outside of the box
    turned_upright = np.rot90(upright["image"][0], 1, axes=(1, 2))
    np.testing.assert_allclose(quarter[0, :, inner, inner], turned_upright[:, inner, inner], atol=1e-5)


def test_a_lone_new_hands_side_is_the_one_its_turned_crops_show_on_average(lone_right_hands):
    """A lone new hand's side check runs its crop both ways round at 0 and each of SIDE_CHECK_TURNS_DEG in ONE call
    (6 crops), and the hand takes the side whose crops, averaged over the turns, show a right hand more; without
    turns the call has 2 crops. (What the turns gain is measured in docs/hand_heatmap.md: on the calibration splits
    3 lone hands of 447 changed side, all to the true one, two of them by under 0.001 of averaged presence.)"""
    estimator = _default_pipeline()
    crops = estimator._per_hand
    calls, real_run = [], crops._run_inputs

    def spy(inputs, watch, run=None):
        outputs = real_run(inputs, watch, run)
        calls.append(outputs)
        return outputs

    crops._run_inputs = spy
    turns = 1 + len(per_hand.SIDE_CHECK_TURNS_DEG)
    checked = 0
    for frame in lone_right_hands[:6]:
        for turned in (True, False):
            calls.clear()
            estimator.reset_tracking()
            with _per_hand_constant("SIDE_CHECK_TURNS_DEG", per_hand.SIDE_CHECK_TURNS_DEG if turned else ()):
                result = estimator.estimate(frame.rgb, frame.K, depth_m=frame.depth)
            reported = [h.side for h in result.hands if h.present]
            if len(calls) < 2 or len(calls[1]) == 4 or len(reported) != 1:
                continue   # the coarse pass (the first call) found no hand or two; or no lone hand was reported
            outputs = calls[1]   # the side check: (as right, as left) x turns
            assert len(outputs) == (2 * turns if turned else 2)
            n = len(outputs) // 2
            as_right = np.mean([crops.adapter.right_hand_probability(o) for o in outputs[:n]])
            as_left = np.mean([crops.adapter.right_hand_probability(o) for o in outputs[n:]])
            assert reported == ["right" if as_right > as_left else "left"], (as_right, as_left)
            checked += 1
    assert checked >= 6
