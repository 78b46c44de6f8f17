"""The random walker: each pixel takes the class whose seeds a random walk from it reaches first."""

from __future__ import annotations

import numpy as np

from ..imagecheck import check_image_or_volume
from ..registry import register_method
from ..result import Provenance, Segmentation
from ._common import check_parameter

__all__ = ["random_walker"]


def _automatic_seeds(gray: np.ndarray, share: float) -> np.ndarray:
    """Two classes seeded at the darkest and the brightest ``share`` of the pixels (at the smallest
    and largest value when one value fills more than that share: a mask)."""
    low, high = np.percentile(gray, [100 * share, 100 * (1 - share)])
    if low >= high:
        low, high = float(gray.min()), float(gray.max())
    if low >= high:
        raise ValueError("random_walker: the image is flat (one value everywhere); give markers")
    seeds = np.zeros(gray.shape, np.int32)
    seeds[gray <= low] = 1
    seeds[gray >= high] = 2
    return seeds


@register_method("random_walker", task="semantic")
def random_walker(
    image: np.ndarray,
    *,
    markers: np.ndarray | None = None,
    beta: float = 130.0,
    seed_share: float = 0.1,
    tol: float = 1e-3,
    channel_axis: int | None = None,
    spacing: tuple[float, float, float] | None = None,
) -> Segmentation:
    """Random walker segmentation: each pixel joins the class whose seeds a random walk from it is
    most likely to reach first.

    The image is a graph whose edges weigh ``exp(-beta * gradient**2)`` (scikit-image scales beta
    by the image's spread), so walks rarely cross strong edges; the probabilities solve a sparse
    Laplace equation with the seeds fixed (conjugate gradient, Jacobi-preconditioned). Images and
    volumes alike; a colour image's bands are all used.

    Parameters
    ----------
    image : ndarray
        Grey, colour or multi-band image, or (with ``spacing``) a volume. Values are used as they
        are (no rescaling).
    markers : ndarray or None
        Seeds, the image's shape: 0 unlabelled, k >= 1 a seed of class k - 1, -1 left out (labelled
        0 in the result, with no probability). None seeds two classes, ``background`` at the
        darkest and ``foreground`` at the brightest ``seed_share`` of the pixels.
    beta : float
        Edge penalty: larger keeps the walks inside smoother regions.
    seed_share : float
        Automatic seeds: the share of pixels at each end of the grey range seeded (0 to 0.5).
    tol : float
        Tolerance of the conjugate-gradient solver.
    channel_axis : int or None
        Axis of the colour channels, if not the last of a 3-D image.
    spacing : tuple of float or None
        Voxel size (z, y, x): given, ``image`` is a (Z, Y, X) or (Z, Y, X, C) volume, and the
        walk's steps are weighed by it.

    Returns
    -------
    Segmentation
        A semantic result with one class per seed label and the class probabilities.

    References
    ----------
    .. [1] L. Grady, "Random walks for image segmentation", IEEE TPAMI 28(11), 1768-1783, 2006.

    Examples
    --------
    >>> image = np.zeros((10, 20)); image[:, 10:] = 1.0
    >>> seeds = np.zeros((10, 20), int); seeds[5, 2] = 1; seeds[5, 17] = 2
    >>> random_walker(image, markers=seeds).class_map()[0, 8:12].tolist()
    [0, 0, 1, 1]
    """
    from skimage.segmentation import random_walker as skimage_random_walker

    image, spacing = check_image_or_volume(image, channel_axis=channel_axis, spacing=spacing)
    spatial = 2 if spacing is None else 3
    check_parameter("random_walker", "beta", beta, low=0, strict=True)
    check_parameter("random_walker", "seed_share", seed_share, low=0, strict=True, high=0.5)
    check_parameter("random_walker", "tol", tol, low=0, strict=True)
    data = image.astype(np.float64)
    grey = data if data.ndim == spatial else data.mean(axis=-1)
    if markers is None:
        seeds = _automatic_seeds(grey, seed_share)
        names: tuple[str, ...] = ("background", "foreground")
    else:
        seeds = np.asarray(markers)
        if seeds.shape != grey.shape:
            raise ValueError(
                f"random_walker: markers {seeds.shape} differ from the image's shape {grey.shape}"
            )
        if not np.issubdtype(seeds.dtype, np.integer):
            raise TypeError(f"random_walker: markers must hold integers, got {seeds.dtype}")
        if seeds.max(initial=0) < 1:
            raise ValueError("random_walker: markers hold no seed (values >= 1)")
        seeds = seeds.astype(np.int32)
        names = tuple(f"class_{k}" for k in range(int(seeds.max())))
    present = np.unique(seeds[seeds > 0])
    if (seeds != 0).all():  # nothing left to walk: the seeds are the answer
        probs = (seeds[None] == present.reshape(-1, *(1,) * seeds.ndim)).astype(np.float32)
    else:
        probs = np.asarray(
            skimage_random_walker(
                data,
                seeds,
                beta=beta,
                mode="cg_j",
                tol=tol,
                return_full_prob=True,
                spacing=None if spacing is None else np.asarray(spacing),
                channel_axis=None if data.ndim == spatial else -1,
            ),
            np.float32,
        )
    # scikit-image gives one map per label present; classes never seeded get none.
    full = np.zeros((len(names), *grey.shape), np.float32)
    full[present - 1] = probs
    class_map = full.argmax(0).astype(np.int32)
    excluded = seeds < 0
    void = None
    if excluded.any():  # left out: void in the result, with no probability
        void = len(names)
        class_map[excluded] = void
        full[:, excluded] = 0.0
    provenance = Provenance("random_walker", details={"seeded_classes": int(present.size)})
    return Segmentation.from_class_map(
        class_map,
        num_classes=len(names),
        class_names=names,
        void=void,
        probabilities=full,
        provenance=provenance,
        spacing=spacing,
    )
