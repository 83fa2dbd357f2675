"""`ModelFamily`: what every network family tells the rest of the package about itself.

A family is one folder in `models/` (kpt, occrobnet, a2j, dma, ...) with one `FAMILY` object, an
instance of a `ModelFamily` subclass, registered by name in `models.registry`. Callers ask the family
(its presets, how to build it, which tensor-only inference graph the torch backend runs and the ONNX
export writes, its input size / channel order / tensor names, how to read the authors' release);
they never compare family names. Adding a family: docs/architecture.md, "Adding a family".

Image inputs are NCHW float32 in [0, 1] with no mean/std (all four official pipelines); `channels`
says whether the three planes are RGB or BGR.
"""
from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Mapping, Optional

import torch
from torch import nn


@dataclass
class OfficialLoadReport:
    """What loading the authors' tensors did: `mapped` their key -> ours, `unused` their key -> why not."""

    mapped: dict = field(default_factory=dict)
    unused: dict = field(default_factory=dict)


class ModelFamily:
    """Base class of every family object; subclasses set the class attributes and override methods.

    Attributes:
      name: registry name, also the folder name under `models/`.
      presets: preset name -> frozen config dataclass.
      channels: "RGB" or "BGR": the order of the image input's three planes.
      training_tasks: names of training-engine tasks whose checkpoints hold this family's weights.
      has_official_release: the authors published weights that `load_official` reads.
      uses_object_templates: the network is built around a hand mesh topology and object templates
        (passed to `build` as `hand=` / `objects=`), which an export bakes into the graph.
      runs_on_hand_detector: the network is run by the offline hand detector
        (`inference.hand_detection`) on its own rotated crops, from the files it ships; the Estimator
        takes the detector's hands as the prediction and needs no model_path.
    """

    name: str = ""
    presets: Mapping = {}
    channels: str = "RGB"
    training_tasks: tuple = ()
    has_official_release: bool = False
    uses_object_templates: bool = False
    runs_on_hand_detector: bool = False
    min_opset: int = 13  # the lowest ONNX opset the inference graph exports with

    # --- building ---------------------------------------------------------------------------------

    def build(self, config, **assets) -> nn.Module:
        """An untrained model for `config` (assets: see `uses_object_templates`)."""
        raise NotImplementedError

    def with_overrides(self, config, overrides: Optional[Mapping]):
        """`config` with fields replaced; ValueError naming the unknown field and the known ones."""
        if not overrides:
            return config
        known = [f.name for f in dataclasses.fields(config)]
        unknown = [k for k in overrides if k not in known]
        if unknown:
            raise ValueError(f"{unknown[0]!r} is not a field; fields of {type(config).__name__}: {known}")
        return dataclasses.replace(config, **overrides)

    # --- the inference graph (torch backend and ONNX export run the same module) -------------------

    def inference_graph(self, model: nn.Module) -> nn.Module:
        """Tensor-in, tuple-out module in eval mode, outputs in `output_names(model.config)` order."""
        raise NotImplementedError

    def input_names(self, config) -> tuple:
        return ("image",)

    def output_names(self, config) -> tuple:
        raise NotImplementedError

    def input_size(self, config) -> int:
        """Side of the square image input in pixels."""
        return config.input_size

    def example_inputs(self, model: nn.Module, batch: int, generator: torch.Generator) -> tuple:
        """Seeded inputs of the graph's shapes and dtypes (tracing, export checks, benchmarks)."""
        size = self.input_size(model.config)
        return (torch.rand(batch, 3, size, size, generator=generator),)

    def onnx_metadata(self, model: nn.Module) -> dict:
        """Key -> string entries an export stores in the ONNX file's metadata_props."""
        return {}

    def tie_free_outputs(self, config, got: Mapping, expected: Mapping) -> tuple[set, str]:
        """Which outputs an export check compares, given ONNX Runtime's (`got`) and torch's (`expected`)
        arrays by name, and a note on what was left out (outputs behind a top-k / argmax near-tie)."""
        return set(self.output_names(config)), ""

    def joint_order(self, config) -> dict:
        """The exported outputs' joint order, for the export's metadata record."""
        raise NotImplementedError

    def metadata(self, config) -> dict:
        """Family-specific entries of the export's metadata record."""
        return {}

    # --- the authors' release ---------------------------------------------------------------------

    def is_official_state(self, state: Mapping) -> bool:
        """Whether a bare state dict (no wrapper) is in the authors' naming rather than ours."""
        return bool(state) and all(str(k).startswith("module.") for k in state)

    def load_official(self, model: nn.Module, state: Mapping) -> OfficialLoadReport:
        """Load the authors' tensors (their `network` dict) strictly: every tensor is mapped or listed
        as unused with a reason; KeyError / ValueError / RuntimeError naming what does not fit."""
        raise ValueError(f"{self.name} has no official release: pass a checkpoint of the training engine")

    def official_mismatch_hint(self, model: nn.Module, state: Mapping) -> str:
        """A hint appended to a failed official load (e.g. which preset the tensors look like)."""
        return ""


class PerFamilyRegistry:
    """Classes registered per family name by the modules of one package (inference adapters, training tasks).

    `register(*names)` is a class decorator; `lookup(name)` first imports every module of `package` (once),
    so a new family's class is one new module in that package and nothing else.
    """

    def __init__(self, package: str, package_path, kind: str, skip: tuple = ()):
        self.package, self.package_path, self.kind, self.skip = package, package_path, kind, skip
        self._classes: dict = {}
        self._imported = False

    def register(self, *family_names: str):
        def decorate(cls):
            for name in family_names:
                self._classes[name] = cls
            return cls
        return decorate

    def lookup(self, family_name: str):
        """The class registered for `family_name`; ValueError naming the families that have one."""
        if not self._imported:  # all modules, even when one was imported directly before
            for module in pkgutil.iter_modules(self.package_path):
                if module.name not in self.skip:
                    importlib.import_module(f"{self.package}.{module.name}")
            self._imported = True
        if family_name not in self._classes:
            raise ValueError(f"no {self.kind} for model family {family_name!r} (there is one for: "
                             f"{', '.join(sorted(self._classes))})")
        return self._classes[family_name]
