"""Object catalogue: the example file loads; every schema violation is named."""
from pathlib import Path

import numpy as np
import pytest

from hand_object_pose.evaluation.objects import symmetry_rotations
from hand_object_pose.inference.catalogue import CatalogueError, ObjectCatalogue

REPO = Path(__file__).resolve().parents[2]


def test_example_catalogue_loads():
    catalogue = ObjectCatalogue.load(REPO / "config" / "objects.yaml")
    assert catalogue.ids == ("006_mustard_bottle", "025_mug", "061_foam_brick")
    mug = catalogue["025_mug"]
    assert mug.tf_child_frame == "mug" and mug.symmetry_kind == "continuous"
    brick = catalogue["061_foam_brick"]
    # The symmetry spelling is the one the evaluation code understands.
    assert len(symmetry_rotations(brick.symmetry_kind, brick.symmetry_axis, brick.symmetry_order)) == 2
    assert catalogue["006_mustard_bottle"].mesh_uri.startswith("package://")


def test_local_mesh_is_resolved_relative_to_the_file(tmp_path):
    (tmp_path / "meshes").mkdir()
    (tmp_path / "meshes" / "box.ply").write_text("ply\n")
    path = tmp_path / "cat.yaml"
    path.write_text("objects:\n  - {id: box, mesh: meshes/box.ply, mesh_scale: 0.001, "
                    "symmetry: {kind: discrete, axis: [0, 0, 2], order: 4}}\n")
    box = ObjectCatalogue.load(path)["box"]
    assert box.mesh_uri == (tmp_path / "meshes" / "box.ply").resolve().as_uri()
    assert box.tf_child_frame == "box" and box.mesh_scale == 0.001
    assert box.symmetry_axis == (0.0, 0.0, 1.0) and box.symmetry_order == 4


def test_flip_axis_and_spherical_symmetries_load_and_expand(tmp_path):
    """A box (180 deg about z, and upside down) has 4 rotations; a ball every rotation (the empty set)."""
    path = tmp_path / "cat.yaml"
    path.write_text("objects:\n"
                    "  - {id: box, symmetry: {kind: discrete, axis: [0, 0, 1], order: 2, flip_axis: [2, 0, 0]}}\n"
                    "  - {id: ball, symmetry: {kind: spherical}}\n")
    catalogue = ObjectCatalogue.load(path)
    box, ball = catalogue["box"], catalogue["ball"]
    assert box.symmetry_flip_axis == (1.0, 0.0, 0.0) and ball.symmetry_flip_axis is None
    rotations = symmetry_rotations(box.symmetry_kind, box.symmetry_axis, box.symmetry_order,
                                   flip_axis=box.symmetry_flip_axis)
    assert len(rotations) == 4
    assert any(np.allclose(r, np.diag([1.0, -1.0, -1.0])) for r in rotations)   # upside down
    assert len(symmetry_rotations(ball.symmetry_kind)) == 0


def test_unknown_id_names_the_known_ones():
    catalogue = ObjectCatalogue.from_dict({"objects": [{"id": "a"}, {"id": "b"}]})
    assert "b" in catalogue and "c" not in catalogue and catalogue.get("c") is None
    with pytest.raises(KeyError, match=r"'c' is not in the object catalogue.*\['a', 'b'\]"):
        catalogue["c"]


@pytest.mark.parametrize("objects, message", [
    ([{"mesh": "x.ply"}], r"objects\[0\]: 'id' must be a non-empty string"),
    ([{"id": "a"}, {"id": "a"}], "duplicate id 'a'"),
    ([{"id": "a", "tf_child_frame": "/a"}], "without a leading '/', got '/a'"),
    ([{"id": "a", "tf_child_frame": "x"}, {"id": "b", "tf_child_frame": "x"}], "reuses tf_child_frame 'x'"),
    ([{"id": "a", "mesh": "missing.ply"}], "object 'a': mesh file not found: .*missing.ply"),
    ([{"id": "a", "mesh_scale": 0}], "'mesh_scale' must be a positive number"),
    ([{"id": "a", "symmetry": {"kind": "helical"}}], "symmetry kind must be one of"),
    ([{"id": "a", "symmetry": {"kind": "continuous", "flip_axis": [0, 0.5, 1]}}],
     r"flip_axis \[0\.0, 0\.44.*must be perpendicular to the axis \[0\.0, 0\.0, 1\.0\]"),
    ([{"id": "a", "symmetry": {"kind": "spherical", "flip_axis": [1, 0, 0]}}],
     "flip_axis needs a discrete or continuous symmetry, not 'spherical'"),
    ([{"id": "a", "symmetry": {"kind": "discrete", "order": 2, "flip_axis": [0, 0, 0]}}],
     "symmetry flip_axis must not be zero"),
    ([{"id": "a", "symmetry": {"kind": "discrete", "order": 1}}], "discrete symmetry needs order >= 2"),
    ([{"id": "a", "symmetry": {"kind": "continuous", "axis": [0, 0, 0]}}], "axis must not be zero"),
    ([{"id": "a", "symmetry": {"kind": "continuous", "axis": [0, 1]}}], "axis must be 3 numbers"),
    ([{"id": "a", "colour": "red"}], r"unknown field\(s\) \['colour'\]"),
])
def test_invalid_entries_are_named(tmp_path, objects, message):
    with pytest.raises(CatalogueError, match=message):
        ObjectCatalogue.from_dict({"objects": objects}, base_dir=tmp_path)


def test_bad_files(tmp_path):
    with pytest.raises(CatalogueError, match="not found"):
        ObjectCatalogue.load(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("objects: [unclosed\n")
    with pytest.raises(CatalogueError, match="not valid YAML"):
        ObjectCatalogue.load(bad)
    bad.write_text("- id: a\n")
    with pytest.raises(CatalogueError, match="'objects' list"):
        ObjectCatalogue.load(bad)


def test_home_relative_path(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "objects.yaml").write_text("objects:\n  - {id: cup}\n")
    assert ObjectCatalogue.load("~/objects.yaml").ids == ("cup",)
