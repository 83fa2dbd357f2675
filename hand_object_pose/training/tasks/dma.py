"""Training task of Dense Mutual Attention (Wang, Mao, Li, WACV 2023). See docs/dma_training.md.

The authors released no training code; the recipe is the paper's (section 4.3: Adam, lr 1e-4 /10 after
10 and 20 epochs, batch 24; the losses and weights of `models.dma.criterion`) and the released config
(models.md section 4.3).

Assets (loaded in `build_model`, so a config naming files elsewhere still builds its task):
* hand: a MANO-layout npz (`mano_path`: the user's converted MANO_RIGHT.npz or the directory holding it,
  `geometry.hand_model_files.hand_model_file`; default the licence-free stand-in hand, NOT MANO) gives the faces, the 21x778 joint regressor, the finger labels of the
  rendering loss and the MANO layer that turns labelled pose/shape into target vertices;
* objects: DMA templates with 1000 vertices, either npz files of `tools.object_template` (`geometry.object_template`)
  (`object_templates: [paths]`, the id stored in each file must equal the dataset's object name) or
  the synthetic catalogue (`object_templates: synthetic`), resampled here with ACVD and cached.

Targets of one crop (everything in the crop camera frame, then converted to the lixel grid with
`camera_to_grid` about the ground-truth wrist depth):
* hand vertices: the MANO layer on the crop's pose/shape, moved so that the layer's wrist joint lands on
  the labelled wrist (`joints_cam[0]`). With `align_orientation` (default) the layer's hand is first
  rotated about its wrist onto the labelled joints (Kabsch over the labelled joints): the labelled
  joints then fix the hand's orientation whatever frame a dataset stores the MANO global orientation
  in (HO-3D's stays in its OpenGL frame in our reader). The residual joint error of the placed hand is
  logged as `target_mano_error_mm` (a few mm: our MANO layer vs the dataset's own fit);
* joints: the crop labels; the regressor's tip rows use the tip vertices the labels were made with
  (`fingertip_vertices`; default the stand-in's own, or the official DMA ids with a MANO file);
* object: the crop's first object (DMA handles one);
* object vertices: the template posed with the crop's R, t; quaternion (w, x, y, z) from R; silhouette
  at 128x128 from the crop's object mask, else the posed template's projected triangles;
* model inputs: root joint = the labelled wrist (the official code used the ground-truth root at test
  time too), focal / principal point of the crop's K', the object's catalogue index.

DMA models one right hand with one object. Crops without a right hand, without MANO parameters for it,
or without an object keep their place in the batch (shapes and DDP collectives stay aligned) but get
weight 0: the losses are averaged over the other crops, and a batch with none gives a zero loss.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np
import torch
from torch import nn

from hand_object_pose.evaluation.joints import mpjpe
from hand_object_pose.evaluation.objects import mean_mesh_error, symmetry_rotations
from hand_object_pose.geometry.camera import project_points
from hand_object_pose.geometry.object_template import load_template, resample_mesh, save_template
from hand_object_pose.geometry.rotations import matrix_to_quaternion
from hand_object_pose.models.dma import DMAConfig, HandTopology, ObjectTemplate
from hand_object_pose.models.dma.assets import FINGERTIP_VERTICES, hand_topology_from_model
from hand_object_pose.models.dma.criterion import DMACriterion, DMALossWeights, DMATargets, camera_to_grid

from ..augmentation import AugmentationConfig, TrainingCrop
from . import task_for
from .base import TrainingTask
from .common import image_tensor

SYNTHETIC = "synthetic"
SILHOUETTE_SIZE = 128  # the silhouette decoder's output, half the 256 crop
TIP_ROWS = (4, 8, 12, 16, 20)  # thumb, index, middle, ring, pinky tips in the wrist-first joint order


def default_template_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "hand_object_pose" / "dma_templates"


def synthetic_templates(object_ids: Optional[Sequence[str]], cache_dir: Path, num_vertices: int) -> list:
    """DMA templates of the synthetic catalogue (all objects, or `object_ids` in that order), made with
    ACVD (`geometry.object_template.resample_mesh`) and cached under `cache_dir` by a hash of the source mesh."""
    from hand_object_pose.synthetic.objects import default_objects

    catalogue = {o.object_id: o for o in default_objects()}
    ids = list(catalogue) if object_ids is None else list(object_ids)
    unknown = [i for i in ids if i not in catalogue]
    if unknown:
        raise ValueError(f"unknown synthetic object ids {unknown}; the catalogue has {sorted(catalogue)}")
    templates = []
    for object_id in ids:
        obj = catalogue[object_id]
        digest = hashlib.sha1(np.ascontiguousarray(obj.vertices, np.float64).tobytes()
                              + np.ascontiguousarray(obj.faces, np.int64).tobytes()
                              + str(num_vertices).encode()).hexdigest()[:16]
        path = Path(cache_dir) / f"{object_id}-{digest}.npz"
        if path.is_file():
            templates.append(load_template(path))
            continue
        vertices, faces = resample_mesh(obj.vertices, obj.faces, num_vertices)
        template = ObjectTemplate(object_id, vertices, faces, dict(obj.symmetry))
        save_template(path, template, source=f"synthetic catalogue: {object_id}")
        templates.append(template)
    return templates


def hand_topology(arrays, fingertip_vertices: Sequence[int]) -> HandTopology:
    """Faces and the 21x778 regressor (MANO's 16 joints + five tip vertices, wrist-first) of a MANO-layout
    model, with the given tip vertex ids (thumb, index, middle, ring, pinky)."""
    tips = [int(t) for t in fingertip_vertices]
    if len(tips) != 5 or min(tips) < 0 or max(tips) >= 778:
        raise ValueError(f"task.fingertip_vertices must be 5 vertex ids in 0..777 (thumb, index, middle, ring, "
                         f"pinky); got {fingertip_vertices!r}")
    topology = hand_topology_from_model(arrays)
    regressor = topology.joint_regressor.copy()
    regressor[list(TIP_ROWS)] = 0.0
    regressor[list(TIP_ROWS), tips] = 1.0
    return HandTopology(topology.faces, regressor)


def _fields(record) -> dict:
    """A dataclass's fields by name, uncopied (`dataclasses.asdict` deep-copies tensors out of the graph)."""
    return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}


