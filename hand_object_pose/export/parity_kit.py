"""Reading a parity kit and comparing our arrays with the official code's (see shared/reference/parity).

A kit directory holds `parity_spec.json`, `<config>.npz` (inputs, intermediates, outputs, kept
tensors) and `<config>.json` (array descriptions, checksums), and may hold its own
`parity_weights.py`. The weights are always regenerated from the kit's spec and the key listing,
never from constants in this project, so the same command checks any kit variant.

Model families plug in through `hand_object_pose.tools.parity`; each family's runner returns our
arrays under the kit's array names (full size, the kit's layouts) and `compare_all` compares them with
every array of the kit: a kit array that is neither produced by the runner nor in the runner's
documented list of inputs / non-outputs fails the check, so a kit variant with more arrays cannot pass
silently.
"""
from __future__ import annotations

import importlib.util
import json
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Mapping

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


# The json's "subsampled" note ("axis K taken with step k (indices 0, k, 2*k, ...)"), or the README
# tables' short form "(axK/k of FULLSHAPE)": every k-th index along axis K, starting at 0.
_SUBSAMPLING = re.compile(r"axis (\d+) taken with step (\d+)|\bax(\d+)/(\d+)\b")


def subsampling_rule(info: dict) -> tuple[int, int] | None:
    """(axis, step) of a kit array's description (`<config>.json` -> arrays[name]), None if stored full size.

    Raises ValueError on a subsampling note in neither documented form.
    """
    note = info.get("subsampled")
    if not note:
        return None
    match = _SUBSAMPLING.search(note)
    if match is None:
        raise ValueError(f"unrecognised subsampling note {note!r}; expected 'axis K taken with step k' or 'axK/k'")
    axis, step = (int(g) for g in (match.group(1, 2) if match.group(1) else match.group(3, 4)))
    return axis, step


def subsample(full: np.ndarray, info: dict) -> np.ndarray:
    """Our full-size array reduced the way the kit stored it (every k-th index along one axis)."""
    rule = subsampling_rule(info)
    if rule is None:
        return full
    axis, step = rule
    index = [slice(None)] * full.ndim
    index[axis] = slice(None, None, step)
    return full[tuple(index)]


def kept_official_arrays(kit: ParityKit) -> dict:
    """`kept/<key>` arrays of the kit's spec (`kept_official`) -> reason they are not outputs.

    They are official state-dict values the kit stores because no formula regenerates them; they go
    into `official_state_dict()`, so they are inputs of the run, not results of it.
    """
    return {f"kept/{key}": "kept official tensor: loaded as a weight, not a model output"
            for key in kit.spec.get("kept_official", [])}


def _first_match(patterns: Mapping[str, object], name: str, default):
    for pattern, value in patterns.items():
        if re.match(pattern, name):
            return value
    return default


def compare_all(kit: ParityKit, ours: Mapping[str, np.ndarray], known_uncompared: Mapping[str, str],
                tolerances: Mapping[str, float] | None = None,
                notes: Mapping[str, str] | None = None) -> ParityReport:
    """Compare every array of the kit with ours; the one comparison loop of all family runners.

    ours: our arrays under the kit's names, full size (before the kit's subsampling) in the kit's layout.
    known_uncompared: kit array name -> why it is not compared (model inputs, template assets we feed
        in, ...). Kit `kept/` tensors (`kept_official_arrays`) are added unless `ours` compares them.
    tolerances / notes: regex (re.match on the name) -> relative tolerance / note for the row; the
        first matching pattern wins; default tolerance DEFAULT_RTOL. Integer and bool arrays are exact.

    Each kit array becomes a row of the report (subsampled like the kit when its json says so), a
    `not_compared` entry with its reason, or, when it is in neither `ours` nor `known_uncompared`, a
    failing row: an array we cannot produce must not pass silently.
    """
    both = sorted(set(ours) & set(known_uncompared))
    if both:
        raise ValueError(f"arrays both produced and declared not compared: {both}")
    skipped = {**{k: v for k, v in kept_official_arrays(kit).items() if k not in ours}, **known_uncompared}
    descriptions = kit.meta.get("arrays", {})
    report = ParityReport(kit.config)
    for name, ref in kit.arrays.items():
        if name in skipped:
            report.not_compared[name] = skipped[name]
            continue
        rtol = _first_match(tolerances or {}, name, DEFAULT_RTOL)
        note = _first_match(notes or {}, name, "")
        if name not in ours:
            report.rows.append(ArrayComparison(name, ref.shape, float("inf"), float("inf"), rtol, False,
                                               "kit array not produced by our model nor declared an input"))
            continue
        info = descriptions.get(name, {})
        full = np.asarray(ours[name])
        rule = subsampling_rule(info)
        if rule is not None:
            full_shape = tuple(info.get("full_shape", ()))
            if full.shape != full_shape:
                report.rows.append(ArrayComparison(name, ref.shape, float("inf"), float("inf"), rtol, False,
                                                   f"our shape {full.shape} != kit full shape {full_shape}"))
                continue
            note = "; ".join(filter(None, (f"ax{rule[0]}/{rule[1]} of {'x'.join(map(str, full_shape))}", note)))
        report.rows.append(compare_array(name, subsample(full, info), ref, rtol=rtol, note=note))
    return report
