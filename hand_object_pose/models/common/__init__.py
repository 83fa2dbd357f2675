"""Building blocks shared by the four models."""
from .deformable_attention import MultiScaleDeformableAttention
from .mlp import MLP
from .position_encoding import sine_axis_code, sine_grid_code

__all__ = ["MLP", "MultiScaleDeformableAttention", "sine_axis_code", "sine_grid_code"]
