"""Synthetic hand poses (joint limits, curl direction, mirroring) and procedural objects."""
import numpy as np
import pytest
import torch

from hand_object_pose.geometry.mano import ManoLayer
from hand_object_pose.inference.catalogue import ObjectCatalogue
from hand_object_pose.synthetic import poses
from hand_object_pose.synthetic.objects import Primitive, default_objects, read_ply, write_catalogue
from hand_object_pose.geometry.hand_model_files import standin_hand_path


def test_sampled_poses_respect_joint_limits():
    rng = np.random.default_rng(0)
    for style in poses.STYLES:
        for _ in range(40):
            pose, betas = poses.sample_hand_pose(rng, style=style)
            flexion, abduction = poses.decompose_pose(pose)
            for name in poses.DIGITS:
                for k, angle in enumerate(flexion[name]):
                    lo, hi = poses.LIMITS[name][k].flexion
                    assert lo - 1e-9 <= angle <= hi + 1e-9, (style, name, k, angle)
                lo, hi = poses.LIMITS[name][0].abduction
                assert lo - 1e-9 <= abduction[name] <= hi + 1e-9
            assert pose.shape == (45,) and betas.shape == (10,) and np.abs(betas).max() <= 2.5


def test_compose_decompose_round_trip_and_clipping():
    flexion = {n: [0.3, 0.5, 0.2] for n in poses.DIGITS}
    abduction = {n: 0.1 for n in poses.DIGITS}
    got_flex, got_abd = poses.decompose_pose(poses.compose_pose(flexion, abduction))
    for n in poses.DIGITS:
        np.testing.assert_allclose(got_flex[n], flexion[n], atol=1e-12)
        assert got_abd[n] == pytest.approx(0.1)
    too_much = poses.decompose_pose(poses.compose_pose({n: [5.0, 5.0, 5.0] for n in poses.DIGITS}, {}))[0]
    assert too_much["index"] == pytest.approx([1.6, 1.9, 1.4])


def test_fist_curls_fingertips_towards_the_palm_and_left_mirrors_right():
    right = ManoLayer(standin_hand_path("right"))
    left = ManoLayer(standin_hand_path("left"))
    rng = np.random.default_rng(1)
    pose, betas = poses.sample_hand_pose(rng, style="fist")
    zero = torch.zeros(1, 3)
    flat = right(zero, torch.zeros(1, 45)).joints[0]
    fist = right(zero, torch.tensor(pose[None], dtype=torch.float32)).joints[0]
    tips = [8, 12, 16, 20]
    # In the stand-in frame the palm faces +z and fingers point +y: curled tips come down and forward.
    assert (fist[tips, 1] < flat[tips, 1] - 0.04).all()
    assert (fist[tips, 2] > flat[tips, 2] + 0.02).all()
    mirrored = left(zero, torch.tensor(poses.mirror_pose(pose)[None], dtype=torch.float32)).joints[0]
    torch.testing.assert_close(mirrored, fist * torch.tensor([-1.0, 1.0, 1.0]), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="style"):
        poses.sample_hand_pose(rng, style="wave")


def test_objects_are_closed_outward_meshes_of_plausible_size():
    objects = default_objects()
    assert [o.object_id for o in objects] == ["synthetic_box", "synthetic_cylinder", "synthetic_sphere",
                                              "synthetic_mug", "synthetic_bottle"]
    for obj in objects:
        v, f = obj.vertices, obj.faces
        volume = np.einsum("ij,ij->i", v[f[:, 0]], np.cross(v[f[:, 1]], v[f[:, 2]])).sum() / 6.0
        extent = v.max(axis=0) - v.min(axis=0)
        assert 1e-4 < volume < 1e-3, obj.object_id  # 0.1 - 1 litre, outward normals
        assert 0.04 < extent.max() < 0.25 and np.allclose(v.max(axis=0) + v.min(axis=0), 0.0, atol=1e-9)
        corners = obj.corners()
        assert corners.shape == (8, 3) and np.allclose(corners.max(axis=0), v.max(axis=0))
    cylinder = objects[1]
    assert cylinder.symmetry == {"kind": "continuous", "axis": [0.0, 0.0, 1.0], "flip_axis": [1.0, 0.0, 0.0]}
    np.testing.assert_allclose(np.einsum("ij,ij->i", cylinder.vertices[cylinder.faces[:, 0]],
                                         np.cross(cylinder.vertices[cylinder.faces[:, 1]],
                                                  cylinder.vertices[cylinder.faces[:, 2]])).sum() / 6.0,
                               np.pi * 0.035 ** 2 * 0.12, rtol=0.02)


