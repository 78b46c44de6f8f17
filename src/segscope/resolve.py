"""What a method name stands for, decided in one place for the API, the CLI and the tiled engine.

A method is a registered function's name (``"otsu"``) or a trained model file (``best.pt``,
``model.onnx``). :func:`resolve` returns an object that segments, converts options typed as text,
and says whether a model file stands behind it; nobody else looks at suffixes or registries.
"""

from __future__ import annotations

import inspect
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .io.volumes import Volume
from .prompting import PromptedMethod
from .registry import MethodInfo, bind_parameters, get_method, list_methods
from .result import Provenance, Segmentation
from .textvalues import convert_all

__all__ = ["MODEL_SUFFIXES", "ModelFile", "RegisteredMethod", "is_model_file", "model_path",
           "prompted_models", "resolve", "resolve_prompted"]

MODEL_SUFFIXES = (".pt", ".pth", ".onnx")
"""File endings that make a method a trained model rather than a registered method's name."""


def is_model_file(method: str | os.PathLike[str]) -> bool:
    """Whether ``method`` names a trained model file (a path, or a name ending in a model suffix)."""
    return isinstance(method, os.PathLike) or str(method).endswith(MODEL_SUFFIXES)


def _version() -> str:
    from . import __version__

    return __version__


def _describe(params: Mapping[str, Any]) -> dict[str, Any]:
    # Arrays (marker images, masks) are recorded by shape, not copied into the provenance.
    return {k: (f"<array {v.shape} {v.dtype}>" if isinstance(v, np.ndarray) else v)
            for k, v in params.items()}


@dataclass(frozen=True)
class RegisteredMethod:
    """A method of the registry (:func:`segscope.registry.register_method`)."""

    info: MethodInfo

    @property
    def name(self) -> str:
        return self.info.name

    def options_from_text(self, values: Mapping[str, str]) -> dict[str, Any]:
        """Options typed as text, converted by the method's annotations (only those given)."""
        bound = bind_parameters(self.info, values, from_text=True)
        return {k: bound[k] for k in values}

    def segment(self, image: np.ndarray | Volume, **params: Any) -> Segmentation:
        """Run the method with its parameters checked and defaults filled in, provenance recorded.

        A :class:`~segscope.io.volumes.Volume` goes to a method that takes volumes (one that
        declares ``spacing``) with its voxels and its spacing; other methods refuse it."""
        if isinstance(image, Volume):
            if not self.info.takes_volumes:
                able = ", ".join(m.name for m in list_methods() if m.takes_volumes)
                raise ValueError(f"method {self.name!r} segments 2-D images, not volumes; methods that take "
                                 f"volumes: {able}")
            params = {"spacing": image.spacing, **params}
            image = image.data
        bound = bind_parameters(self.info, params)
        start = time.perf_counter()
        result = self.info.function(image, **bound)
        seconds = time.perf_counter() - start
        details = result.provenance.details if result.provenance is not None else {}
        return result.with_provenance(Provenance(self.info.name, parameters=_describe(bound), details=details,
                                                 seconds=seconds, version=_version()))


@dataclass(frozen=True)
class ModelFile:
    """A trained checkpoint or an exported ONNX model (running it needs segscope[deep]); a zoo
    model is one whose ``label`` is its zoo name."""

    model_path: Path
    label: str | None = None

    @property
    def name(self) -> str:
        return self.label or str(self.model_path)

    def predictor(self) -> Any:
        """The file's predictor, kept open between calls (:func:`segscope.infer.predictor_for`)."""
        try:
            from .infer import predictor_for
        except ImportError as exc:
            raise ImportError(f"{self.model_path}: running a model needs segscope[deep] (torch, "
                              f"torchvision): {exc}") from exc
        return predictor_for(self.model_path)

    def options_from_text(self, values: Mapping[str, str]) -> dict[str, Any]:
        """Options typed as text, converted by the annotations of the predictor's ``segment``."""
        return convert_all(values, self.predictor().segment, what=str(self.model_path))

    def segment(self, image: np.ndarray | Volume, **params: Any) -> Segmentation:
        predictor = self.predictor()
        kinds = getattr(predictor, "prompt_kinds", None)
        if kinds:
            raise ValueError(f"{self.name} is a click model: it segments what a user points at "
                             f"({', '.join(kinds)}), with segscope.prompt(image, points=..., "
                             f"method={self.name!r}) or `segscope prompt -m {self.name}`")
        if isinstance(image, Volume) and not getattr(predictor, "takes_volumes", False):
            raise ValueError(f"{self.name}: a model of 2-D images, not volumes; volumes go to 3-D networks "
                             "(unet3d) and to the methods that take volumes")
        allowed = {n for n in inspect.signature(predictor.segment).parameters if n != "image"}
        unknown = sorted(set(params) - allowed)
        if unknown:
            raise TypeError(f"{self.model_path}: unknown option(s) {unknown}; "
                            f"this model takes {sorted(allowed)}")
        result = predictor.segment(image, **params)
        made = result.provenance
        return result.with_provenance(Provenance(
            self.name, parameters=made.parameters if made is not None else dict(params),
            details=made.details if made is not None else {},
            seconds=made.seconds if made is not None else None, version=_version()))


