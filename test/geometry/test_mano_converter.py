"""The MANO pkl -> npz converter on pickles written here in the official legacy (Python 2) layout.

The writer below emits protocol-2 opcodes by hand, as Python 2 wrote MANO_*.pkl: Python-2 ``str``
values as BINSTRING, numpy arrays via ``numpy.core.multiarray._reconstruct`` + BUILD with raw bytes,
``shapedirs`` as a ``chumpy.ch.Ch`` (NEWOBJ + state dict with 'x'), ``J_regressor`` as a
``scipy.sparse.csc.csc_matrix`` (NEWOBJ + data/indices/indptr/_shape). Neither chumpy nor scipy is
needed (or imported) to write or read them.
"""
import pickle
import struct
import sys
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from hand_object_pose.geometry.hand_model_files import load_hand_model, standin_hand_path
from hand_object_pose.geometry.mano import ManoLayer
from hand_object_pose.geometry import mano_pickle
from hand_object_pose.tools import convert_mano


@dataclass
class Global:
    module: str
    name: str


@dataclass
class Reduce:
    func: object
    args: tuple


@dataclass
class NewObj:
    cls: Global
    args: tuple


@dataclass
class Build:
    obj: object
    state: object


def _emit(obj, out: bytearray) -> None:
    if isinstance(obj, Global):
        out += b"c" + f"{obj.module}\n{obj.name}\n".encode()
    elif isinstance(obj, Reduce):
        _emit(obj.func, out), _emit(obj.args, out)
        out += b"R"
    elif isinstance(obj, NewObj):
        _emit(obj.cls, out), _emit(obj.args, out)
        out += b"\x81"
    elif isinstance(obj, Build):
        _emit(obj.obj, out), _emit(obj.state, out)
        out += b"b"
    elif obj is None:
        out += b"N"
    elif obj is True or obj is False:
        out += b"\x88" if obj else b"\x89"
    elif isinstance(obj, int):
        out += b"J" + struct.pack("<i", obj)
    elif isinstance(obj, bytes):  # a Python 2 str
        out += b"T" + struct.pack("<i", len(obj)) + obj
    elif isinstance(obj, tuple):
        out += b"("
        for item in obj:
            _emit(item, out)
        out += b"t"
    elif isinstance(obj, list):
        out += b"]("
        for item in obj:
            _emit(item, out)
        out += b"e"
    elif isinstance(obj, dict):
        out += b"}("
        for key, value in obj.items():
            _emit(key, out), _emit(value, out)
        out += b"u"
    else:
        raise TypeError(type(obj))


def legacy_pickle(obj) -> bytes:
    out = bytearray(b"\x80\x02")
    _emit(obj, out)
    return bytes(out + b".")


def legacy_array(a: np.ndarray):
    dtype = Build(Reduce(Global("numpy", "dtype"), (a.dtype.str[1:].encode(), 0, 1)),
                  (3, b"<", None, None, None, -1, -1, 0))
    empty = Reduce(Global("numpy.core.multiarray", "_reconstruct"), (Global("numpy", "ndarray"), (0,), b"b"))
    return Build(empty, (1, tuple(a.shape), dtype, False, np.ascontiguousarray(a).tobytes()))


def legacy_chumpy(a: np.ndarray):
    state = {b"x": legacy_array(a), b"_dirty_vars": Reduce(Global("__builtin__", "set"), ([],)),
             b"_itr": None, b"_make_dense": False, b"_make_sparse": False, b"_depends_on_deps": {}}
    return Build(NewObj(Global("chumpy.ch", "Ch"), ()), state)


def legacy_csc(dense: np.ndarray):
    rows, cols = np.nonzero(dense.T)  # column-major walk: (column, row) pairs
    indptr = np.searchsorted(rows, np.arange(dense.shape[1] + 1)).astype(np.int32)
    state = {b"_shape": dense.shape, b"maxprint": 50, b"format": b"csc",
             b"data": legacy_array(dense.T[rows, cols]), b"indices": legacy_array(cols.astype(np.int32)),
             b"indptr": legacy_array(indptr)}
    return Build(NewObj(Global("scipy.sparse.csc", "csc_matrix"), ()), state)


def official_layout(arrays) -> bytes:
    """A MANO_*.pkl-like pickle of the given model arrays (official dtypes and extra keys included)."""
    return legacy_pickle(_official_content(arrays))


