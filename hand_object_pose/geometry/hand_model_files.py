"""The plain-array `.npz` format for MANO-layout hand models: keys, shapes, validation, I/O.

Both the MANO converter (`geometry/mano_pickle.py`, official pkl -> npz) and the licence-free stand-in hand
(`synthetic/standin_hand.py`) write this format; the MANO layer (`geometry/mano.py`) reads only it, with
``np.load(allow_pickle=False)``.

Which file a hand side uses is decided here, once (`hand_model_file`): the user's converted MANO file
when the ``mano_path`` setting names one (MANO is licensed and never shipped), else the committed
licence-free stand-in hand (``models/standin_hand/standin_hand_<side>.npz``, NOT MANO: same layout,
different shape).

Arrays (V = 778 vertices, J = 16 joints, F = 1538 faces, S = shape coefficients, P = 9 * (J - 1)):

=================== ============ ======= ===================================================================
key                 shape        dtype   meaning
=================== ============ ======= ===================================================================
v_template          (V, 3)       float64 rest-pose vertices, metres, model frame
shapedirs           (V, 3, S)    float64 shape blend shapes, metres per unit coefficient
posedirs            (V, 3, P)    float64 pose correctives, metres per unit of (R_j - I) entry (row-major)
J_regressor         (J, V)       float64 joint regressor (dense), rows sum to 1
weights             (V, J)       float64 linear-blend-skinning weights, rows sum to 1
kintree_table       (2, J)       int64   row 0: parent of each joint (root -1), row 1: joint ids 0..J-1
f                   (F, 3)       int64   triangles, counter-clockwise seen from outside
hands_components    (45, 45)     float64 pose PCA basis, one component per row (axis-angle, 15 joints)
hands_mean          (45,)        float64 mean hand pose (axis-angle, 15 joints)
side                ()           str     'right' or 'left' (optional in files from elsewhere)
left_shapedirs_fixed ()          bool    left files only: True when ``shapedirs`` is already mirrored
                                         (the official MANO_LEFT.pkl is not; see docs/mano.md)
=================== ============ ======= ===================================================================
"""
from __future__ import annotations

import io
import os
import zipfile
from typing import Mapping, NamedTuple

import numpy as np

NUM_VERTICES = 778
NUM_JOINTS = 16
NUM_FACES = 1538
NUM_POSE_FEATURES = 9 * (NUM_JOINTS - 1)
NUM_HAND_POSE = 3 * (NUM_JOINTS - 1)

REQUIRED_KEYS = (
    "v_template", "shapedirs", "posedirs", "J_regressor", "weights",
    "kintree_table", "f", "hands_components", "hands_mean",
)
OPTIONAL_KEYS = ("side", "left_shapedirs_fixed")
SIDES = ("right", "left")
MANO_FILES = {"right": "MANO_RIGHT.npz", "left": "MANO_LEFT.npz"}
"""File names of the converted MANO models in a ``mano_path`` directory (`geometry/mano_pickle.py` writes them)."""

# Expected shapes; None = any size (the number of shape coefficients).
_SHAPES = {
    "v_template": (NUM_VERTICES, 3),
    "shapedirs": (NUM_VERTICES, 3, None),
    "posedirs": (NUM_VERTICES, 3, NUM_POSE_FEATURES),
    "J_regressor": (NUM_JOINTS, NUM_VERTICES),
    "weights": (NUM_VERTICES, NUM_JOINTS),
    "kintree_table": (2, NUM_JOINTS),
    "f": (NUM_FACES, 3),
    "hands_components": (NUM_HAND_POSE, NUM_HAND_POSE),
    "hands_mean": (NUM_HAND_POSE,),
}


def _shape_ok(actual: tuple[int, ...], expected: tuple) -> bool:
    return len(actual) == len(expected) and all(e is None or a == e for a, e in zip(actual, expected))


def validate_hand_model(arrays: Mapping[str, np.ndarray], source: str = "hand model") -> dict[str, np.ndarray]:
    """Check keys, shapes and index ranges; return a dict with normalised dtypes.

    Raises ValueError naming the missing key or the wrong shape and what was expected.
    """
    missing = [k for k in REQUIRED_KEYS if k not in arrays]
    if missing:
        raise ValueError(f"{source}: missing key(s) {missing}; a MANO-layout npz needs {list(REQUIRED_KEYS)}")
    out: dict[str, np.ndarray] = {}
    for key in REQUIRED_KEYS:
        value = np.asarray(arrays[key])
        if not _shape_ok(value.shape, _SHAPES[key]):
            expected = tuple("S" if e is None else e for e in _SHAPES[key])
            raise ValueError(f"{source}: '{key}' has shape {value.shape}, expected {expected}")
        if key in ("kintree_table", "f"):
            if not np.issubdtype(value.dtype, np.integer):
                raise ValueError(f"{source}: '{key}' must hold integers, got dtype {value.dtype}")
            value = value.astype(np.int64)
        else:
            if not np.issubdtype(value.dtype, np.floating):
                raise ValueError(f"{source}: '{key}' must hold floats, got dtype {value.dtype}")
            value = value.astype(np.float64)
        out[key] = value
    if out["f"].min() < 0 or out["f"].max() >= NUM_VERTICES:
        raise ValueError(f"{source}: 'f' indexes vertices outside 0..{NUM_VERTICES - 1}")
    parents = out["kintree_table"][0].copy()
    # The official files store the root's parent as uint32 max; normalise to -1.
    parents[0] = -1
    if np.any(parents[1:] < 0) or np.any(parents[1:] >= np.arange(1, NUM_JOINTS)):
        raise ValueError(f"{source}: 'kintree_table' parents must precede their children, got {parents.tolist()}")
    out["kintree_table"] = np.stack([parents, np.arange(NUM_JOINTS)]).astype(np.int64)
    if "side" in arrays:
        side = np.asarray(arrays["side"])
        side = str(side.item()) if side.size == 1 else str(side)
        if side not in SIDES:
            raise ValueError(f"{source}: 'side' is {side!r}, expected one of {SIDES}")
        out["side"] = np.array(side)
    if "left_shapedirs_fixed" in arrays:
        out["left_shapedirs_fixed"] = np.array(bool(np.asarray(arrays["left_shapedirs_fixed"])))
    return out


