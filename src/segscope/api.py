"""The one call: ``segment(image, method, **params)``; ``prompt(image, points=...)`` for
segmentation by pointing; and the method listing."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from . import classical  # noqa: F401  (registers the classical methods)
from .io.volumes import Volume
from .registry import MethodInfo, list_methods
from .resolve import resolve
from .result import Segmentation

__all__ = ["methods", "prompt", "segment"]


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


def prompt(
    image: np.ndarray,
    *,
    points: Any = None,
    boxes: Any = None,
    scribbles: Any = None,
    mask: Any = None,
    method: str = "geodesic",
    click_radius: int = 3,
    connected: bool = True,
    channel_axis: int | None = None,
    **options: Any,
) -> Segmentation:
    """Segment the objects a user points at: clicks, boxes, scribbles, or a previous mask to correct.

    Parameters
    ----------
    image : ndarray
        (H, W) grey or (H, W, C) colour image.
    points : (N, 3) array-like of (row, col, label), optional
        ``label`` k >= 1 is a positive click on object k, 0 a negative click (background);
        (row, col) pairs alone are positive clicks on object 1.
    boxes : (M, 4) or (M, 5) array-like, optional
        (row0, col0, row1, col1[, id]) per object, end exclusive; box m is object m + 1 by default.
    scribbles : (H, W) int array, optional
        Painted pixels: k >= 1 for object k, -1 for background (erasing), 0 for none.
    mask : (H, W) int array or Segmentation, optional
        The previous result: its objects and their extent, which new clicks refine.
    method : str
        A prompted method (:func:`segscope.prompting.list_prompted`): ``geodesic``, ``grabcut``,
        ``random_walker``, ``watershed``, ``region_growing``; or a click model: the zoo's
        ``clicks``, or a checkpoint of the ``click_unet`` family.
    click_radius : int
        Each click marks a disc of this radius, in pixels.
    connected : bool
        Keep each object only where it is connected to its own clicks and scribbles (or to its
        box or previous mask, when it has none): pieces a method finds elsewhere, on a similar
        object nearby, are dropped.
    channel_axis : int or None
        Axis of the colour channels, if not the last of a 3-D image.
    **options
        The method's own options (``gamma`` for geodesic, ``iterations`` for grabcut ...).

    Returns
    -------
    Segmentation
        An instance result: one segment per object, its id the object's (0 background).

    Examples
    --------
    >>> import numpy as np, segscope
    >>> image = np.zeros((40, 40), np.uint8); image[10:30, 8:20] = 200; image[10:30, 24:34] = 120
    >>> seg = segscope.prompt(image, points=[(20, 12, 1), (20, 28, 2)], smoothing=0.0)
    >>> seg.ids.tolist(), int((seg.labels == 1).sum()), int((seg.labels == 2).sum())
    ([1, 2], 240, 200)
    """
    import time

    from .imagecheck import check_image
    from .prompting import check_kinds, encode_prompts
    from .resolve import resolve_prompted
    from .result import Provenance

    image = check_image(image, channel_axis=channel_axis)
    chosen = resolve_prompted(method)
    given = {"points": points, "boxes": boxes, "scribbles": scribbles, "mask": mask}
    check_kinds(chosen, given)
    chosen.check_options(options)
    start = time.perf_counter()
    seeds = encode_prompts(image.shape[:2], points=points, boxes=boxes, scribbles=scribbles, mask=mask,
                           click_radius=click_radius)
    window = seeds.window()
    labels = np.zeros(image.shape[:2], np.int32)
    inside = seeds.cropped(window)
    found_labels = chosen.function(image[window], inside, **options)
    labels[window] = inside.connected(found_labels) if connected else found_labels
    found = [int(v) for v in np.unique(labels) if v > 0]
    details = {"objects": list(seeds.objects), "window": [[window[0].start, window[0].stop],
                                                          [window[1].start, window[1].stop]],
               "clicks": 0 if points is None else len(np.asarray(points))}
    return Segmentation.from_labels(
        labels, kind="instance", categories={k: 0 for k in found}, class_names=("object",),
        provenance=Provenance(f"prompt:{method}", parameters={**chosen.options, **options,
                                                              "click_radius": click_radius,
                                                              "connected": connected},
                              details=details, seconds=time.perf_counter() - start))
