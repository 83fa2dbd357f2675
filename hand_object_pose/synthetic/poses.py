"""Plausible random hand poses for the stand-in hand: curl/spread synergies within joint limits.

A pose is MANO-format: 15 x 3 axis-angle finger rotations (MANO joint order, each in its parent's rest
frame, radians) for ``flat_hand_mean=True`` layers, plus 10 shape coefficients. Each joint's rotation is
built as ``flexion * flexion_axis + abduction * abduction_axis + twist * bone_axis`` (an axis-angle sum,
so "flexion" is exact when the other two are zero), with angles clipped to ``LIMITS``. Right-hand
poses are sampled; a left pose is the mirror image, axis-angle (x, y, z) -> (x, -y, -z), which matches
the mirrored left stand-in hand.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hand_object_pose.synthetic.standin_hand import FINGERS, THUMB, finger_frame

DIGITS = ("thumb", "index", "middle", "ring", "pinky")
MANO_JOINTS = {d.name: d.joints for d in FINGERS + (THUMB,)}
STYLES = ("open", "relaxed", "grasp", "fist", "point", "pinch", "victory", "thumbs_up", "ok")
# How often each style is drawn when none is asked for: the gestures and rest poses people show a
# camera (relaxed and open hands most, a few counting/sign gestures), and some grasps and fists.
STYLE_PRIOR = {"open": 0.2, "relaxed": 0.28, "grasp": 0.12, "fist": 0.05, "point": 0.08, "pinch": 0.08,
               "victory": 0.07, "thumbs_up": 0.05, "ok": 0.07}


@dataclass(frozen=True)
class JointLimit:
    flexion: tuple[float, float]    # radians, positive curls towards the palm
    abduction: tuple[float, float]  # radians, sideways (only base joints move sideways)


# Per digit: base, middle, distal joint (thumb: CMC, MCP, IP). Roughly human ranges.
LIMITS = {
    "thumb": (JointLimit((-0.3, 0.9), (-0.45, 0.6)), JointLimit((-0.2, 1.0), (0.0, 0.0)),
              JointLimit((-0.3, 1.4), (0.0, 0.0))),
    **{name: (JointLimit((-0.25, 1.6), (-0.35, 0.35)), JointLimit((0.0, 1.9), (0.0, 0.0)),
              JointLimit((-0.05, 1.4), (0.0, 0.0))) for name in ("index", "middle", "ring", "pinky")},
}
TWIST_LIMIT = 0.15
# How far each finger fans out for a unit of "spread" (positive moves towards the little finger).
SPREAD_PATTERN = {"thumb": -0.8, "index": -0.6, "middle": -0.1, "ring": 0.4, "pinky": 0.9}
CURL_GAINS = {"thumb": (0.6, 0.7, 0.8), "index": (1.0, 1.3, 0.8), "middle": (1.0, 1.3, 0.8),
              "ring": (1.0, 1.3, 0.8), "pinky": (1.05, 1.3, 0.8)}


def _axes(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(flexion axis, abduction axis, bone axis) of a digit in the right hand's rest frame."""
    direction, lateral, normal = finger_frame(name)
    return lateral, normal, direction


def compose_pose(flexion: dict, abduction: dict, twist: dict | None = None) -> np.ndarray:
    """(45,) right-hand axis-angle from per-digit angles (3 flexions, 1 base abduction, 3 twists).

    Angles are clipped to ``LIMITS`` (and |twist| <= TWIST_LIMIT).
    """
    pose = np.zeros((15, 3))
    for name in DIGITS:
        flex_axis, abd_axis, bone_axis = _axes(name)
        for k, joint in enumerate(MANO_JOINTS[name]):
            limit = LIMITS[name][k]
            flex = float(np.clip(flexion[name][k], *limit.flexion))
            abd = float(np.clip(abduction.get(name, 0.0), *limit.abduction)) if k == 0 else 0.0
            tw = float(np.clip(twist[name][k], -TWIST_LIMIT, TWIST_LIMIT)) if twist else 0.0
            pose[joint - 1] = flex * flex_axis + abd * abd_axis + tw * bone_axis
    return pose.reshape(45)


def decompose_pose(pose: np.ndarray) -> tuple[dict, dict]:
    """Inverse of ``compose_pose`` (per-digit flexions and base abductions) for its own outputs."""
    pose = np.asarray(pose).reshape(15, 3)
    flexion, abduction = {}, {}
    for name in DIGITS:
        flex_axis, abd_axis, _ = _axes(name)
        flexion[name] = [float(pose[j - 1] @ flex_axis) for j in MANO_JOINTS[name]]
        abduction[name] = float(pose[MANO_JOINTS[name][0] - 1] @ abd_axis)
    return flexion, abduction


