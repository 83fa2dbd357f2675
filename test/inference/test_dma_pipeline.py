"""Dense Mutual Attention through the Estimator: the hand graph comes from the stand-in hand (or MANO),
the object templates from the catalogue's `template` files, and `object_id` picks the template the
network is told to track; start-up refuses what cannot work."""
import json

import numpy as np
import pytest
import torch

from hand_object_pose.export.preset_export import store_metadata, write_graph
from hand_object_pose.models.dma.inference_graph import METADATA_OBJECT_IDS
from hand_object_pose.export.onnx import export_onnx
from hand_object_pose.export.parity_kit import SHARED_PARITY_DIR, load_kit
from hand_object_pose.geometry.hand_model_files import load_hand_model, save_hand_model, standin_hand_path
from hand_object_pose.inference.catalogue import CatalogueError, ObjectCatalogue
from hand_object_pose.inference.estimator import Estimator, EstimatorConfig
from hand_object_pose.models.dma.assets import ObjectTemplate, joint_regressor_21
from hand_object_pose.synthetic.objects import default_objects
from hand_object_pose.geometry.object_template import resample_mesh, save_template

CAMERA = np.array([[600.0, 0.0, 320.0], [0.0, 600.0, 240.0], [0.0, 0.0, 1.0]])
OBJECTS = ("synthetic_box", "synthetic_sphere")  # meshes pyacvd resamples in ~2 s each


@pytest.fixture(scope="module")
def templates(tmp_path_factory):
    """{id: path} of two 1000-vertex templates made with tools.object_template's API."""
    directory = tmp_path_factory.mktemp("templates")
    meshes = {o.object_id: o for o in default_objects()}
    paths = {}
    for object_id in OBJECTS:
        vertices, faces = resample_mesh(meshes[object_id].vertices, meshes[object_id].faces, 1000)
        paths[object_id] = save_template(directory / f"{object_id}.npz",
                                         ObjectTemplate(object_id, vertices, faces, meshes[object_id].symmetry))
    return paths


def write_catalogue(directory, entries) -> str:
    path = directory / "objects.yaml"
    path.write_text(json.dumps({"objects": entries}))  # JSON is YAML
    return str(path)


def dma_config(catalogue: str, object_id: str, **overrides) -> EstimatorConfig:
    settings = dict(model="dma_ho3d", backend="torch", allow_random_weights=True, threads=1, warmup_runs=0,
                    object_catalogue=catalogue, object_id=object_id, crop_source="fixed",
                    fixed_roi=(200, 100, 240, 240), depth_sources=("default",), default_depth_m=0.6,
                    presence_threshold=0.0)
    return EstimatorConfig(**{**settings, **overrides})


def test_estimator_builds_dma_from_the_standin_hand_and_the_catalogue_templates(tmp_path, templates):
    torch.manual_seed(0)
    catalogue = write_catalogue(tmp_path, [{"id": "no_template_object"},
                                           *({"id": i, "template": str(templates[i])} for i in OBJECTS)])
    estimator = Estimator(dma_config(catalogue, "synthetic_sphere", mano_path=str(tmp_path / "no_mano_here"),
                                     smoothing=True))
    model = estimator._backend.module.model
    standin = load_hand_model(standin_hand_path("right"))
    np.testing.assert_array_equal(model.hand_faces.numpy(), standin["f"])
    np.testing.assert_allclose(model.joint_regressor.numpy(), joint_regressor_21(standin["J_regressor"]))
    assert model.object_names == list(OBJECTS)  # templated entries only, in file order
    stored = ObjectCatalogue.load(catalogue).load_templates()
    for k, object_id in enumerate(OBJECTS):
        np.testing.assert_array_equal(model.object_templates[k].numpy(), stored[object_id].vertices)

    # The network is told to track the sphere: its posed object is the sphere template, not the box.
    crop = np.random.default_rng(1).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    raw = estimator.run_network(crop)
    rotation, translation = raw["object_rotation"][0], raw["object_translation"][0]
    sphere, box = stored["synthetic_sphere"].vertices, stored["synthetic_box"].vertices
    np.testing.assert_allclose(raw["object_vertices"][0], sphere @ rotation.T + translation, atol=1e-5)
    assert np.abs(raw["object_vertices"][0] - (box @ rotation.T + translation)).max() > 1e-2

    image = np.random.default_rng(2).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    estimator.estimate(image, CAMERA, stamp_s=0.0)
    result = estimator.estimate(image[:, ::-1].copy(), CAMERA, stamp_s=0.033)  # smoothed: the mesh must follow
    (obj,) = result.objects
    assert obj.object_id == "synthetic_sphere"
    np.testing.assert_allclose(obj.vertices, sphere @ obj.rotation.T + obj.translation, atol=1e-9)
    np.testing.assert_array_equal(obj.faces, stored["synthetic_sphere"].faces)
    assert result.hands[0].joints_xyz[0, 2] == pytest.approx(0.6)


