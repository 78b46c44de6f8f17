"""Histograms of images, per channel, and a plot that marks chosen thresholds."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..imagecheck import check_image

__all__ = ["Histogram", "histogram", "plot_histogram"]


@dataclass(frozen=True)
class Histogram:
    """Counts per bin (C, nbins) and the bin edges (nbins + 1,), shared by all channels."""

    counts: np.ndarray
    edges: np.ndarray

    @property
    def centers(self) -> np.ndarray:
        return (self.edges[:-1] + self.edges[1:]) / 2


def histogram(
    image: np.ndarray, *, bins: int | None = None, channel_axis: int | None = None
) -> Histogram:
    """Histogram of each channel over one shared value range.

    Parameters
    ----------
    image : ndarray
        Grey or multi-channel image.
    bins : int or None
        Number of bins. None: one bin per integer value for integer images (uint8 gives 256),
        256 bins between the minimum and maximum for float images.
    channel_axis : int or None
        Axis of the channels, if not the last of a 3-D image.

    Examples
    --------
    >>> h = histogram(np.array([[0, 1], [1, 255]], np.uint8))
    >>> h.counts.shape, int(h.counts[0, 1])
    ((1, 256), 2)
    """
    image = check_image(image, channel_axis=channel_axis)
    if image.dtype == bool:
        image = image.astype(np.uint8)
    data = image.reshape(-1, 1 if image.ndim == 2 else image.shape[-1])
    if bins is not None and bins < 1:
        raise ValueError(f"bins must be positive, got {bins}")
    if image.dtype.kind in "iu" and bins is None:
        lo = 0 if image.dtype == np.uint8 else int(data.min())
        hi = 255 if image.dtype == np.uint8 else int(data.max())
        edges = np.arange(lo, hi + 2, dtype=np.float64) - 0.5
        counts = np.stack([np.bincount(data[:, c].astype(np.int64) - lo, minlength=hi - lo + 1)
                           for c in range(data.shape[1])])
        return Histogram(counts, edges)
    nbins = 256 if bins is None else bins
    lo_f, hi_f = float(data.min()), float(data.max())
    if hi_f == lo_f:
        hi_f = lo_f + 1.0
    edges = np.linspace(lo_f, hi_f, nbins + 1)
    counts = np.stack([np.histogram(data[:, c], bins=edges)[0] for c in range(data.shape[1])])
    return Histogram(counts, edges)


def plot_histogram(
    image: np.ndarray,
    *,
    thresholds: Sequence[float] = (),
    bins: int | None = None,
    channel_axis: int | None = None,
    title: str = "",
    path: str | os.PathLike[str] | None = None,
) -> np.ndarray:
    """A histogram plot (RGB array, PNG if ``path``) with the given thresholds marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..io.images import imwrite

    hist = histogram(image, bins=bins, channel_axis=channel_axis)
    fig, ax = plt.subplots(figsize=(5, 2.6), dpi=100)
    colours = ["#333333"] if hist.counts.shape[0] == 1 else ["#d62728", "#2ca02c", "#1f77b4",
                                                             "#9467bd", "#8c564b"]
    for c, counts in enumerate(hist.counts):
        ax.fill_between(hist.centers, counts, step="mid", alpha=0.5,
                        color=colours[c % len(colours)], linewidth=0)
    for t in thresholds:
        ax.axvline(float(t), color="#ff7f0e", linewidth=2)
        ax.annotate(f"{float(t):.4g}", (float(t), ax.get_ylim()[1] * 0.9), color="#ff7f0e",
                    xytext=(3, 0), textcoords="offset points", fontsize=9)
    ax.set_xlabel("value")
    ax.set_ylabel("pixels")
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.canvas.draw()
    rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()  # type: ignore[attr-defined]
    plt.close(fig)
    if path is not None:
        imwrite(path, rgb)
    return rgb
