"""Forearms and sleeves that continue a stand-in hand out of the image (issue 14).

A real hand in a photo comes with a wrist and a forearm, usually leaving the frame or ending in a
sleeve; a hand detector trained on real photos relies on that context. These meshes are drawn
with the hand but are not part of its labels (`scene.LABEL_IDS` "right_arm" / "left_arm").

All positions are metres in the OpenCV camera frame.
"""
from __future__ import annotations

import numpy as np

from hand_object_pose.geometry.procedural_objects import lathe


def _frame(direction: np.ndarray, width_axis: np.ndarray) -> np.ndarray:
    """(3, 3) rows x (across the palm), y, z (= direction), orthonormal."""
    z = direction / np.linalg.norm(direction)
    x = width_axis - width_axis @ z * z
    x /= np.linalg.norm(x)
    return np.stack([x, np.cross(z, x), z])


def tube(start: np.ndarray, direction: np.ndarray, width_axis: np.ndarray, radii: np.ndarray,
         lengths: np.ndarray, flatten: float | np.ndarray = 0.75, segments: int = 20
         ) -> tuple[np.ndarray, np.ndarray]:
    """A closed tube from `start` (3,) along unit `direction` (3,): radius `radii[k]` (m) at distance
    `lengths[k]` (m, increasing from 0); `flatten` < 1 (one number, or one per `lengths` entry,
    interpolated along the tube) makes it flatter across `width_axis`'s normal (wider along the palm's
    width, as a wrist is). Returns (vertices (V, 3), faces (F, 3))."""
    lengths = np.asarray(lengths, np.float64)
    profile = np.concatenate([[(0.0, lengths[0])], np.stack([radii, lengths], axis=1), [(0.0, lengths[-1])]])
    vertices, faces = lathe(profile, segments)
    ratio = np.broadcast_to(np.asarray(flatten, np.float64), lengths.shape)
    vertices[:, 1] *= np.interp(vertices[:, 2], lengths, ratio)
    return start + vertices @ _frame(direction, width_axis), faces


def forearm(wrist: np.ndarray, direction: np.ndarray, width_axis: np.ndarray, wrist_radius_m: float,
            length_m: float = 0.5, flatten: float = 0.72, belly_flatten: float = 0.85
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Forearm from the wrist (3,) along `direction` (3,), widening towards the elbow; `wrist_radius_m`
    is its half-width across the palm at the wrist, `flatten` its thickness / width there. Above the
    wrist the forearm rounds out: its thickness / width rises 90 % of the way to `belly_flatten` by
    12-20 cm (the flexor and extensor muscles; a real forearm is nearly as thick as it is wide there,
    where the wrist is flat), so that seen from the thumb's or the little finger's side it is not a
    thin slab.

    Returns (vertices, faces, distance of each vertex from the wrist along the arm, metres)."""
    lengths = np.array([0.0, 0.02, 0.06, 0.12, 0.2, 0.3, length_m])
    radii = wrist_radius_m * np.array([1.0, 1.0, 1.05, 1.15, 1.25, 1.3, 1.3])
    rounding = np.array([0.0, 0.0, 0.35, 0.75, 0.9, 0.9, 0.9])
    ratio = flatten + rounding * max(belly_flatten - flatten, 0.0)
    vertices, faces = tube(wrist, direction, width_axis, radii, lengths, flatten=ratio)
    along = (vertices - wrist) @ (direction / np.linalg.norm(direction))
    return vertices, faces, along


def sleeve(wrist: np.ndarray, direction: np.ndarray, width_axis: np.ndarray, wrist_radius_m: float,
           start_m: float, length_m: float = 0.5, looseness: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """A sleeve over the forearm from `start_m` beyond the wrist to `length_m`: an open-looking cuff
    (a short widening) then a loose tube `looseness` x the arm's radius."""
    lengths = np.array([start_m, start_m + 0.004, start_m + 0.03, start_m + 0.12, length_m])
    radius = wrist_radius_m * looseness
    radii = np.array([0.8 * radius, radius, 1.05 * radius, 1.15 * radius, 1.2 * radius])
    return tube(wrist, direction, width_axis, radii, lengths, flatten=0.85)