def load_hand_model(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Load and validate a MANO-layout npz (never unpickles: ``allow_pickle=False``)."""
    path = os.path.expanduser(os.fspath(path))
    if not path.endswith(".npz"):
        raise ValueError(f"{path}: hand models load only from .npz files (convert an official .pkl with "
                         f"`python -m hand_object_pose.tools.convert_mano`)")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"hand model file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except ValueError as exc:  # object arrays need pickle: refuse, say why
        raise ValueError(f"{path}: holds an array that needs pickle to load ({exc}); expected plain arrays") from exc
    return validate_hand_model(arrays, source=path)


def save_hand_model(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> None:
    """Validate and write a MANO-layout npz, byte-for-byte deterministic for the same arrays.

    ``np.savez_compressed`` stamps the current time into the zip; this writer uses a fixed timestamp
    so that regenerating a committed file gives identical bytes.
    """
    clean = validate_hand_model(arrays, source=os.fspath(path))
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key in REQUIRED_KEYS + OPTIONAL_KEYS:
            if key not in clean:
                continue
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asarray(clean[key], order="C"), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, buffer.getvalue())


# --- which file: the user's MANO, else the stand-in ------------------------------------------------------

def standin_hand_dirs(package_dir: str | os.PathLike | None = None) -> list[str]:
    """Where the committed stand-in npz files can be, in search order.

    * a source checkout: ``<repo>/models/standin_hand`` beside the ``hand_object_pose`` package;
    * an install prefix (colcon/ament, whose CMakeLists installs ``models/`` into the share folder, or a
      pip install, whose setup.py ships them as data files): ``<prefix>/share/hand_object_pose/
      models/standin_hand`` with the package at ``<prefix>/lib/pythonX.Y/site-packages/hand_object_pose``.
    """
    package_dir = os.path.abspath(package_dir or os.path.join(os.path.dirname(__file__), os.pardir))
    prefix = os.path.join(package_dir, os.pardir, os.pardir, os.pardir, os.pardir)
    return [os.path.normpath(os.path.join(package_dir, os.pardir, "models", "standin_hand")),
            os.path.normpath(os.path.join(prefix, "share", "hand_object_pose", "models", "standin_hand"))]


def standin_hand_path(side: str, directory: str | os.PathLike | None = None) -> str:
    """Path of a committed stand-in npz: in `directory` when given, else the first of
    `standin_hand_dirs()` that holds it (FileNotFoundError listing the places searched)."""
    if side not in SIDES:
        raise ValueError(f"side must be 'right' or 'left', got {side!r}")
    name = f"standin_hand_{side}.npz"
    if directory is not None:
        return os.path.normpath(os.path.join(directory, name))
    candidates = [os.path.join(d, name) for d in standin_hand_dirs()]
    for path in candidates:
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(f"stand-in hand file {name} not found; searched: {', '.join(candidates)}")


class HandModelFile(NamedTuple):
    """The npz a hand side is built from, and whether it is the user's MANO (False: the stand-in, NOT MANO)."""

    path: str
    is_mano: bool


def hand_model_file(side: str, mano_path: str | os.PathLike = "", required: bool = False) -> HandModelFile:
    """The hand model file of one side: the user's MANO when `mano_path` holds it, else the stand-in hand.

    `mano_path` is a directory holding ``MANO_RIGHT.npz`` / ``MANO_LEFT.npz`` (`MANO_FILES`), or one such
    npz itself (a right-hand-only model such as Dense Mutual Attention is given its file directly); "" means
    the stand-in. When `mano_path` is set but holds no file for `side`, the stand-in is returned
    (``is_mano=False``: callers warn that meshes are NOT MANO) unless `required`, which raises
    FileNotFoundError naming what was looked for (for tools and training, where the user asked for MANO).
    """
    if side not in SIDES:
        raise ValueError(f"side must be 'right' or 'left', got {side!r}")
    if mano_path:
        given = os.path.expanduser(os.fspath(mano_path))
        candidate = os.path.join(given, MANO_FILES[side]) if os.path.isdir(given) else given
        if os.path.isfile(candidate):
            return HandModelFile(candidate, True)
        if required:
            raise FileNotFoundError(f"no {side} hand model at {candidate} (mano_path {given!r}: a directory holding "
                                    f"{MANO_FILES[side]} or that npz itself; convert the official pkl with "
                                    f"`python -m hand_object_pose.tools.convert_mano`)")
    return HandModelFile(standin_hand_path(side), False)