def _rotation_onto(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Rotation R minimising sum |R source_i - target_i|^2 (Kabsch, proper rotation). (P, 3) each."""
    u, _, vt = np.linalg.svd(source.T @ target)
    d = np.sign(np.linalg.det(vt.T @ u.T))
    return vt.T @ np.diag([1.0, 1.0, d]) @ u.T


def _project_template(vertices_cam: np.ndarray, faces: np.ndarray, intrinsics: np.ndarray, size: int,
                      crop_size: int) -> np.ndarray:
    """(size, size) uint8 silhouette of a posed mesh: its projected triangles filled (no occlusion)."""
    mask = np.zeros((size, size), np.uint8)
    if np.any(vertices_cam[:, 2] <= 1e-3):
        return mask  # behind or at the camera: no sensible projection
    uv = project_points(vertices_cam, intrinsics) * (size / crop_size)
    triangles = np.round(uv[faces] * 8).astype(np.int32)  # 3 fractional bits for sub-pixel corners
    # One call per triangle: fillPoly with many contours would cancel overlapping (front/back) faces.
    for triangle in triangles:
        cv2.fillConvexPoly(mask, triangle, 1, lineType=cv2.LINE_8, shift=3)
    return mask


@task_for("dma")
class DMATask(TrainingTask):
    name = "dma"
    # The residual GIN blocks whose outputs the official forward discards, and PoseNet's unused `conv`,
    # never receive gradients.
    find_unused_parameters = True

    def __init__(self, family, model_config: DMAConfig, augmentation: AugmentationConfig = AugmentationConfig(),
                 mano_path: Optional[str] = None, flat_hand_mean: bool = True,
                 object_templates=SYNTHETIC, synthetic_objects: Optional[Sequence[str]] = None,
                 template_cache: Optional[str] = None, align_orientation: bool = True,
                 fingertip_vertices: Optional[Sequence[int]] = None, loss_weights: Optional[dict] = None,
                 initial_weights: Optional[str] = None):
        super().__init__(family, model_config, augmentation, initial_weights)
        self.mano_path = mano_path
        self.flat_hand_mean = bool(flat_hand_mean)
        if object_templates != SYNTHETIC and (isinstance(object_templates, str)
                                              or not isinstance(object_templates, (list, tuple))):
            raise ValueError(f"task.object_templates must be 'synthetic' or a list of template .npz paths "
                             f"(tools.object_template); got {object_templates!r}")
        if object_templates != SYNTHETIC and synthetic_objects is not None:
            raise ValueError("task.synthetic_objects selects from the synthetic catalogue; it cannot be combined "
                             "with a list of object_templates")
        self.object_templates = object_templates
        self.synthetic_objects = None if synthetic_objects is None else list(synthetic_objects)
        self.template_cache = Path(template_cache).expanduser() if template_cache else default_template_cache()
        self.align_orientation = bool(align_orientation)
        self.fingertip_vertices = None if fingertip_vertices is None else [int(t) for t in fingertip_vertices]
        try:
            self.loss_weights = DMALossWeights(**(loss_weights or {}))
        except TypeError as exc:
            raise ValueError(f"task.loss_weights: {exc}; fields: "
                             f"{[f.name for f in dataclasses.fields(DMALossWeights)]}") from None
        self._assets_loaded = False

    # --- assets ------------------------------------------------------------------------------------
    def _load_assets(self) -> None:
        """Hand model, MANO layer, object templates and the criterion (once)."""
        if self._assets_loaded:
            return
        from hand_object_pose.geometry.hand_model_files import hand_model_file, load_hand_model
        from hand_object_pose.geometry.mano import TIP_VERTEX_IDS, ManoLayer
        from hand_object_pose.models.dma.soft_render import finger_face_labels

        path = hand_model_file("right", self.mano_path or "", required=True).path
        arrays = load_hand_model(path)
        # Tip vertices as the joint labels define them: the stand-in hand's own (its synthetic labels come
        # from our MANO layer), else the official DMA ids (HO-3D's joint convention).
        tips = self.fingertip_vertices or (TIP_VERTEX_IDS if self.mano_path is None else FINGERTIP_VERTICES)
        self.hand = hand_topology(arrays, tips)
        self.mano = ManoLayer(arrays, side="right", flat_hand_mean=self.flat_hand_mean)
        if self.object_templates == SYNTHETIC:
            templates = synthetic_templates(self.synthetic_objects, self.template_cache,
                                            self.model_config.num_object_vertices)
        else:
            templates = []
            for template_path in self.object_templates:
                template_path = Path(template_path).expanduser()
                if not template_path.is_file():
                    raise FileNotFoundError(f"DMA object template not found: {template_path} (make it with "
                                            f"python -m hand_object_pose.tools.object_template)")
                templates.append(load_template(template_path))
        self.templates = templates
        self.object_index = {t.name: k for k, t in enumerate(templates)}
        self.symmetries = [symmetry_rotations(**t.symmetry) for t in templates]
        self.criterion = DMACriterion(self.hand.faces, self.hand.joint_regressor, [t.faces for t in templates],
                                      self.loss_weights, finger_face_labels(arrays["weights"], arrays["f"]))
        self._assets_loaded = True

    def build_model(self) -> nn.Module:
        self._load_assets()
        model = self.start_from(self.family.build(self.model_config, hand=self.hand, objects=self.templates))
        self.criterion.to(next(model.parameters()).device)
        return model

    def parameter_groups(self, model: nn.Module, lr: float) -> list[dict]:
        """One group: the paper trains everything with one Adam learning rate."""
        return [{"params": [p for p in model.parameters() if p.requires_grad], "lr": lr}]

    # --- batches -----------------------------------------------------------------------------------
    def _hand_targets(self, crops: list[TrainingCrop], rows: list[int]):
        """MANO vertices placed on the labels (module docstring): (len(rows), 778, 3) metres and the mean
        joint distance (metres) between the placed layer's joints and the labels, per row."""
        hands = [crops[i].hands["right"] for i in rows]
        pose = torch.from_numpy(np.stack([np.asarray(h.mano_pose, np.float32).reshape(48) for h in hands]))
        shape = torch.from_numpy(np.stack([np.asarray(h.mano_shape, np.float32)[:10] for h in hands]))
        with torch.no_grad():
            out = self.mano(pose[:, :3], pose[:, 3:], shape)
        vertices, joints = out.vertices.double().numpy(), out.joints.double().numpy()
        placed, errors = [], []
        for hand, v, j in zip(hands, vertices, joints):
            label = np.asarray(hand.joints_cam, np.float64)
            wrist = j[0]
            used = np.asarray(hand.joints_valid, bool).copy()
            used[0] = False
            if self.align_orientation and used.sum() >= 3:
                rotation = _rotation_onto(j[used] - wrist, label[used] - label[0])
                v, j = (v - wrist) @ rotation.T + wrist, (j - wrist) @ rotation.T + wrist
            shift = label[0] - wrist
            placed.append(v + shift)
            errors.append(float(np.linalg.norm(j + shift - label, axis=-1)[hand.joints_valid].mean()))
        return np.stack(placed).astype(np.float32), np.asarray(errors, np.float32)

    def _silhouette(self, crop: TrainingCrop, vertices_cam: np.ndarray, faces: np.ndarray) -> np.ndarray:
        if crop.masks:
            mask = cv2.resize(crop.masks[0].astype(np.float32), (SILHOUETTE_SIZE, SILHOUETTE_SIZE),
                              interpolation=cv2.INTER_AREA)
            return (mask >= 0.5).astype(np.int64)
        return _project_template(vertices_cam, faces, crop.intrinsics, SILHOUETTE_SIZE,
                                 crop.image.shape[0]).astype(np.int64)

    def collate(self, crops: list[TrainingCrop]) -> dict:
        """Model inputs and camera-frame targets (grid conversion happens on the device, in `loss`)."""
        self._load_assets()
        n = len(crops)
        nj, nh, no = self.model_config.num_joints, self.model_config.num_hand_vertices, \
            self.model_config.num_object_vertices
        root = np.tile(np.array([0.0, 0.0, 0.5], np.float32), (n, 1))   # placeholder for weight-0 crops
        hand_vertices = np.zeros((n, nh, 3), np.float32)
        hand_joints = np.zeros((n, nj, 3), np.float32)
        joint_valid = np.zeros((n, nj), bool)
        object_index = np.zeros(n, np.int64)
        rotation = np.tile(np.eye(3, dtype=np.float32), (n, 1, 1))
        translation = np.zeros((n, 3), np.float32)
        object_vertices = np.zeros((n, no, 3), np.float32)
        silhouette = np.zeros((n, SILHOUETTE_SIZE, SILHOUETTE_SIZE), np.int64)
        mano_error = np.zeros(n, np.float32)
        rows = []
        for i, crop in enumerate(crops):
            hand = crop.hands.get("right")
            if hand is None or hand.mano_pose is None or hand.mano_shape is None or not crop.objects:
                continue
            obj = crop.objects[0]
            if obj.object_id not in self.object_index:
                raise ValueError(f"object {obj.object_id!r} has no DMA template; the task's templates are "
                                 f"{sorted(self.object_index)} (task.object_templates)")
            k = self.object_index[obj.object_id]
            rows.append(i)
            root[i], hand_joints[i], joint_valid[i] = hand.joints_cam[0], hand.joints_cam, hand.joints_valid
            object_index[i], rotation[i], translation[i] = k, obj.rotation, obj.translation
            posed = self.templates[k].vertices.astype(np.float64) @ np.asarray(obj.rotation).T + obj.translation
            object_vertices[i] = posed
            silhouette[i] = self._silhouette(crop, posed, self.templates[k].faces)
        if rows:
            hand_vertices[rows], mano_error[rows] = self._hand_targets(crops, rows)
        intrinsics = np.stack([c.intrinsics for c in crops]).astype(np.float32)
        weight = np.zeros(n, np.float32)
        weight[rows] = 1.0
        quaternion = matrix_to_quaternion(rotation.astype(np.float64)).astype(np.float32)
        arrays = dict(root_joint=root, focal=intrinsics[:, [0, 1], [0, 1]], principal_point=intrinsics[:, :2, 2],
                      object_index=object_index, hand_vertices_cam=hand_vertices, hand_joints_cam=hand_joints,
                      joint_valid=joint_valid, object_rotation=rotation, object_translation=translation,
                      object_quaternion=quaternion, object_vertices_cam=object_vertices,
                      object_silhouette=silhouette, sample_weight=weight, mano_error=mano_error)
        return {"image": image_tensor(crops, bgr=True), **{k: torch.from_numpy(v) for k, v in arrays.items()}}

    def targets(self, batch: dict) -> DMATargets:
        """Grid-space targets of the whole batch (weight-0 rows hold placeholders)."""
        cfg = self.model_config
        grid = lambda points: camera_to_grid(points, batch["root_joint"][:, 2], batch["focal"],  # noqa: E731
                                             batch["principal_point"], cfg)
        return DMATargets(hand_vertices_grid=grid(batch["hand_vertices_cam"]),
                          hand_joints_grid=grid(batch["hand_joints_cam"]),
                          object_vertices_grid=grid(batch["object_vertices_cam"]),
                          object_quaternion=batch["object_quaternion"], object_translation=batch["object_translation"],
                          object_silhouette=batch["object_silhouette"], object_index=batch["object_index"])

    def _forward(self, model: nn.Module, batch: dict):
        return model(batch["image"], batch["root_joint"], batch["focal"], batch["principal_point"],
                     batch["object_index"])

    def loss(self, model: nn.Module, batch: dict) -> dict:
        out = self._forward(model, batch)
        keep = batch["sample_weight"] > 0
        if not bool(keep.any()):
            # Still a graph through every output, so backward and DDP's gradient reduction run as usual.
            zero = sum(value.sum() for value in _fields(out).values() if value is not None) * 0.0
            names = ["mesh", "edge", "normal", "object_pose", "joints"]  # the criterion's terms, as zeros
            if out.object_silhouette_logits is not None:
                names.append("silhouette")
            if self.loss_weights.finger_render:
                names.append("finger_render")
            terms = {name: zero for name in names}
            terms["total"] = zero
            terms["target_mano_error_mm"] = zero.detach()
            return terms
        targets = self.targets(batch)
        if not bool(keep.all()):
            out = type(out)(**{k: None if v is None else v[keep] for k, v in _fields(out).items()})
            targets = DMATargets(**{k: v[keep] for k, v in _fields(targets).items()})
        terms = self.criterion(out, targets)
        terms["target_mano_error_mm"] = batch["mano_error"][keep].mean() * 1000.0
        return terms

    @torch.no_grad()
    def evaluate(self, model: nn.Module, batches) -> dict:
        """Root-relative right-hand MPJPE (mm), object translation error (mm), object mean mesh error (MME,
        mean template-vertex distance, mm; plain as DMA's test.py and minimised over the object's
        symmetries), over the crops with a right hand and an object. Inputs use the ground-truth wrist
        and object identity, as the official evaluation did."""
        pred_joints, gt_joints, valid, translation_errors, mme, mme_sym = [], [], [], [], [], []
        for batch in batches:
            keep = batch["sample_weight"] > 0
            if not bool(keep.any()):
                continue
            out = self._forward(model, batch)
            pred_joints.append(out.hand_joints[keep].cpu().numpy())
            gt_joints.append(batch["hand_joints_cam"][keep].cpu().numpy())
            valid.append(batch["joint_valid"][keep].cpu().numpy())
            translation_errors.append((out.object_translation - batch["object_translation"])[keep]
                                      .norm(dim=-1).cpu().numpy())
            for i in torch.nonzero(keep).flatten().tolist():
                k = int(batch["object_index"][i])
                points = self.templates[k].vertices
                pred = (out.object_rotation[i].cpu().numpy(), out.object_translation[i].cpu().numpy())
                gt = (batch["object_rotation"][i].cpu().numpy(), batch["object_translation"][i].cpu().numpy())
                mme.append(mean_mesh_error(points, pred, gt))
                mme_sym.append(mean_mesh_error(points, pred, gt, self.symmetries[k]))
        if not pred_joints:
            return {}
        return {"mpjpe_right_mm": mpjpe(np.concatenate(pred_joints) * 1000.0, np.concatenate(gt_joints) * 1000.0,
                                        np.concatenate(valid)),
                "object_translation_mm": float(np.concatenate(translation_errors).mean() * 1000.0),
                "object_mme_mm": float(np.mean(mme) * 1000.0),
                "object_mme_symmetric_mm": float(np.mean(mme_sym) * 1000.0),
                "evaluated_crops": float(len(mme))}