def test_each_symmetry_maps_the_mesh_onto_itself():
    """The records the pose labels are made unique with are true symmetries of the shapes: the box's and the
    cylinder's upside-down turn and the box's half turn take every vertex onto a vertex; the ball's vertices
    all lie on one sphere about its origin; the mug and the bottle have no flip."""
    def onto_itself(vertices, rotation):
        moved = vertices @ rotation.T
        nearest = np.sqrt(((moved[:, None] - vertices[None]) ** 2).sum(-1)).min(axis=1)
        return nearest.max() < 1e-6

    by_id = {o.object_id: o for o in default_objects()}
    for object_id in ("synthetic_box", "synthetic_cylinder"):
        obj = by_id[object_id]
        assert obj.symmetry["flip_axis"] == [1.0, 0.0, 0.0]
        assert onto_itself(obj.vertices, np.diag([1.0, -1.0, -1.0])), object_id
    assert onto_itself(by_id["synthetic_box"].vertices, np.diag([-1.0, -1.0, 1.0]))
    assert not onto_itself(by_id["synthetic_bottle"].vertices, np.diag([1.0, -1.0, -1.0]))
    assert not onto_itself(by_id["synthetic_mug"].vertices, np.diag([-1.0, -1.0, 1.0]))
    # The mug is open: upside down about its handle's axis, its inner floor lands where the opening was, 3.7 cm
    # from any of its own vertices (the closed mug: 6 mm, its taper, so its "no symmetry" labels were unseeable).
    mug = by_id["synthetic_mug"].vertices
    flipped = mug @ np.diag([1.0, -1.0, -1.0])
    assert np.sqrt(((flipped[:, None] - mug[None]) ** 2).sum(-1)).min(axis=1).max() > 0.03
    ball = by_id["synthetic_sphere"]
    assert ball.symmetry == {"kind": "spherical"}
    radii = np.linalg.norm(ball.vertices, axis=1)
    assert radii.max() - radii.min() < 1e-6


def test_catalogue_is_readable_by_the_inference_catalogue(tmp_path):
    path = write_catalogue(tmp_path)
    catalogue = ObjectCatalogue.load(path)
    assert catalogue.ids == tuple(o.object_id for o in default_objects())
    mug, box = catalogue["synthetic_mug"], catalogue["synthetic_box"]
    assert mug.symmetry_kind == "none" and box.symmetry_kind == "discrete" and box.symmetry_order == 2
    for obj in default_objects():
        v, f = read_ply(tmp_path / "meshes" / f"{obj.object_id}.ply")
        np.testing.assert_allclose(v, obj.vertices, atol=1e-6)
        np.testing.assert_array_equal(f, obj.faces)


def test_solids_measure_inside_depth():
    box = Primitive("box", (0.0, 0.0, 0.1), (0.01, 0.02, 0.03))
    np.testing.assert_allclose(box.depth(np.array([[0.0, 0.0, 0.1], [0.005, 0.0, 0.1], [0.02, 0.0, 0.1]])),
                               [0.01, 0.005, -0.01])
    cylinder = Primitive("cylinder", (0.0, 0.0, 0.0), (0.02, 0.05))
    np.testing.assert_allclose(cylinder.depth(np.array([[0.0, 0.0, 0.0], [0.0, 0.015, 0.0], [0.0, 0.0, 0.049]])),
                               [0.02, 0.005, 0.001])
    sphere = Primitive("sphere", (0.0, 0.0, 0.0), (0.04,))
    assert sphere.depth(np.array([[0.0, 0.03, 0.0]]))[0] == pytest.approx(0.01)
    # The objects' solids agree with their meshes: the centre is deep inside, the surface is (almost
    # everywhere) not inside. (Not for the mug: its handle's ends are sunk into the body by construction.)
    for obj in default_objects():
        assert obj.penetration(np.zeros((1, 3)))[0] > 0.01
        if obj.object_id != "synthetic_mug":
            assert (obj.penetration(obj.vertices) > 0.001).mean() < 0.05, obj.object_id
