"""Which hand model file a side uses: the user's MANO when mano_path holds it, else the stand-in (one rule)."""
import os
import shutil

import pytest

from hand_object_pose.geometry.hand_model_files import MANO_FILES, hand_model_file, load_hand_model, standin_hand_path


def test_empty_mano_path_gives_the_standin_of_each_side():
    for side in ("right", "left"):
        path, is_mano = hand_model_file(side, "")
        assert (path, is_mano) == (standin_hand_path(side), False)
        assert str(load_hand_model(path)["side"]) == side


def test_a_directory_with_the_mano_files_gives_them(tmp_path):
    # The stand-in files stand for converted MANO files: only the names and places matter here.
    for side in ("right", "left"):
        shutil.copy(standin_hand_path(side), tmp_path / MANO_FILES[side])
    for side in ("right", "left"):
        resolved = hand_model_file(side, str(tmp_path))
        assert resolved.is_mano and resolved.path == os.path.join(str(tmp_path), MANO_FILES[side])


def test_a_file_is_taken_as_it_is(tmp_path):
    right = tmp_path / "my_right_hand.npz"
    shutil.copy(standin_hand_path("right"), right)
    assert hand_model_file("right", right) == (str(right), True)


def test_missing_files_fall_back_to_the_standin_unless_required(tmp_path):
    shutil.copy(standin_hand_path("right"), tmp_path / MANO_FILES["right"])  # the left file is absent
    assert hand_model_file("left", str(tmp_path)) == (standin_hand_path("left"), False)
    with pytest.raises(FileNotFoundError, match="MANO_LEFT.npz"):
        hand_model_file("left", str(tmp_path), required=True)
    with pytest.raises(FileNotFoundError, match="no right hand model at /nonexistent/MANO_RIGHT.npz"):
        hand_model_file("right", "/nonexistent/MANO_RIGHT.npz", required=True)
    with pytest.raises(ValueError, match="side must be"):
        hand_model_file("both", "")
