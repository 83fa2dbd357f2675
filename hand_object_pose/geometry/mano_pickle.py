"""Official MANO `.pkl` -> plain `.npz` (no chumpy, no scipy, no arbitrary pickle): the library half of
`python -m hand_object_pose.tools.convert_mano`.

The official files are Python-2 pickles whose ``shapedirs`` is a ``chumpy.ch.Ch`` and whose
``J_regressor`` is a ``scipy.sparse.csc_matrix``. They are read with `hand_object_pose.safe_pickle`'s
restricted unpickler: only its numpy/container globals, ``object`` and stand-ins for those two classes
(which keep their pickled state and never run their code) are allowed; any other global is refused with
an error naming it. A missing, empty or non-pickle file is a one-line error, not a traceback.
The npz holds the arrays of `geometry.hand_model_files` plus ``side``; a left hand's ``shapedirs`` is
mirrored (``[:, 0, :] *= -1``, the official LEFT file's known quirk) and flagged ``left_shapedirs_fixed``.
MANO is under the MANO licence (non-commercial): never commit the outputs.
"""
from __future__ import annotations

import copyreg
import os
import pickle
import struct
import warnings
from typing import Optional

import numpy as np

from hand_object_pose import safe_pickle
from .hand_model_files import REQUIRED_KEYS, save_hand_model


class UnsafePickleError(safe_pickle.UnsafePickleError):
    """The pickle asked for a global outside the MANO allow-list."""


class PickledChumpyArray:
    """Stand-in for ``chumpy.ch.Ch`` (and any chumpy node): keeps the pickled attribute dict and runs
    no chumpy code; the array of a terminal node is ``state['x']``."""

    def __setstate__(self, state):
        self.state = state

    def to_array(self) -> np.ndarray:
        state = getattr(self, "state", None)
        if not isinstance(state, dict) or "x" not in state:
            raise ValueError("pickled chumpy.ch.Ch has no 'x' array in its state")
        return _to_array(state["x"])


class PickledSparseMatrix:
    """Stand-in for ``scipy.sparse.csc_matrix`` / ``csr_matrix``: densified from data/indices/indptr."""

    compressed_axis = 1  # csc: indptr runs over columns

    def __setstate__(self, state):
        self.state = state

    def to_array(self) -> np.ndarray:
        state = getattr(self, "state", None)
        if not isinstance(state, dict):
            raise ValueError("pickled sparse matrix has no attribute dict")
        missing = [k for k in ("data", "indices", "indptr") if k not in state]
        shape = state.get("_shape", state.get("shape"))
        if missing or shape is None:
            raise ValueError(f"pickled sparse matrix lacks {missing or ['_shape']}")
        data, indices, indptr = (np.asarray(state[k]) for k in ("data", "indices", "indptr"))
        rows, cols = (int(s) for s in shape)
        dense = np.zeros((rows, cols), dtype=np.float64)
        outer = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
        if self.compressed_axis == 1:
            np.add.at(dense, (indices, outer), data)
        else:
            np.add.at(dense, (outer, indices), data)
        return dense


class PickledCsrMatrix(PickledSparseMatrix):
    compressed_axis = 0


# Added to `safe_pickle`'s numpy/container allow-list: the scipy stand-ins and the pieces Python 2 used
# to pickle plain new-style objects (protocols 0/1).
_MANO_GLOBALS = {
    ("copy_reg", "_reconstructor"): copyreg._reconstructor,
    ("copyreg", "_reconstructor"): copyreg._reconstructor,
    ("__builtin__", "object"): object,
    ("builtins", "object"): object,
}
for _module in ("scipy.sparse.csc", "scipy.sparse._csc", "scipy.sparse"):
    _MANO_GLOBALS[(_module, "csc_matrix")] = PickledSparseMatrix
for _module in ("scipy.sparse.csr", "scipy.sparse._csr", "scipy.sparse"):
    _MANO_GLOBALS[(_module, "csr_matrix")] = PickledCsrMatrix


class RestrictedUnpickler(safe_pickle.RestrictedUnpickler):
    """`safe_pickle.RestrictedUnpickler` plus the MANO stand-ins: the scipy classes above, and every
    chumpy class (a pickle may hold derived chumpy nodes of any class, so they are matched by module)."""

    def __init__(self, file, **kwargs):
        super().__init__(file, _MANO_GLOBALS, **kwargs)

    def find_class(self, module: str, name: str):
        if module == "chumpy" or module.startswith("chumpy."):
            # Any chumpy node becomes an inert state holder (only terminal Ch nodes carry an 'x' array;
            # a derived node in a key we need fails later with a clear error).
            return PickledChumpyArray
        try:
            return super().find_class(module, name)
        except safe_pickle.UnsafePickleError:
            raise UnsafePickleError(
                f"refusing to load global '{module}.{name}': a MANO file may only contain numpy arrays, "
                f"chumpy.ch.Ch and scipy sparse matrices") from None