def test_dma_refuses_to_start_without_templates(tmp_path, templates):
    with pytest.raises(ValueError, match=r"needs an object catalogue.*tools\.object_template"):
        Estimator(dma_config("", ""))
    no_templates = write_catalogue(tmp_path, [{"id": "a"}, {"id": "b"}])
    with pytest.raises(ValueError, match=r"no entry of the object catalogue .* has a `template:`.*object_template"):
        Estimator(dma_config(no_templates, "a"))
    partial = write_catalogue(tmp_path, [{"id": "a"}, {"id": "synthetic_box", "template": str(templates["synthetic_box"])}])
    with pytest.raises(ValueError, match=r"object 'a' .* has no `template:`.*can only track \['synthetic_box'\]"):
        Estimator(dma_config(partial, "a"))


def test_catalogue_template_field_is_resolved_and_checked(tmp_path, templates):
    (tmp_path / "t").mkdir()
    local = tmp_path / "t" / "box.npz"
    local.write_bytes(templates["synthetic_box"].read_bytes())
    catalogue = ObjectCatalogue.load(write_catalogue(tmp_path, [{"id": "synthetic_box", "template": "t/box.npz"},
                                                                {"id": "other"}]))
    assert catalogue["synthetic_box"].template_path == str(local.resolve())
    assert catalogue["other"].template_path == "" and catalogue.template_ids == ("synthetic_box",)
    assert catalogue.load_templates()["synthetic_box"].vertices.shape == (1000, 3)

    with pytest.raises(CatalogueError, match=r"object 'x': template file not found: .*missing\.npz.*--id x"):
        ObjectCatalogue.from_dict({"objects": [{"id": "x", "template": "missing.npz"}]}, base_dir=tmp_path)
    renamed = ObjectCatalogue.from_dict({"objects": [{"id": "mug", "template": str(local)}]})
    with pytest.raises(CatalogueError, match=r"was made for object 'synthetic_box'.*--id mug"):
        renamed.load_templates()


def test_onnx_file_must_bake_the_catalogue_templates_in_order(tmp_path, templates):
    """The exporter's metadata round trip on a real (tiny) ONNX file, and the start-up check on it."""
    import onnxruntime as ort

    from hand_object_pose.inference.adapters.dma import DMAAdapter
    from hand_object_pose.models.registry import get_preset

    path = export_onnx(torch.nn.Linear(2, 2), (torch.zeros(1, 2),), tmp_path / "tiny.onnx", ["x"], ["y"])
    store_metadata(path, {METADATA_OBJECT_IDS: json.dumps(list(OBJECTS))})
    store_metadata(path, {METADATA_OBJECT_IDS: json.dumps(list(OBJECTS))})  # a re-export replaces, never duplicates
    metadata = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_modelmeta() \
        .custom_metadata_map
    assert metadata == {METADATA_OBJECT_IDS: json.dumps(list(OBJECTS))}

    family, config = get_preset("dma_ho3d")
    adapter = DMAAdapter(family, config)
    same = ObjectCatalogue.load(write_catalogue(tmp_path, [{"id": i, "template": str(templates[i])} for i in OBJECTS]))
    adapter.use_catalogue(same, "synthetic_sphere")
    assert adapter.object_index == 1 and adapter.preprocess(np.zeros((256, 256, 3), np.uint8))["object_index"] == [1]
    adapter.check_onnx_metadata(metadata, str(path))  # accepted

    swapped = ObjectCatalogue.load(write_catalogue(
        tmp_path, [{"id": i, "template": str(templates[i])} for i in reversed(OBJECTS)]))
    adapter.use_catalogue(swapped, "synthetic_sphere")
    with pytest.raises(ValueError, match=r"exported with object templates \['synthetic_box', 'synthetic_sphere'\]"):
        adapter.check_onnx_metadata(metadata, str(path))
    # tools.export_onnx's sidecar record stands in for files without the metadata.
    sidecar = {"object_templates": [{"index": 1, "id": "synthetic_box"}, {"index": 0, "id": "synthetic_sphere"}]}
    adapter.check_onnx_metadata({}, str(path), sidecar)
    with pytest.raises(ValueError, match=r"does not record which object templates"):
        adapter.check_onnx_metadata({}, str(path), None)


