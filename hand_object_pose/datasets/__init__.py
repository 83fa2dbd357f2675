"""Readers of the papers' datasets, each returning `Sample`s in the project's conventions."""
from .dexycb import DexYCBDataset
from .ho3d import H2O3DDataset, HO3DDataset
from .interhand import InterHandDataset
from .sample import HandLabel, ObjectLabel, Sample
from .synthetic import SyntheticDataset

__all__ = ["DexYCBDataset", "H2O3DDataset", "HO3DDataset", "HandLabel", "InterHandDataset", "ObjectLabel", "Sample", "SyntheticDataset"]
