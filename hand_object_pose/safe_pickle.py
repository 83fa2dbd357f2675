"""Loading pickles that users hand us (dataset meta files, MANO files) without running their code.

A pickle can name any importable callable and have it called while loading. This unpickler
resolves only an allow-list of globals: numpy's array/scalar reconstruction and plain containers.
Everything else raises `UnsafePickleError` naming the refused global. Callers may add harmless
stand-in classes for specific names (e.g. the MANO converter's chumpy/scipy stand-ins).
Python-2 pickles (HO-3D, MANO) are read with `encoding="latin1"`, which numpy needs for their
raw array bytes.
"""
from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any, Mapping

import numpy as np

# (module, name) -> object. numpy moved `core` to `_core` in 2.0; pickles may use either path.
_NUMPY_GLOBALS = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): __import__("codecs").encode,  # how protocol-2 pickles store bytes
}
for _core in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _NUMPY_GLOBALS[(_core, "_reconstruct")] = np._core.multiarray._reconstruct
    _NUMPY_GLOBALS[(_core, "scalar")] = np._core.multiarray.scalar
for _core in ("numpy.core.numeric", "numpy._core.numeric"):
    _NUMPY_GLOBALS[(_core, "_frombuffer")] = np._core.numeric._frombuffer

_CONTAINER_GLOBALS = {
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("__builtin__", "set"): set,          # Python-2 name of the builtins module
    ("__builtin__", "frozenset"): frozenset,
}


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle refers to a global outside the allow-list."""


class RestrictedUnpickler(pickle.Unpickler):
    """`pickle.Unpickler` that resolves only allow-listed globals (see module docstring)."""

    def __init__(self, file, extra_globals: Mapping[tuple[str, str], Any] | None = None, **kwargs):
        super().__init__(file, **kwargs)
        self._allowed = {**_NUMPY_GLOBALS, **_CONTAINER_GLOBALS, **(extra_globals or {})}

    def find_class(self, module: str, name: str):
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refusing to load global '{module}.{name}' from a pickle: only numpy arrays and plain "
                f"containers are allowed") from None


def load_restricted(source, extra_globals: Mapping[tuple[str, str], Any] | None = None) -> Any:
    """Unpickle a file path, bytes or binary file object with the restricted unpickler (latin1)."""
    if isinstance(source, (bytes, bytearray)):
        return RestrictedUnpickler(io.BytesIO(source), extra_globals, encoding="latin1").load()
    if isinstance(source, (str, Path)):
        with open(source, "rb") as handle:
            return RestrictedUnpickler(handle, extra_globals, encoding="latin1").load()
    return RestrictedUnpickler(source, extra_globals, encoding="latin1").load()