def mirror_pose(pose: np.ndarray) -> np.ndarray:
    """Right <-> left: axis-angle (x, y, z) -> (x, -y, -z) for every joint of (..., 3k) poses."""
    pose = np.asarray(pose, dtype=np.float64)
    return (pose.reshape(*pose.shape[:-1], -1, 3) * np.array([1.0, -1.0, -1.0])).reshape(pose.shape)


def _style_curls(rng: np.random.Generator, style: str, grasp_curl: float) -> dict[str, float]:
    """Per-digit curl (radians of base flexion before the CURL_GAINS) of one style.

    Rest-like styles follow the hand's natural cascade: each finger towards the little finger
    curls a little more than the one before (one shared draw, small per-finger noise)."""
    if style == "open":
        level, cascade = rng.uniform(-0.12, 0.15), rng.uniform(0.0, 0.08)
        base = {n: level + cascade * k + rng.normal(0.0, 0.04) for k, n in enumerate(DIGITS[1:])}
        base["thumb"] = rng.uniform(-0.15, 0.25)
    elif style == "relaxed":
        level, cascade = rng.uniform(0.15, 0.5), rng.uniform(0.03, 0.15)
        base = {n: level + cascade * k + rng.normal(0.0, 0.05) for k, n in enumerate(DIGITS[1:])}
        base["thumb"] = rng.uniform(0.1, 0.5)
    elif style == "grasp":
        base = {n: grasp_curl + rng.normal(0.0, 0.12) for n in DIGITS}
    elif style == "fist":
        base = {n: rng.uniform(0.95, 1.3) for n in DIGITS}
    elif style == "point":
        base = {n: rng.uniform(0.9, 1.25) for n in DIGITS}
        base["index"] = rng.uniform(-0.1, 0.15)
    elif style == "pinch":
        base = {n: rng.uniform(0.2, 1.1) for n in DIGITS}
        base["thumb"], base["index"] = rng.uniform(0.6, 1.0), rng.uniform(0.5, 0.9)
    elif style == "victory":
        base = {n: rng.uniform(0.95, 1.3) for n in DIGITS}
        base["index"], base["middle"] = rng.uniform(-0.1, 0.15), rng.uniform(-0.1, 0.15)
        base["thumb"] = rng.uniform(0.6, 1.0)
    elif style == "thumbs_up":
        base = {n: rng.uniform(1.0, 1.3) for n in DIGITS}
        base["thumb"] = rng.uniform(-0.25, 0.1)
    elif style == "ok":
        base = {n: rng.uniform(-0.05, 0.3) for n in DIGITS}
        base["thumb"], base["index"] = rng.uniform(0.6, 0.9), rng.uniform(0.7, 1.0)
    else:
        raise ValueError(f"unknown pose style {style!r}; expected one of {STYLES}")
    return base


def sample_hand_pose(rng: np.random.Generator, style: str | None = None, grasp_curl: float = 0.7,
                     side: str = "right") -> tuple[np.ndarray, np.ndarray]:
    """A random (hand_pose (45,), betas (10,)) for ``side``; ``style`` None picks one at random.

    grasp_curl: typical curl for the "grasp" style (about 1.1 for a thin handle, 0.4 for a large ball).
    """
    if side not in ("right", "left"):
        raise ValueError(f"side must be 'right' or 'left', got {side!r}")
    if style is None:
        style = STYLES[rng.choice(len(STYLES), p=[STYLE_PRIOR[s] for s in STYLES])]
    curls = _style_curls(rng, style, grasp_curl)
    spread = (rng.uniform(-0.1, 0.5) if style in ("open", "relaxed", "point", "victory", "ok")
              else rng.uniform(-0.2, 0.2))
    flexion = {n: [curls[n] * g + rng.normal(0.0, 0.06) for g in CURL_GAINS[n]] for n in DIGITS}
    abduction = {n: SPREAD_PATTERN[n] * spread + rng.normal(0.0, 0.06) for n in DIGITS}
    twist = {n: list(rng.normal(0.0, 0.04, 3)) for n in DIGITS}
    pose = compose_pose(flexion, abduction, twist)
    betas = np.clip(rng.normal(0.0, 0.8, 10), -2.5, 2.5)
    return (mirror_pose(pose) if side == "left" else pose), betas
