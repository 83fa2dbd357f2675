"""The licence-free stand-in hand: MANO's array layout, a sound mesh, hand proportions, reproducibility."""
from collections import Counter

import os

import numpy as np
import pytest

from hand_object_pose.geometry.hand_model_files import load_hand_model, standin_hand_dirs, standin_hand_path
from hand_object_pose.synthetic import standin_hand

TIPS = {"thumb": 744, "index": 320, "middle": 443, "ring": 554, "pinky": 671}


@pytest.fixture(scope="module")
def fresh():
    return standin_hand.build_standin_hands()


@pytest.fixture(scope="module")
def right():
    return load_hand_model(standin_hand_path("right"))


def test_committed_files_equal_a_fresh_generation(fresh):
    for side in ("right", "left"):
        committed = load_hand_model(standin_hand_path(side))
        assert set(committed) == set(fresh[side])
        for key, value in fresh[side].items():
            if value.dtype.kind in "iUb":
                np.testing.assert_array_equal(committed[key], value, err_msg=f"{side} {key}")
            else:  # the PCA comes from an eigendecomposition: allow last-bit BLAS differences
                np.testing.assert_allclose(committed[key], value, rtol=0, atol=1e-9, err_msg=f"{side} {key}")


def test_regeneration_is_byte_identical(tmp_path):
    standin_hand.main([str(tmp_path)])
    first = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    standin_hand.main([str(tmp_path)])
    assert first == {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert sorted(first) == ["standin_hand_left.npz", "standin_hand_right.npz"]


def test_mano_array_shapes(right):
    expected = {"v_template": (778, 3), "shapedirs": (778, 3, 10), "posedirs": (778, 3, 135),
                "J_regressor": (16, 778), "weights": (778, 16), "kintree_table": (2, 16), "f": (1538, 3),
                "hands_components": (45, 45), "hands_mean": (45,)}
    for key, shape in expected.items():
        assert right[key].shape == shape, key
    assert right["kintree_table"].tolist() == [[-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14],
                                               list(range(16))]


def test_mesh_is_closed_except_a_16_edge_wrist_loop_and_consistently_oriented(right):
    faces = right["f"]
    directed = Counter((int(a), int(b)) for f in faces for a, b in ((f[0], f[1]), (f[1], f[2]), (f[2], f[0])))
    assert max(directed.values()) == 1  # consistent orientation: every directed edge used once
    undirected = Counter((min(e), max(e)) for e in directed)
    boundary = [e for e, n in undirected.items() if n == 1]
    assert max(undirected.values()) == 2 and len(boundary) == 16
    # The boundary edges form one loop, around the wrist (y ~ 0).
    loop_vertices = {v for e in boundary for v in e}
    assert len(loop_vertices) == 16
    assert np.abs(right["v_template"][list(loop_vertices), 1]).max() < 1e-9
    # Outward normals: volume (closing the wrist with a fan to its centre) is positive and plausible.
    v = right["v_template"]
    centre = v[list(loop_vertices)].mean(axis=0)
    volume = np.einsum("ij,ij->i", v[faces[:, 0]] - centre,
                       np.cross(v[faces[:, 1]] - centre, v[faces[:, 2]] - centre)).sum() / 6.0
    assert 1.5e-4 < volume < 5e-4  # m^3; a real adult hand is 0.3-0.5 litre, the stand-in a slim 0.2
    assert len(np.unique(faces)) == 778


def test_regressor_weights_and_pca_are_well_formed(right):
    np.testing.assert_allclose(right["J_regressor"].sum(axis=1), 1.0)
    assert right["J_regressor"].min() >= 0
    np.testing.assert_allclose(right["weights"].sum(axis=1), 1.0)
    assert right["weights"].min() >= 0
    components = right["hands_components"]
    np.testing.assert_allclose(components @ components.T, np.eye(45), atol=1e-10)
    # Tip vertices move only with their distal joint.
    distal = {"thumb": 15, "index": 3, "middle": 6, "ring": 12, "pinky": 9}
    for name, vertex in TIPS.items():
        assert right["weights"][vertex, distal[name]] == pytest.approx(1.0)


def test_tip_vertices_are_the_fingertips(right):
    v, weights = right["v_template"], right["weights"]
    distal = {"thumb": 15, "index": 3, "middle": 6, "ring": 12, "pinky": 9}
    parent = {"thumb": 14, "index": 2, "middle": 5, "ring": 11, "pinky": 8}
    joints = right["J_regressor"] @ v
    for name, vertex in TIPS.items():
        direction = joints[distal[name]] - joints[parent[name]]
        on_segment = np.flatnonzero(weights[:, distal[name]] > 0.5)
        reach = (v[on_segment] - joints[distal[name]]) @ direction
        assert on_segment[np.argmax(reach)] == vertex, name


def test_hand_proportions(right):
    joints = right["J_regressor"] @ right["v_template"]
    v = right["v_template"]
    wrist, middle_mcp, index_mcp, pinky_mcp = joints[0], joints[4], joints[1], joints[7]
    assert 0.08 <= np.linalg.norm(middle_mcp - wrist) <= 0.095          # palm length
    assert 0.075 <= np.linalg.norm(v[TIPS["middle"]] - middle_mcp) <= 0.09  # middle finger
    assert 0.055 <= np.linalg.norm(index_mcp - pinky_mcp) <= 0.07         # knuckle span
    hand_length = np.linalg.norm(v[TIPS["middle"]] - wrist)
    assert 0.16 <= hand_length <= 0.20
    # Finger lengths: middle longest, pinky shortest.
    length = {n: np.linalg.norm(v[TIPS[n]] - joints[j]) for n, j in
              (("index", 1), ("middle", 4), ("ring", 10), ("pinky", 7))}
    assert length["middle"] == max(length.values()) and length["pinky"] == min(length.values())
    # Opposed thumb: leaves the palm on the index side and stands out of the palm plane to the palm side.
    thumb_tip = v[TIPS["thumb"]]
    assert thumb_tip[0] > index_mcp[0] + 0.02
    assert thumb_tip[2] > 0.03


def test_left_is_the_mirror_of_right(fresh):
    r, l = fresh["right"], fresh["left"]
    np.testing.assert_array_equal(l["v_template"], r["v_template"] * [-1, 1, 1])
    np.testing.assert_array_equal(l["f"], r["f"][:, ::-1])
    np.testing.assert_array_equal(l["shapedirs"][:, 0], -r["shapedirs"][:, 0])
    assert str(l["side"]) == "left" and bool(l["left_shapedirs_fixed"])


def test_standin_files_are_found_in_a_checkout_and_in_an_install_prefix(tmp_path):
    """A colcon or pip install puts the files in <prefix>/share/hand_object_pose/models/standin_hand
    and the package in <prefix>/lib/pythonX.Y/site-packages: the lookup must find them there too."""
    import shutil

    checkout = standin_hand_path("right")
    assert os.path.isfile(checkout)
    package = tmp_path / "lib" / "python3.11" / "site-packages" / "hand_object_pose"
    share = tmp_path / "share" / "hand_object_pose" / "models" / "standin_hand"
    package.mkdir(parents=True)
    share.mkdir(parents=True)
    shutil.copy(checkout, share)
    found = [d for d in standin_hand_dirs(package) if os.path.isfile(os.path.join(d, "standin_hand_right.npz"))]
    assert found == [os.path.normpath(str(share))]