# What loading a truncated, empty or non-pickle file raises (besides UnpicklingError).
_NOT_A_PICKLE_ERRORS = (EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError, OverflowError,
                        struct.error)


def _to_array(value) -> np.ndarray:
    if isinstance(value, (PickledChumpyArray, PickledSparseMatrix)):
        return value.to_array()
    if isinstance(value, np.ndarray):
        return value
    raise ValueError(f"expected an array, got {type(value).__name__}")


def read_mano_pickle(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The MANO arrays (``REQUIRED_KEYS``) of an official pkl, as plain numpy arrays."""
    _require_file(path)
    with open(path, "rb") as handle, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            content = RestrictedUnpickler(handle, encoding="latin1").load()
        except UnsafePickleError:
            raise
        except (pickle.UnpicklingError, *_NOT_A_PICKLE_ERRORS) as exc:
            reason = " ".join(str(exc).split()) or "the file ends before the pickle does"
            raise ValueError(f"{path}: not a MANO pickle: {type(exc).__name__}: {reason}") from None
    if not isinstance(content, dict):
        raise ValueError(f"{path}: expected a pickled dict of MANO arrays, got {type(content).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in content]
    if missing:
        raise ValueError(f"{path}: missing MANO key(s) {missing}")
    arrays = {}
    for key in REQUIRED_KEYS:
        try:
            arrays[key] = _to_array(content[key])
        except ValueError as exc:
            raise ValueError(f"{path}: '{key}': {exc}") from None
    return arrays


def _require_file(path) -> None:
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} does not exist")
    if not os.path.isfile(path):
        raise ValueError(f"{path} is not a file (expected an official MANO_RIGHT.pkl or MANO_LEFT.pkl)")


def side_from_filename(path: str | os.PathLike) -> Optional[str]:
    name = os.path.basename(os.fspath(path)).upper()
    if "RIGHT" in name and "LEFT" not in name:
        return "right"
    if "LEFT" in name and "RIGHT" not in name:
        return "left"
    return None


def convert(pkl_path, npz_path, side: Optional[str] = None,
            right_shapedirs: Optional[np.ndarray] = None) -> dict[str, np.ndarray]:
    """Convert one file. ``right_shapedirs`` (from the matching right file) lets a left file be checked:
    its shapedirs are mirrored only if they are not mirrored already."""
    if not os.fspath(npz_path).endswith(".npz"):
        raise ValueError(f"output file must end with .npz, got {npz_path}")
    _require_file(pkl_path)
    side = side or side_from_filename(pkl_path)
    if side not in ("right", "left"):
        raise ValueError(f"{pkl_path}: cannot tell the hand side from the file name; pass --side right|left")
    arrays = read_mano_pickle(pkl_path)
    arrays["side"] = np.array(side)
    if side == "left":
        shapedirs = arrays["shapedirs"].astype(np.float64).copy()
        already_mirrored = (right_shapedirs is not None
                            and np.allclose(shapedirs[:, 0], -right_shapedirs[:, 0])
                            and not np.allclose(shapedirs[:, 0], right_shapedirs[:, 0]))
        if not already_mirrored:
            shapedirs[:, 0, :] *= -1.0
        arrays["shapedirs"] = shapedirs
        arrays["left_shapedirs_fixed"] = np.array(True)
    save_hand_model(npz_path, arrays)
    return arrays


def convert_directory(source_dir, out_dir) -> list[str]:
    """Convert MANO_RIGHT.pkl and MANO_LEFT.pkl of ``source_dir`` into ``out_dir`` (same stems, .npz)."""
    os.makedirs(out_dir, exist_ok=True)
    written = []
    right_shapedirs = None
    for stem, side in (("MANO_RIGHT", "right"), ("MANO_LEFT", "left")):
        source = os.path.join(source_dir, stem + ".pkl")
        if not os.path.isfile(source):
            raise FileNotFoundError(f"{source} does not exist (expected the official MANO_RIGHT.pkl and MANO_LEFT.pkl)")
        target = os.path.join(out_dir, stem + ".npz")
        arrays = convert(source, target, side=side, right_shapedirs=right_shapedirs)
        if side == "right":
            right_shapedirs = arrays["shapedirs"]
        written.append(target)
    return written
