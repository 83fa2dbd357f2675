"""Reader of a rendered synthetic sequence (`synthetic.sequence.render_sequence`: the demo's camera stream), so that
the evaluation can score the pipeline with tracking on consecutive frames (`evaluation.evaluate --dataset
synthetic_sequence --tracking on`), where the synthetic splits hold unrelated frames.

Layout: `<root>/<split>/sequence.json` (or `<root>/sequence.json` without a split), `rgb_000000.png`,
`depth_000000.png` (uint16 millimetres, 0 = nothing). Ground truth in the OpenCV camera frame, metres; hands in the
canonical wrist-first order; joints outside the image are not valid. The sequence's object is the generator's, with
the box corners and the symmetry the sequence records.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hand_object_pose.synthetic.objects import default_objects
from hand_object_pose.synthetic.sequence import load_sequence

from .sample import HandLabel, ObjectLabel, Sample


class SyntheticSequenceDataset:
    """Frames of one rendered sequence, in order."""

    name = "synthetic_sequence"

    def __init__(self, root, split: str | None = None):
        self.root = Path(root) / split if split else Path(root)
        self._sequence = load_sequence(self.root)   # names the missing sequence.json
        self._corners = {o.object_id: o.corners() for o in default_objects()}
        width, height = self._sequence.config["image_size"]
        self._size = (int(width), int(height))

    def __len__(self) -> int:
        return len(self._sequence)

    def __getitem__(self, index: int) -> Sample:
        truth = self._sequence.truths[index]
        width, height = self._size
        hands = {}
        for side in ("right", "left"):
            if side not in truth.hands:
                continue
            uv = truth.hands[side]["joints_2d"]
            inside = np.all((uv >= 0) & (uv <= [width - 1, height - 1]), axis=-1)
            hands[side] = HandLabel(side, truth.hands[side]["joints_cam"], inside)
        objects = [ObjectLabel(o["object_id"], o["rotation"], o["translation"],
                               corners_rest=self._corners.get(o["object_id"]), symmetry=o.get("symmetry") or None)
                   for o in truth.objects]
        name = f"{truth.index:06d}"
        return Sample(self.name, name, str(self.root / f"rgb_{name}.png"), self._sequence.K, self._size, hands,
                      objects, interacting=len(hands) == 2, depth_path=str(self.root / f"depth_{name}.png"))
