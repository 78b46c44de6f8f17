"""What every trained model offers as a method: the predictor protocol, and what they share.

A predictor has a ``task``, its ``class_names`` and ``segment(image, **options) -> Segmentation``.
Predictor classes say what they decode with :func:`predicts`: a task's usual output
(``"semantic"`` logits, ``"instance"`` detections, ``"panoptic"`` centres and offsets), or the
name a family declares with ``register_model(..., predictor=...)`` when its output needs its own
decoding (``"star_polygons"``). Loading a file picks the class by the checkpoint's model family
(:func:`predictor_of`), with no list of names.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np

from ..checkpoint import Checkpoint, InputSpec
from ..imagecheck import check_image
from ..result import Segmentation
from ..trainconfig import MIXED_PRECISIONS

__all__ = ["Predictor", "autocast_dtype", "build_network", "cpu_computes_bfloat16", "normalise_image",
           "predictor_class", "predictor_of", "predicts", "to_training_units"]


@runtime_checkable
class Predictor(Protocol):
    """A trained model used like any method."""

    task: str
    """"semantic", "instance" or "panoptic"."""
    class_names: list[str]
    name: str
    """The model file, recorded as the method in each result's provenance."""

    def for_tiles(self) -> Predictor:
        """This predictor as the tiled engine runs it on one tile at a time: the least memory per
        call (the network is shared, not copied)."""
        ...

    @property
    def segment(self) -> Callable[..., Segmentation]:
        """``segment(image, **options)``: the options differ by task (``overlap`` and ``flip`` for
        semantic models, ``score_threshold`` and ``min_area`` for instance models)."""


_DECODERS: dict[str, Callable[..., Predictor]] = {}


def predicts(*outputs: str) -> Callable[[type], type]:
    """Class decorator: this predictor decodes ``outputs`` (task names, or a family's declared
    ``predictor``); it is built with ``cls.from_checkpoint_data(checkpoint, device=..., tile=...,
    name=...)``."""

    def register(cls: type) -> type:
        for output in outputs:
            if output in _DECODERS:
                raise ValueError(f"{output!r} outputs are already decoded by {_DECODERS[output]}")
            _DECODERS[output] = cls
        return cls

    return register


def predictor_class(output: str, *, source: str) -> Callable[..., Predictor]:
    """The predictor class that decodes ``output`` (a task, or a family's declared predictor)."""
    try:
        return _DECODERS[output]
    except KeyError:
        raise ValueError(f"{source}: no predictor decodes {output!r} outputs; known: "
                         f"{sorted(_DECODERS)}") from None


def predictor_of(checkpoint: Checkpoint, *, source: str) -> Callable[..., Predictor]:
    """The predictor class for ``checkpoint``: the one its model family declares."""
    from ..models import get_model_info

    try:
        info = get_model_info(checkpoint.model)
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None
    return predictor_class(info.predictor, source=source)


class WholeImagePredictor:
    """What the predictors that run an image whole share: the network and its inputs, and opening
    a checkpoint with its family's own class (which must be this class or a subclass)."""

    expects = "a model this predictor runs"
    """What a refused checkpoint should have been, for the error message."""
    decoded_by: tuple[str, ...] = ()
    """The settings a checkpoint's ``decoding`` (chosen after training) may set on this predictor."""

    def __init__(self, model: Any, *, class_names: Sequence[str], inputs: InputSpec, device: Any, name: str,
                 architecture: str | None = None) -> None:
        self.model = model
        self.architecture = architecture
        self.class_names: list[str] = list(class_names)
        self.inputs = inputs
        self.device = device
        self.name = name

    @classmethod
    def from_checkpoint(cls: type[_P], path: str | os.PathLike[str], *, device: str | None = None) -> _P:
        """Load a checkpoint written by ``segscope train`` (read with ``weights_only=True``) with the
        predictor its model family declares."""
        from ..checkpoint import load_checkpoint

        checkpoint = load_checkpoint(path)
        family: Any = predictor_of(checkpoint, source=str(path))
        if not issubclass(family, cls):
            raise ValueError(f"{path}: a {checkpoint.task} model, not {cls.expects}")
        predictor: _P = family.from_checkpoint_data(checkpoint, device=device, name=str(path))
        return predictor

    @classmethod
    def from_checkpoint_data(cls: type[_P], checkpoint: Checkpoint, *, device: str | None = None,
                             tile: int | str | None = None, name: str = "checkpoint") -> _P:
        """A predictor from a checkpoint already read; images run whole (``tile`` is unused)."""
        model, dev = build_network(checkpoint, device=device)
        predictor = cls(model, class_names=checkpoint.class_names, inputs=checkpoint.inputs, device=dev,
                        name=name, architecture=checkpoint.model)
        unknown = sorted(set(checkpoint.decoding) - set(cls.decoded_by))
        if unknown:
            raise ValueError(f"{name}: decoding settings {unknown} are not {cls.__name__}'s "
                             f"({', '.join(cls.decoded_by) or 'none'})")
        predictor.apply_decoding(checkpoint.decoding)
        return predictor

    def apply_decoding(self, decoding: Mapping[str, float]) -> None:
        """Take a checkpoint's decoding settings (names :attr:`decoded_by` lists): each sets the
        attribute of its name, stored as a number and typed as the class's default is."""
        for key, value in decoding.items():
            setattr(self, key, type(getattr(type(self), key))(value))

    def for_tiles(self: _P) -> _P:
        """Images already run whole, one per call: the same predictor."""
        return self


_P = TypeVar("_P", bound=WholeImagePredictor)