def _official_content(arrays) -> dict:
    kintree = arrays["kintree_table"].astype(np.int64)
    kintree[0, 0] = 4294967295  # the official root parent (uint32 max)
    return {
        b"hands_components": legacy_array(arrays["hands_components"]),
        b"f": legacy_array(arrays["f"].astype(np.uint32)),
        b"J_regressor": legacy_csc(arrays["J_regressor"]),
        b"kintree_table": legacy_array(kintree.astype(np.uint32)),
        b"J": legacy_array(arrays["J_regressor"] @ arrays["v_template"]),
        b"bs_style": b"lbs",
        b"hands_coeffs": legacy_array(np.zeros((4, 45))),
        b"weights": legacy_array(arrays["weights"]),
        b"posedirs": legacy_array(arrays["posedirs"]),
        b"hands_mean": legacy_array(arrays["hands_mean"]),
        b"v_template": legacy_array(arrays["v_template"]),
        b"shapedirs": legacy_chumpy(arrays["shapedirs"]),
        b"bs_type": b"lrotmin",
    }


@pytest.fixture(scope="module")
def standin():
    return {side: load_hand_model(standin_hand_path(side)) for side in ("right", "left")}


def _official_left(standin):
    """The official LEFT file's quirk: shapedirs not mirrored (equal to the right hand's)."""
    left = dict(standin["left"])
    left["shapedirs"] = standin["right"]["shapedirs"].copy()
    return left


def test_fixture_uses_the_legacy_class_paths_without_chumpy_or_scipy(standin):
    data = official_layout(standin["right"])
    assert b"cchumpy.ch\nCh\n" in data and b"cscipy.sparse.csc\ncsc_matrix\n" in data
    assert b"cnumpy.core.multiarray\n_reconstruct\n" in data
    assert "chumpy" not in sys.modules


def test_converts_right_file_to_plain_arrays(standin, tmp_path):
    pkl = tmp_path / "MANO_RIGHT.pkl"
    pkl.write_bytes(official_layout(standin["right"]))
    assert convert_mano.main([str(pkl), str(tmp_path / "MANO_RIGHT.npz")]) == 0
    with np.load(tmp_path / "MANO_RIGHT.npz", allow_pickle=False) as data:
        keys = set(data.files)
        assert str(data["side"]) == "right"
        assert data["kintree_table"][0, 0] == -1
    assert keys == {"v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f",
                    "hands_components", "hands_mean", "side"}
    converted = load_hand_model(tmp_path / "MANO_RIGHT.npz")
    for key, value in standin["right"].items():
        np.testing.assert_array_equal(converted[key], value, err_msg=key)


def test_directory_mode_mirrors_the_left_shapedirs_once(standin, tmp_path):
    source = tmp_path / "mano"
    source.mkdir()
    (source / "MANO_RIGHT.pkl").write_bytes(official_layout(standin["right"]))
    (source / "MANO_LEFT.pkl").write_bytes(official_layout(_official_left(standin)))
    assert convert_mano.main([str(source), str(tmp_path / "out")]) == 0
    left = load_hand_model(tmp_path / "out" / "MANO_LEFT.npz")
    assert str(left["side"]) == "left" and bool(left["left_shapedirs_fixed"])
    np.testing.assert_array_equal(left["shapedirs"], standin["left"]["shapedirs"])

    # A left file that is already mirrored stays as it is.
    (source / "MANO_LEFT.pkl").write_bytes(official_layout(standin["left"]))
    mano_pickle.convert_directory(source, tmp_path / "out2")
    again = load_hand_model(tmp_path / "out2" / "MANO_LEFT.npz")
    np.testing.assert_array_equal(again["shapedirs"], standin["left"]["shapedirs"])


def test_converted_files_drive_the_mano_layer(standin, tmp_path):
    pkl = tmp_path / "MANO_LEFT.pkl"
    pkl.write_bytes(official_layout(_official_left(standin)))
    mano_pickle.convert(pkl, tmp_path / "left.npz")
    torch.manual_seed(0)
    pose, orient, betas = torch.randn(2, 45) * 0.3, torch.randn(2, 3), torch.randn(2, 10)
    converted = ManoLayer(tmp_path / "left.npz")(orient, pose, betas)
    reference = ManoLayer(standin_hand_path("left"))(orient, pose, betas)
    torch.testing.assert_close(converted.vertices, reference.vertices)


