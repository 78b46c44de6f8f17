"""The one call: ``segment(image, method, **params)``, and the method listing."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from . import classical  # noqa: F401  (registers the classical methods)
from .io.volumes import Volume
from .registry import MethodInfo, list_methods
from .resolve import resolve
from .result import Segmentation

__all__ = ["methods", "segment"]


def methods() -> list[MethodInfo]:
    """Every method :func:`segment` knows: name, task, summary and parameters.

    Examples
    --------
    >>> import segscope
    >>> "otsu" in [m.name for m in segscope.methods()]
    True
    """
    return list_methods()


def segment(image: np.ndarray | Volume, method: str | os.PathLike[str], **params: Any) -> Segmentation:
    """Segment ``image`` with a registered method or a trained model, returning a :class:`Segmentation`.

    Parameters
    ----------
    image : ndarray or Volume
        (H, W) grey or (H, W, C) colour image, as read by :func:`segscope.imread`; or a volume
        read by :func:`segscope.io.read_volume`, which goes to methods that take volumes (they
        declare ``spacing``; the others refuse it) and to 3-D models, with its spacing.
    method : str or path-like
        A name from :func:`methods` (``"otsu"``, ``"watershed"`` ...), or a trained checkpoint
        (``.pt``) or exported ONNX model (needs segscope[deep]).
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
    return resolve(method).segment(image, **params)
