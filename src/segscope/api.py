"""The one call: ``segment(image, method, **params)``, and the method listing."""

from __future__ import annotations

import inspect
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from . import classical  # noqa: F401  (registers the classical methods)
from .registry import MethodInfo, bind_parameters, get_method, list_methods
from .result import Provenance, Segmentation

__all__ = ["methods", "segment"]


MODEL_SUFFIXES = (".pt", ".pth", ".onnx")
"""File endings that make ``method`` a trained model rather than a registered method's name."""


def is_model_file(method: str | os.PathLike[str]) -> bool:
    """Whether ``method`` names a trained model file (a path, or a name ending in a model suffix)."""
    return isinstance(method, os.PathLike) or str(method).endswith(MODEL_SUFFIXES)


def _version() -> str:
    from . import __version__

    return __version__


def methods() -> list[MethodInfo]:
    """Every method :func:`segment` knows: name, task, summary and parameters.

    Examples
    --------
    >>> import segscope
    >>> "otsu" in [m.name for m in segscope.methods()]
    True
    """
    return list_methods()


def segment(image: np.ndarray, method: str | os.PathLike[str], **params: Any) -> Segmentation:
    """Segment ``image`` with a registered method, returning a :class:`Segmentation`.

    Parameters
    ----------
    image : ndarray
        (H, W) grey or (H, W, C) colour image, as read by :func:`segscope.imread`.
    method : str
        A name from :func:`methods` (``"otsu"``, ``"watershed"`` ...).
    **params
        The method's keyword options; an unknown one raises TypeError listing the valid ones.

    Returns
    -------
    Segmentation
        With provenance: the method, every parameter (defaults included), what the method chose,
        the seconds taken and the segscope version.

    Examples
    --------
    >>> import numpy as np, segscope
    >>> seg = segscope.segment(np.array([[0, 9], [9, 9]], np.uint8), "otsu")
    >>> seg.provenance.parameters["nbins"]
    256
    """
    if is_model_file(method):
        return _segment_with_model(image, Path(method), params)
    info = get_method(str(method))
    bound = bind_parameters(info, params)
    start = time.perf_counter()
    result = info.function(image, **bound)
    seconds = time.perf_counter() - start
    details = result.provenance.details if result.provenance is not None else {}
    return result.with_provenance(
        Provenance(info.name, parameters=_describe(bound), details=details, seconds=seconds,
                   version=_version())
    )


def _segment_with_model(image: np.ndarray, path: Path, params: dict[str, Any]) -> Segmentation:
    """A trained checkpoint or exported ONNX model used like any method (needs segscope[deep])."""
    try:
        from .infer import predictor_for
    except ImportError as exc:
        raise ImportError(f"{path}: running a model needs segscope[deep] (torch, torchvision): {exc}") \
            from exc
    predictor = predictor_for(path)
    allowed = {name for name in inspect.signature(predictor.segment).parameters if name != "image"}
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise TypeError(f"{path}: unknown option(s) {unknown}; this model takes {sorted(allowed)}")
    result = predictor.segment(image, **params)
    made = result.provenance
    return result.with_provenance(
        Provenance(str(path), parameters=made.parameters if made is not None else params,
                   details=made.details if made is not None else {},
                   seconds=made.seconds if made is not None else None, version=_version())
    )


def _describe(params: dict[str, Any]) -> dict[str, Any]:
    # Arrays (marker images, masks) are recorded by shape, not copied into the provenance.
    return {
        k: (f"<array {v.shape} {v.dtype}>" if isinstance(v, np.ndarray) else v)
        for k, v in params.items()
    }
