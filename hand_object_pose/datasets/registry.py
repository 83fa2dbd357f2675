"""Dataset readers by name, for YAML configs: {type: ..., root: ..., split: ...}."""
from __future__ import annotations

READERS = ("interhand26m", "ho3d", "h2o3d", "dexycb", "synthetic", "synthetic_sequence")


def build_reader(spec: dict):
    """A reader from a config mapping with keys type, root, split (and reader-specific options)."""
    spec = dict(spec)
    kind = spec.pop("type", None)
    if kind is None or "root" not in spec:
        raise ValueError(f"dataset spec needs 'type' and 'root'; got {sorted(spec)} (type={kind!r})")
    if kind == "interhand26m":
        from .interhand import InterHandDataset
        return InterHandDataset(**spec)
    if kind in ("ho3d", "h2o3d"):
        from .ho3d import HO3DDataset
        return HO3DDataset(two_hands=kind == "h2o3d", **spec)
    if kind == "dexycb":
        from .dexycb import DexYCBDataset
        return DexYCBDataset(**spec)
    if kind == "synthetic":
        from .synthetic import SyntheticDataset
        return SyntheticDataset(**spec)
    if kind == "synthetic_sequence":
        from .synthetic_sequence import SyntheticSequenceDataset
        return SyntheticSequenceDataset(**spec)
    raise ValueError(f"unknown dataset type {kind!r}; known: {', '.join(READERS)}")
