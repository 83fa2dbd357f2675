"""Reading a parity kit and comparing our arrays with the official code's (see shared/reference/parity).

A kit directory holds `parity_spec.json`, `<config>.npz` (inputs, intermediates, outputs, kept
tensors) and `<config>.json` (array descriptions, checksums), and may hold its own
`parity_weights.py`. The weights are always regenerated from the kit's spec and the key listing,
never from constants in this project, so the same command checks any kit variant.

Model families plug in through `hand_object_pose.tools.parity`; each family's runner returns our
arrays under the kit's array names and this module compares them.
"""
from __future__ import annotations

import importlib.util
import json
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_PARITY_DIR = REPO_ROOT.parent / "shared" / "reference" / "parity"
SHARED_LISTINGS_DIR = REPO_ROOT.parent / "shared" / "reference" / "official_state_dicts"

# Relative tolerance on max|ours - ref| / max|ref| for float arrays (kit README section 7).
DEFAULT_RTOL = 1e-4


def load_weights_module(kit_dir: Path) -> ModuleType:
    """Import `parity_weights.py` from the kit directory, else the shared kit's copy."""
    for candidate in (Path(kit_dir) / "parity_weights.py", SHARED_PARITY_DIR / "parity_weights.py"):
        if candidate.is_file():
            spec = importlib.util.spec_from_file_location(f"parity_weights_{abs(hash(candidate))}", candidate)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    raise FileNotFoundError(f"no parity_weights.py in {kit_dir} nor in {SHARED_PARITY_DIR}")


@dataclass
class ParityKit:
    """One configuration of a parity kit, loaded."""

    config: str
    kit_dir: Path
    listings_dir: Path
    spec: dict                 # parity_spec.json -> configs[config]
    meta: dict                 # <config>.json
    arrays: dict               # <config>.npz, name -> np.ndarray
    weights: ModuleType        # the kit's parity_weights module

    def official_state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """Official-format state dict (official names, no `module.` prefix), regenerated from the spec."""
        listing = self.weights.parse_listing(str(self.listings_dir / f"{self.config}.txt"))
        kept = {name[len("kept/"):]: arr for name, arr in self.arrays.items() if name.startswith("kept/")}
        missing = [k for k in self.spec.get("kept_official", []) if k not in kept]
        if missing:
            raise KeyError(f"kept-official tensors missing from {self.config}.npz: {missing}")
        return self.weights.make_state_dict(listing, self.spec["seed"], overrides=self.spec.get("overrides", {}),
                                            kept=kept, aliases=self.spec.get("aliases", {}))


def load_kit(config: str, kit_dir: str | Path, listings_dir: str | Path | None = None) -> ParityKit:
    """Load `config` from `kit_dir`; raises FileNotFoundError/KeyError naming what is missing."""
    kit_dir = Path(kit_dir)
    spec_path = kit_dir / "parity_spec.json"
    for path in (spec_path, kit_dir / f"{config}.npz", kit_dir / f"{config}.json"):
        if not path.is_file():
            raise FileNotFoundError(f"parity kit file missing: {path}")
    spec_all = json.loads(spec_path.read_text())
    if config not in spec_all.get("configs", {}):
        raise KeyError(f"config {config!r} not in {spec_path}; it has {sorted(spec_all.get('configs', {}))}")
    if listings_dir is None:
        from_spec = kit_dir / spec_all.get("listing_dir", "../official_state_dicts")
        listings_dir = from_spec if (from_spec / f"{config}.txt").is_file() else SHARED_LISTINGS_DIR
    listings_dir = Path(listings_dir)
    if not (listings_dir / f"{config}.txt").is_file():
        raise FileNotFoundError(f"key listing missing: {listings_dir / (config + '.txt')}")
    with np.load(kit_dir / f"{config}.npz", allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    meta = json.loads((kit_dir / f"{config}.json").read_text())
    return ParityKit(config, kit_dir, listings_dir, spec_all["configs"][config], meta, arrays,
                     load_weights_module(kit_dir))


@dataclass
class ArrayComparison:
    name: str
    shape: tuple
    max_abs: float
    max_rel: float         # max_abs / max|ref| (0 for exact integer/bool matches)
    tolerance: float       # allowed max_rel (0 = exact)
    ok: bool
    note: str = ""


@dataclass
class ParityReport:
    config: str
    rows: list = field(default_factory=list)
    not_compared: dict = field(default_factory=dict)  # kit array name -> reason

    @property
    def ok(self) -> bool:
        return bool(self.rows) and all(r.ok for r in self.rows)

    def format(self) -> str:
        lines = [f"parity {self.config}: {sum(r.ok for r in self.rows)}/{len(self.rows)} arrays within tolerance"]
        width = max((len(r.name) for r in self.rows), default=10)
        for r in self.rows:
            status = "ok  " if r.ok else "FAIL"
            lines.append(f"  {status} {r.name:<{width}} {str(r.shape):<22} max_abs {r.max_abs:.3e} "
                         f"max_rel {r.max_rel:.3e} (tol {r.tolerance:.0e}){'  ' + r.note if r.note else ''}")
        for name, reason in sorted(self.not_compared.items()):
            lines.append(f"  skip {name:<{width}} {reason}")
        return "\n".join(lines)


def compare_array(name: str, ours, ref: np.ndarray, rtol: float = DEFAULT_RTOL, note: str = "") -> ArrayComparison:
    """Compare one array: exact for integer/bool kit arrays, relative-to-max for floats."""
    ours = np.asarray(ours)
    if ours.shape != ref.shape:
        return ArrayComparison(name, ref.shape, float("inf"), float("inf"), rtol, False,
                               f"shape {ours.shape} != kit {ref.shape}")
    if ref.dtype.kind in "biu":
        wrong = int(np.count_nonzero(ours.astype(ref.dtype) != ref)) if ref.size else 0
        return ArrayComparison(name, ref.shape, float(wrong), float(wrong), 0.0, wrong == 0,
                               note or (f"{wrong} elements differ" if wrong else ""))
    diff = np.abs(ours.astype(np.float64) - ref.astype(np.float64))
    max_abs = float(diff.max()) if diff.size else 0.0
    scale = float(np.abs(ref).max()) if ref.size else 0.0
    max_rel = max_abs / scale if scale > 0 else max_abs
    ok = bool(np.isfinite(max_abs)) and max_rel <= rtol
    return ArrayComparison(name, ref.shape, max_abs, max_rel, rtol, ok, note)
