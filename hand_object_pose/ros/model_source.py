"""Where the node's ONNX model comes from: an export, or a weights file exported once into the cache.

`model_path` may name the authors' `.pth.tar` or a training checkpoint (`runs/NAME/latest.pt`) while the
backend is ONNX Runtime: the start-up exports it once (`export.cache`, keyed by the weights' hash, the
preset, the templates and the exporter version) and the next start reuses the cached file.
"""
from __future__ import annotations

from typing import Callable

from hand_object_pose.export.cache import is_weights_file, onnx_for_weights
from hand_object_pose.inference.catalogue import ObjectCatalogue
from hand_object_pose.models.registry import get_preset


def resolve_model_path(values: dict, cache_dir: str, say: Callable[[str], None]) -> str:
    """The .onnx path the Estimator loads, for the node's parameter values (`model`, `backend`, `model_path`,
    `mano_path`, `object_catalogue`). Unchanged unless ONNX Runtime is asked to run a weights file.

    Raises ExportError / ValueError (one line) for a weights file of another family or preset, or a corrupt one.
    """
    path = values.get("model_path", "")
    if values.get("backend") != "onnxruntime" or not path or not is_weights_file(path):
        return path
    family, _ = get_preset(values["model"])
    templates = ()
    if family.uses_object_templates and values.get("object_catalogue"):
        catalogue = ObjectCatalogue.load(values["object_catalogue"])
        templates = tuple(catalogue[i].template_path for i in catalogue.template_ids)
    return str(onnx_for_weights(path, values["model"], cache_dir, values.get("mano_path", ""), templates, say))