@pytest.mark.parametrize("module,name", [("os", "system"), ("builtins", "eval"), ("subprocess", "Popen")])
def test_refuses_other_globals(tmp_path, module, name, capsys):
    evil = legacy_pickle({b"v_template": Reduce(Global(module, name), (b"echo pwned",))})
    path = tmp_path / "MANO_RIGHT.pkl"
    path.write_bytes(evil)
    with pytest.raises(mano_pickle.UnsafePickleError, match=f"'{module}.{name}'"):
        mano_pickle.read_mano_pickle(path)
    assert convert_mano.main([str(path), str(tmp_path / "x.npz")]) == 2
    assert f"{module}.{name}" in capsys.readouterr().err
    assert not (tmp_path / "x.npz").exists()


def test_missing_key_and_unknown_side_are_named(standin, tmp_path):
    path = tmp_path / "MANO_RIGHT.pkl"
    path.write_bytes(legacy_pickle({b"v_template": legacy_array(standin["right"]["v_template"])}))
    with pytest.raises(ValueError, match="shapedirs"):
        mano_pickle.read_mano_pickle(path)
    anonymous = tmp_path / "hand.pkl"
    anonymous.write_bytes(official_layout(standin["right"]))
    with pytest.raises(ValueError, match="--side"):
        mano_pickle.convert(anonymous, tmp_path / "hand.npz")
    mano_pickle.convert(anonymous, tmp_path / "hand.npz", side="right")
    assert str(load_hand_model(tmp_path / "hand.npz")["side"]) == "right"


def test_other_chumpy_nodes_in_unused_keys_do_not_block_conversion(standin, tmp_path):
    path = tmp_path / "MANO_RIGHT.pkl"
    path.write_bytes(official_layout(standin["right"]))
    plain = mano_pickle.read_mano_pickle(path)
    # An extra key holding a derived chumpy node (an operation, no 'x') is kept inert and ignored.
    derived = Build(NewObj(Global("chumpy.ch_ops", "add"), ()), {b"a": legacy_chumpy(np.ones(3)), b"b": None})
    path.write_bytes(legacy_pickle({**_official_content(standin["right"]), b"J_derived": derived}))
    with_extra = mano_pickle.read_mano_pickle(path)
    for key, value in plain.items():
        np.testing.assert_array_equal(with_extra[key], value)


def test_chumpy_without_x_is_an_error(tmp_path):
    broken = Build(NewObj(Global("chumpy.ch", "Ch"), ()), {b"_itr": None})
    path = tmp_path / "MANO_RIGHT.pkl"
    path.write_bytes(legacy_pickle({b"shapedirs": broken}))
    with open(path, "rb") as handle:
        content = mano_pickle.RestrictedUnpickler(handle, encoding="latin1").load()
    with pytest.raises(ValueError, match="'x'"):
        content["shapedirs"].to_array()


def test_reads_numpy_pickles_written_by_python3_protocol_2(standin, tmp_path):
    """Protocol 2 stores Python-3 bytes via `_codecs.encode`, which the old private allow-list refused."""
    arrays = {key: np.asarray(value) for key, value in standin["right"].items()}
    data = pickle.dumps(arrays, protocol=2)
    assert b"_codecs\nencode" in data
    path = tmp_path / "MANO_RIGHT.pkl"
    path.write_bytes(data)
    read = mano_pickle.read_mano_pickle(path)
    for key in read:
        np.testing.assert_array_equal(read[key], arrays[key], err_msg=key)


def test_missing_file_is_named_before_the_side_check(tmp_path, capsys):
    missing = tmp_path / "hand.pkl"  # the name does not say the side either
    with pytest.raises(FileNotFoundError, match="hand.pkl does not exist"):
        mano_pickle.convert(missing, tmp_path / "hand.npz")
    assert convert_mano.main([str(missing), str(tmp_path / "hand.npz")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "side" not in err and err.count("\n") == 1


@pytest.mark.parametrize("content", [b"", b"not a pickle at all\n", b"\x80\x02}q\x00(", b"\x89PNG\r\n\x1a\n"],
                         ids=["empty", "text", "truncated", "png"])
def test_non_pickle_file_is_a_one_line_error(tmp_path, capsys, content):
    path = tmp_path / "MANO_RIGHT.pkl"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"MANO_RIGHT\.pkl: not a MANO pickle: "):
        mano_pickle.read_mano_pickle(path)
    assert convert_mano.main([str(path), str(tmp_path / "x.npz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not a MANO pickle" in err and err.count("\n") == 1
    assert not (tmp_path / "x.npz").exists()


def test_help_names_the_module_invocation(capsys):
    with pytest.raises(SystemExit) as exit_info:
        convert_mano.main(["--help"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("usage: python -m hand_object_pose.tools.convert_mano ")