Method = RegisteredMethod | ModelFile


def resolve(method: str | os.PathLike[str]) -> Method:
    """The method ``method`` names: a model file (which must exist), a registered method, or a
    model of the zoo (:mod:`segscope.zoo`, its weights checked against their sha256). An unknown
    name is a ValueError listing the valid ones."""
    if is_model_file(method):
        path = Path(method)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such checkpoint or ONNX model")
        return ModelFile(path)
    from .zoo import verified_weights, zoo_cards

    name = str(method)
    try:
        return RegisteredMethod(get_method(name))
    except ValueError as exc:
        if name not in zoo_cards():
            zoo = f"; zoo models: {', '.join(sorted(zoo_cards()))}" if zoo_cards() else ""
            raise ValueError(f"{exc}{zoo}") from None
    return ModelFile(verified_weights(name), label=name)


def resolve_prompted(method: str | os.PathLike[str]) -> PromptedMethod:
    """The prompted method ``method`` names: a registered one
    (:func:`segscope.prompting.register_prompted`), or a model that follows prompts (a zoo name or
    a checkpoint whose family's predictor declares ``prompt_kinds``, such as ``click_unet``)."""
    from .prompting import get_prompted, list_prompted

    if not is_model_file(method):
        try:
            return get_prompted(str(method))
        except ValueError as exc:
            from .zoo import zoo_cards

            if str(method) not in zoo_cards():
                models = prompted_models()
                listed = f"; click models: {', '.join(models)}" if models else ""
                raise ValueError(f"{exc}{listed}") from None
    model = resolve(method)
    if not isinstance(model, ModelFile):  # pragma: no cover - a registered method's name was refused above
        raise ValueError(f"{method}: not a prompted method")
    predictor = model.predictor()
    kinds = tuple(getattr(predictor, "prompt_kinds", ()))
    if not kinds:
        able = ", ".join([m.name for m in list_prompted()] + list(prompted_models()))
        raise ValueError(f"{model.name} segments whole images and follows no prompts; prompted methods: "
                         f"{able}")

    def run(image: np.ndarray, seeds: Any) -> np.ndarray:
        labels: np.ndarray = predictor.prompted(image, seeds)
        return labels

    return PromptedMethod(model.name, kinds, run, f"the click model {model.name}")


def prompted_models() -> dict[str, tuple[str, ...]]:
    """The zoo models that follow prompts, with the prompt kinds they follow: those whose model
    family's predictor declares ``prompt_kinds`` (needs segscope[deep] to know; none without it).
    Nothing is loaded but the predictor classes."""
    from .zoo import zoo_cards

    try:
        from .infer import loading  # noqa: F401  (registers every predictor)
        from .infer.predictor import predictor_class
        from .models import get_model_info
    except ImportError:
        return {}
    found = {}
    for name, card in zoo_cards().items():
        family = get_model_info(card.training["recipe"]["model"]["name"])
        kinds = getattr(predictor_class(family.predictor, source=name), "prompt_kinds", None)
        if kinds:
            found[name] = tuple(kinds)
    return found


def model_path(checkpoint: str | os.PathLike[str]) -> Path:
    """A checkpoint or ONNX file, or a zoo model's name: the file to load (a zoo model's weights
    checked against their sha256 first)."""
    from .zoo import verified_weights, zoo_cards

    if not is_model_file(checkpoint) and str(checkpoint) in zoo_cards():
        return verified_weights(str(checkpoint))
    return Path(checkpoint)