def build_network(checkpoint: Checkpoint, *, device: str | None = None) -> tuple[Any, Any]:
    """The checkpoint's network with its weights, in evaluation mode with its batch
    normalisations folded into their convolutions (:func:`~segscope.models.fuse_batch_norms`), on
    ``device`` (default: CUDA when present) in its family's ``memory_format``, and that device."""
    import torch

    from ..models import fuse_batch_norms, get_model, on_device

    model = get_model(checkpoint.model, **checkpoint.options)
    model.load_state_dict(checkpoint.state_dict)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    on_device(fuse_batch_norms(model.eval()), dev)
    return model, dev


def autocast_dtype(mixed_precision: str, device: Any) -> Any:
    """The type ``torch.autocast`` runs the network in on ``device``, in training
    (``optim.mixed_precision``) as in inference: ``"cuda"`` float16 on CUDA only (float32 on the
    CPU), ``"bf16"`` bfloat16 on the CPU or CUDA, ``"off"`` float32 throughout
    (:data:`segscope.trainconfig.MIXED_PRECISIONS`). None: float32, no autocast. The weights stay
    float32 either way. ``"bf16"`` on a CPU that does not compute bfloat16 itself
    (:func:`cpu_computes_bfloat16`) runs as asked, with a ``RuntimeWarning``: there it is emulated
    and slower than float32.

    >>> autocast_dtype("cuda", "cpu") is None, autocast_dtype("off", "cpu") is None
    (True, True)
    """
    import torch

    if mixed_precision not in MIXED_PRECISIONS:
        raise ValueError(f"mixed_precision must be one of {', '.join(MIXED_PRECISIONS)}, "
                         f"got {mixed_precision!r}")
    if mixed_precision == "bf16":
        if torch.device(device).type == "cpu" and not cpu_computes_bfloat16():
            warnings.warn("mixed_precision='bf16' on a CPU without native bfloat16 (no avx512_bf16 or "
                          "AMX): it is emulated here and runs slower than float32 (the zoo's nuclei took "
                          "8 to 11 times as long on such a CPU); use 'off'", RuntimeWarning, stacklevel=3)
        return torch.bfloat16
    if mixed_precision == "cuda" and torch.device(device).type == "cuda":
        return torch.float16
    return None


def cpu_computes_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 itself (avx512_bf16 or AMX tiles), where bfloat16
    autocast is faster than float32; without either, PyTorch emulates it and it is slower.
    True when this PyTorch cannot tell (nothing is then warned of).

    >>> isinstance(cpu_computes_bfloat16(), bool)
    True
    """
    import torch

    checks = [getattr(torch.cpu, name, None)
              for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    known = [check for check in checks if callable(check)]
    return not known or any(bool(check()) for check in known)


def to_training_units(image: np.ndarray, trained: str | None) -> np.ndarray:
    """``image`` in the units of the dtype the model was trained on, or a clear refusal.

    A model knows its training images' dtype (:class:`~segscope.checkpoint.InputSpec`). An image
    of the same dtype passes as it is. An integer image of another width is scaled by the ratio of
    the two dtypes' ranges (uint16 to uint8: x 255/65535), as scikit-image's ``img_as_*`` do. A
    float image given to an integer model is taken as 0..1 when it lies there, or as the training
    units when it holds whole numbers in the training dtype's range; anything else is refused, as
    is an integer image given to a model trained on floats (its scale cannot be known).

    >>> to_training_units(np.array([[0, 65535]], np.uint16), "uint8").tolist()
    [[0.0, 255.0]]
    """
    if trained is None or image.dtype.name == trained:
        return image
    target = np.dtype(trained)
    if image.dtype == bool:
        image = image.astype(np.uint8)
        if target.kind in "iu":
            return image * float(np.iinfo(target).max)
    if target.kind in "iu" and image.dtype.kind in "iu":
        return image.astype(np.float64) * (np.iinfo(target).max / np.iinfo(image.dtype).max)
    if target.kind in "iu":
        finite = image[np.isfinite(image)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        top = float(np.iinfo(target).max)
        if low >= 0 and high <= 1:
            return image.astype(np.float64) * top
        if np.iinfo(target).min <= low and high <= top and np.array_equal(finite, np.round(finite)):
            return image
        raise ValueError(f"the model was trained on {trained} images (values {np.iinfo(target).min}.."
                         f"{int(top)}); this {image.dtype} image spans [{low:g}, {high:g}]: scale it to "
                         f"0..{int(top)} or to 0..1 first")
    if image.dtype.kind in "iu":
        raise ValueError(f"the model was trained on {trained} images; this image is {image.dtype}: convert "
                         "it to the training images' float scale first")
    return image


def normalise_image(image: np.ndarray, inputs: InputSpec, *, channel_axis: int | None = None) -> np.ndarray:
    """A (C_in, H, W) float32 array normalised as the model's training images were (``inputs``):
    mapped from its own percentiles when the model was trained so, else brought to the training
    images' units (:func:`to_training_units`; no other rescaling); then the per-channel mean and
    standard deviation."""
    image = check_image(image, channel_axis=channel_axis)
    if inputs.percentiles is None:
        image = to_training_units(image, inputs.dtype)
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[-1] != inputs.channels:
        raise ValueError(f"the model takes {inputs.channels} channel(s); the image has {image.shape[-1]}")
    mean = np.asarray(inputs.mean, np.float32)
    std = np.asarray(inputs.std, np.float32)
    x = (np.asarray(inputs.rescale(image), np.float32) - mean) / std
    return np.ascontiguousarray(x.transpose(2, 0, 1))