@pytest.mark.skipif(not (SHARED_PARITY_DIR / "dma_ho3d.npz").is_file(), reason="DMA parity kit not available")
def test_estimator_on_the_kit_weights_reproduces_the_kit_hand_joints(tmp_path, templates):
    """The Estimator's own model (official .pth.tar through the adapter, hand graph from a MANO-layout file in
    mano_path holding the kit's MANO faces and regressor, the kit's object as the catalogue's SECOND template)
    fed the kit's crop, root and intrinsics gives the official code's hand joints and object."""
    torch.set_num_threads(2)
    kit = load_kit("dma_ho3d", SHARED_PARITY_DIR)
    arrays = kit.arrays
    mano = tmp_path / "mano"
    mano.mkdir()
    hand = dict(load_hand_model(standin_hand_path("right")))  # only faces and J_regressor matter to DMA
    hand["f"] = arrays["kept/human_model_layer.th_faces"]
    hand["J_regressor"] = arrays["kept/human_model_layer.th_J_regressor"].astype(np.float64)
    save_hand_model(mano / "MANO_RIGHT.npz", hand)
    kit_object = save_template(tmp_path / "kit_object.npz", ObjectTemplate(
        "kit_object", arrays["out/obj_verts_template"][0], arrays["out/obj_faces"]))
    catalogue = write_catalogue(tmp_path, [{"id": "synthetic_box", "template": str(templates["synthetic_box"])},
                                           {"id": "kit_object", "template": str(kit_object)}])
    weights = tmp_path / "snapshot_dma.pth.tar"
    torch.save({"network": {f"module.{k}": torch.as_tensor(np.asarray(v))
                            for k, v in kit.official_state_dict().items()}}, weights)
    estimator = Estimator(dma_config(catalogue, "kit_object", mano_path=str(mano), model_path=str(weights),
                                     allow_random_weights=False, threads=2))
    weights.unlink()
    assert estimator._adapter.object_index == 1

    # preprocess: an RGB crop becomes the kit's BGR input exactly.
    inputs = estimator._adapter.preprocess(np.ascontiguousarray(arrays["input/img_uint8"].transpose(1, 2, 0)[..., ::-1]))
    np.testing.assert_allclose(inputs["image"], arrays["input/img"], atol=1e-7)
    inputs.update(root_joint=arrays["input/root_joint"], root_depth=arrays["input/root_joint_depth"],
                  focal=arrays["input/focal"], principal_point=arrays["input/principal_point"])
    raw = estimator._backend.run(inputs)
    for ours, reference in (("hand_joints", "out/hand_joints_out"), ("hand_vertices", "out/hand_verts_out"),
                            ("object_vertices", "out/obj_verts_refine")):
        error = np.abs(raw[ours] - arrays[reference]).max() / np.abs(arrays[reference]).max()
        assert error <= 1e-4, f"{ours}: {error:.1e} x max|kit| from the kit's {reference}"  # kit README 7


@pytest.mark.slow
def test_onnx_estimator_checks_the_baked_templates_and_feeds_the_object_index(tmp_path, templates):
    """A real DMA export (random weights, stand-in hand, box then sphere) through the ONNX Runtime Estimator."""
    from hand_object_pose.models.dma import FAMILY, PRESETS, build
    from hand_object_pose.models.dma.assets import hand_topology_from_model

    torch.manual_seed(0)
    stored = {i: ObjectCatalogue.from_dict({"objects": [{"id": i, "template": str(templates[i])}]}).load_templates()[i]
              for i in OBJECTS}
    model = build(PRESETS["dma_ho3d"], hand=hand_topology_from_model(load_hand_model(standin_hand_path("right"))),
                  objects=[stored[i] for i in OBJECTS])
    path = write_graph(FAMILY, model, tmp_path / "dma.onnx")
    del model
    entries = [{"id": i, "template": str(templates[i])} for i in OBJECTS]
    config = dict(backend="onnxruntime", model_path=str(path), allow_random_weights=False, threads=2)
    estimator = Estimator(dma_config(write_catalogue(tmp_path, entries), "synthetic_sphere", **config))
    raw = estimator.run_network(np.random.default_rng(1).integers(0, 256, (256, 256, 3), dtype=np.uint8))
    posed = stored["synthetic_sphere"].vertices @ raw["object_rotation"][0].T + raw["object_translation"][0]
    np.testing.assert_allclose(raw["object_vertices"][0], posed, atol=1e-5)
    result = estimator.estimate(np.random.default_rng(2).integers(0, 256, (480, 640, 3), dtype=np.uint8), CAMERA)
    assert [o.object_id for o in result.objects] == ["synthetic_sphere"]
    del estimator

    with pytest.raises(ValueError, match=r"exported with object templates \['synthetic_box', 'synthetic_sphere'\]"):
        Estimator(dma_config(write_catalogue(tmp_path, entries[::-1]), "synthetic_sphere", **config))
