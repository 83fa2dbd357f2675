"""Dense Mutual Attention training task on a tiny synthetic dataset written here: the targets agree with
the rendered images and the hand labels, crops without a right hand or object get weight 0, and a short
run of the full model lowers the loss and reports the evaluation metrics."""
import cv2
import numpy as np
import pytest
import torch

from dataset_fixtures import write_ho3d
from hand_object_pose.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle, quaternion_to_matrix
from hand_object_pose.synthetic.objects import default_objects
from hand_object_pose.synthetic.scene import LABEL_IDS, SceneConfig, SceneGenerator
from hand_object_pose.models.dma import ObjectTemplate
from hand_object_pose.geometry.object_template import save_template
from hand_object_pose.datasets import HO3DDataset, SyntheticDataset
from hand_object_pose.datasets.synthetic import write_meta, write_sample
from hand_object_pose.training.distributed import init_distributed
from hand_object_pose.training.engine import CropDataset, TrainConfig, Trainer
from hand_object_pose.training.tasks import build_task
from hand_object_pose.training.tasks.dma import DMATask, _project_template

OBJECTS = ["synthetic_box", "synthetic_cylinder"]


def _write(root, config: SceneConfig, seed: int, count: int):
    objects = [o for o in default_objects() if o.object_id in OBJECTS]
    generator = SceneGenerator(config, objects=objects)
    write_meta(root, seed, count, config.image_size, objects)
    for i in range(count):
        write_sample(root, i, generator.sample(seed, i))
    return SyntheticDataset(root)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Three crops with a right hand holding an object, one with a right hand and no object."""
    root = tmp_path_factory.mktemp("dma")
    grasps = _write(root / "grasp", SceneConfig(p_object=1.0, p_right=1.0, p_left=0.0), seed=0, count=3)
    alone = _write(root / "alone", SceneConfig(p_object=0.0, p_right=1.0, p_left=0.0), seed=1, count=1)
    task = build_task("dma_ho3d", augmentation=dict(enabled=False),
                      task_options=dict(synthetic_objects=OBJECTS, template_cache=str(root / "templates")))
    task._load_assets()
    return task, grasps, alone


def _crops(task, reader):
    dataset = CropDataset(reader, task.augmentation, 0, task.input_size)
    return [dataset[i] for i in range(len(reader))]


def test_targets_agree_with_images_and_labels(setup):
    task, grasps, alone = setup
    crops = _crops(task, grasps) + _crops(task, alone)
    batch = task.collate(crops)
    assert batch["image"].shape == (4, 3, 256, 256)
    np.testing.assert_array_equal(batch["sample_weight"].numpy(), [1, 1, 1, 0])
    # BGR input: channel 0 of the tensor is the crop's blue channel.
    np.testing.assert_allclose(batch["image"][0, 0].numpy(), crops[0].image[..., 2] / 255.0, atol=1e-6)
    for i in range(3):
        sample, crop = grasps[i], crops[i]
        hand = crop.hands["right"]
        # Root joint = labelled wrist; hand vertices through the regressor give back the labelled joints
        # (stand-in hand, its own tip vertices), the wrist exactly.
        np.testing.assert_allclose(batch["root_joint"][i].numpy(), hand.joints_cam[0], atol=1e-6)
        regressed = torch.from_numpy(task.hand.joint_regressor) @ batch["hand_vertices_cam"][i]
        errors = (regressed - torch.from_numpy(hand.joints_cam)).norm(dim=-1)
        assert float(errors.max()) < 0.002 and float(errors[0]) < 1e-4, errors
        assert float(batch["mano_error"][i]) < 0.002
        # The posed template projects onto the rendered object (or the hand occluding it).
        instance = cv2.imread(str(grasps.root / "instance" / f"{sample.frame_id}.png"), cv2.IMREAD_UNCHANGED)
        uv = batch["object_vertices_cam"][i].double().numpy() @ sample.intrinsics.T
        uv = np.round(uv[:, :2] / uv[:, 2:]).astype(int)
        inside = np.all((uv >= 0) & (uv < 256), axis=1)
        labels = instance[uv[inside, 1], uv[inside, 0]]
        assert inside.mean() > 0.9 and np.isin(labels, [LABEL_IDS["object"], LABEL_IDS["right"], LABEL_IDS["right_arm"]]).mean() > 0.95
        # Silhouette from the crop's (visible) object mask, inside the projected template's silhouette.
        silhouette = batch["object_silhouette"][i].numpy()
        k = int(batch["object_index"][i])
        assert task.templates[k].name == sample.objects[0].object_id
        projected = _project_template(batch["object_vertices_cam"][i].double().numpy(), task.templates[k].faces,
                                      crop.intrinsics, 128, 256)
        assert silhouette.sum() > 50 and projected[silhouette > 0].mean() > 0.95
        # Quaternion (w, x, y, z) of the object rotation.
        np.testing.assert_allclose(quaternion_to_matrix(batch["object_quaternion"][i].double().numpy()),
                                   crop.objects[0].rotation, atol=1e-5)
    # Grid targets: x, y are crop pixels / 4, the wrist sits at the grid's middle depth.
    targets = task.targets(batch)
    uv = batch["hand_vertices_cam"][0].double().numpy() @ crops[0].intrinsics.T
    np.testing.assert_allclose(targets.hand_vertices_grid[0, :, :2].numpy(), uv[:, :2] / uv[:, 2:] / 4, atol=2e-3)
    assert abs(float(targets.hand_joints_grid[0, 0, 2]) - 32.0) < 1e-3


def test_hand_orientation_is_aligned_to_the_labelled_joints(setup):
    """A MANO global orientation stored in another frame (HO-3D keeps it in OpenGL's) still gives the
    right hand mesh: the layer's hand is rotated about its wrist onto the labelled joints."""
    task, grasps, _ = setup
    crops = _crops(task, grasps)[:1]
    reference = task.collate(crops)["hand_vertices_cam"][0]
    hand = crops[0].hands["right"]
    opengl = np.diag([1.0, -1.0, -1.0]) @ axis_angle_to_matrix(hand.mano_pose[:3].astype(np.float64))
    hand.mano_pose = np.concatenate([matrix_to_axis_angle(opengl), hand.mano_pose[3:]]).astype(np.float32)
    aligned = task.collate(crops)
    assert float((aligned["hand_vertices_cam"][0] - reference).norm(dim=-1).max()) < 1e-4
    assert float(aligned["mano_error"][0]) < 1e-4
    task.align_orientation = False
    try:
        unaligned = task.collate(crops)
    finally:
        task.align_orientation = True
    assert float(unaligned["mano_error"][0]) > 0.02  # the diagnostic logged as target_mano_error_mm


def test_template_files_on_ho3d(setup, tmp_path):
    """`object_templates` as files, matched to HO-3D's object names; unknown objects name the known ones."""
    task, _, _ = setup
    write_ho3d(tmp_path / "ho3d")
    box = task.templates[0]
    path = save_template(tmp_path / "mustard.npz", ObjectTemplate("006_mustard_bottle", box.vertices, box.faces))
    ho3d = build_task("dma_ho3d", augmentation=dict(enabled=False), task_options=dict(object_templates=[str(path)]))
    crops = _crops(ho3d, HO3DDataset(tmp_path / "ho3d", "train"))
    batch = ho3d.collate(crops)
    obj = crops[0].objects[0]
    assert float(batch["sample_weight"][0]) == 1.0 and int(batch["object_index"][0]) == 0
    np.testing.assert_allclose(batch["object_vertices_cam"][0].numpy(), box.vertices @ obj.rotation.T + obj.translation,
                               atol=1e-6)
    np.testing.assert_allclose(batch["root_joint"][0].numpy(), crops[0].hands["right"].joints_cam[0], atol=1e-6)
    path = save_template(tmp_path / "other.npz", ObjectTemplate("025_mug", box.vertices, box.faces))
    other = build_task("dma_ho3d", augmentation=dict(enabled=False), task_options=dict(object_templates=[str(path)]))
    with pytest.raises(ValueError, match="'006_mustard_bottle' has no DMA template.*025_mug"):
        other.collate(crops)


def test_options_are_checked():
    with pytest.raises(ValueError, match="object_templates"):
        build_task("dma_ho3d", task_options=dict(object_templates="ycb"))
    with pytest.raises(ValueError, match="loss_weights"):
        build_task("dma_ho3d", task_options=dict(loss_weights=dict(silhuette=1.0)))
    task = build_task("dma_ho3d", task_options=dict(synthetic_objects=["no_such_object"]))
    with pytest.raises(ValueError, match="unknown synthetic object ids"):
        task._load_assets()
    missing = build_task("dma_ho3d", task_options=dict(object_templates=["/nonexistent/006_mustard_bottle.npz"]))
    assert isinstance(missing, DMATask) and missing.input_size == 256  # files are read only when training starts
    with pytest.raises(FileNotFoundError, match="006_mustard_bottle.npz"):
        missing._load_assets()


def test_crops_without_hand_or_object_get_weight_zero(setup):
    """In eval mode each crop's outputs are independent of the others: a batch with a weight-0 crop gives
    the loss of its usable crop alone, and a batch of only weight-0 crops a zero loss that still backpropagates."""
    torch.set_num_threads(2)
    task, grasps, alone = setup
    model = task.build_model().eval()
    grasp, lone = _crops(task, grasps)[:1], _crops(task, alone)
    # Without the finger-rendering term: on the untrained model's blob of a hand (~0.1 grid units) the soft
    # rasteriser's depth softmax turns batch-size rounding differences (1e-5) into percent changes.
    plain = build_task("dma_ho3d", augmentation=dict(enabled=False),
                       task_options=dict(synthetic_objects=OBJECTS, template_cache=str(task.template_cache),
                                         loss_weights=dict(finger_render=0.0)))
    plain._load_assets()
    with torch.no_grad():
        mixed = plain.loss(model, plain.collate(lone + grasp))
        single = plain.loss(model, plain.collate(grasp))
    assert set(mixed) == set(single) and "finger_render" not in single
    for name in single:  # 1e-3: the normal term normalises the blob's tiny edges (rounding reaches 1e-4)
        assert abs(float(mixed[name]) - float(single[name])) <= 1e-3 * abs(float(single[name])) + 1e-6, name
    assert float(single["total"]) > 0
    empty = task.loss(model, task.collate(lone))
    assert set(empty) == set(single) | {"finger_render"} and float(empty["total"].detach()) == 0.0
    assert empty["total"].requires_grad


def test_short_run_lowers_the_loss_and_reports_metrics(setup, tmp_path):
    """Three steps of the full model (two ResNet-50s) on one crop, then the evaluation metrics."""
    torch.set_num_threads(2)
    task, grasps, _ = setup

    class One:  # the first grasp only
        def __len__(self):
            return 1

        def __getitem__(self, index):
            return grasps[0]

    config = TrainConfig(epochs=3, batch_size=1, lr=1e-4, out_dir=str(tmp_path / "run"), progress_bar=False,
                         tensorboard=False, log_every_steps=1, eval_every_epochs=3)
    result = Trainer(task, config, init_distributed("cpu"), One(), One()).fit()
    losses = [h["total"] for h in result.history]
    assert len(losses) == 3 and losses[-1] < losses[0], losses
    assert result.history[0]["target_mano_error_mm"] < 2.0
    metrics = result.evaluations[-1]
    assert metrics["evaluated_crops"] == 1.0
    for name in ("mpjpe_right_mm", "object_translation_mm", "object_mme_mm", "object_mme_symmetric_mm"):
        assert np.isfinite(metrics[name]) and metrics[name] >= 0, metrics
    assert metrics["object_mme_symmetric_mm"] <= metrics["object_mme_mm"] + 1e-6
