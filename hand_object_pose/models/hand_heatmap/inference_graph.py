"""The hand_heatmap inference graph (torch backend and ONNX export run this module).

Input: `image` (N, 3, S, S) float32 RGB in [0, 1], S = config.input_size (128); axis 0 dynamic.
Outputs, batch-first (soft-argmax readout of every heat-map channel, models.hand_heatmap.model):
  points_uv (N, 81, 2) crop pixels; points_rel_depth (N, 81) metres (depth minus the group's root);
  points_confidence (N, 81) in [0, 1]; presence (N, 3) probabilities [right hand, left hand, object]
  (whole-frame crop); object_class (N, C) softmax over config.object_ids (object / whole-frame crop);
  object_heatmap (N, 9, H, H) log-probabilities over the heat-map cells of an object crop's 9 points
  (channels 21-29; the Estimator scores box hypotheses against them: inference/object_heatmap_pose.py);
  with config.object_segmentation, object_segmentation (N, 1 + C, H, H) probabilities per heat-map cell of an
  object crop [background, each class] (the fit to a depth image uses them: inference/object_depth_fit.py).
Channels: 0-20 the hand of a hand crop (canonical order, as the network saw it: a left hand mirrored),
21-29 the object of an object crop (8 box corners in corners_rest order, then the centre), 30-80 a
whole-frame crop (right hand 21, left hand 21, object 9). The adapter reads the slice of its crop kind.
"""
from __future__ import annotations

import torch
from torch import nn

from .config import NUM_OBJECT_POINTS, OBJECT_CHANNELS, SEGMENTATION_OUTPUT
from .model import HandHeatmapNet, SoftArgmax

OUTPUT_NAMES = ("points_uv", "points_rel_depth", "points_confidence", "presence", "object_class", "object_heatmap")


def output_names(config) -> tuple:
    """The graph's outputs for a config: OUTPUT_NAMES, then SEGMENTATION_OUTPUT when it has that head."""
    return OUTPUT_NAMES + ((SEGMENTATION_OUTPUT,) if config.object_segmentation else ())


class HandHeatmapInferenceGraph(nn.Module):
    def __init__(self, model: HandHeatmapNet):
        super().__init__()
        self.model = model.eval()
        self.cells = model.config.heatmap_size
        self.readout = SoftArgmax(model.num_points, self.cells, model.config.input_size)

    def forward(self, image: torch.Tensor):
        logits, depth, presence, object_class, segmentation = self.model(image)
        uv, rel_depth, confidence = self.readout(logits, depth)
        # Sizes from the config, not the tensors, so the exported reshapes are constants.
        object_logits = logits[:, OBJECT_CHANNELS].float().reshape(-1, NUM_OBJECT_POINTS, self.cells * self.cells)
        object_heatmap = torch.log_softmax(object_logits, dim=-1).reshape(-1, NUM_OBJECT_POINTS, self.cells, self.cells)
        outputs = (uv, rel_depth, confidence, torch.sigmoid(presence), torch.softmax(object_class, dim=-1),
                   object_heatmap)
        if segmentation is not None:
            outputs += (torch.softmax(segmentation.float(), dim=1),)
        return outputs
