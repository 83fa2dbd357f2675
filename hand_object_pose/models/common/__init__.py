"""Building blocks shared by the four models."""
from .mlp import MLP
from .position_encoding import sine_axis_code, sine_grid_code

__all__ = ["MLP", "sine_axis_code", "sine_grid_code"]
