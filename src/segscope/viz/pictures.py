"""Pictures of segmentations: colour label maps, overlays, boundaries and titled panels.

Every function returns an (H, W, 3) uint8 RGB array and, given ``path``, also writes it as PNG.
Showing an image is the one place where intensities are rescaled: non-8-bit images are stretched
to 0..255 between their 0.5th and 99.5th percentiles, for display only.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..io.images import imwrite
from ..result import Segmentation

__all__ = ["boundaries", "colorize", "label_colors", "overlay", "panel", "to_display"]

_GOLDEN = 0.618033988749895


def label_colors(n: int) -> np.ndarray:
    """A stable palette: (n, 3) uint8, entry 0 black, then well-separated bright colours.

    The colour of an index never depends on how many labels an image has.
    """
    import colorsys

    colors = np.zeros((max(n, 1), 3), np.uint8)
    for k in range(1, n):
        hue = (k * _GOLDEN) % 1.0
        sat = 0.65 + 0.35 * ((k * 7) % 3) / 2
        val = 0.95 - 0.25 * ((k * 5) % 4) / 3
        colors[k] = np.round(np.array(colorsys.hsv_to_rgb(hue, sat, val)) * 255)
    return colors[:n]


def to_display(image: np.ndarray) -> np.ndarray:
    """An (H, W, 3) uint8 view of any image, for display only."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim == 3 and image.shape[-1] not in (3, 4):
        image = image[..., :3] if image.shape[-1] > 4 else image.mean(axis=-1)
    if image.ndim == 3 and image.shape[-1] == 4:
        image = image[..., :3]
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    elif image.dtype != np.uint8:
        data = image.astype(np.float64)
        finite = data[np.isfinite(data)]
        lo, hi = (np.percentile(finite, [0.5, 99.5]) if finite.size else (0.0, 1.0))
        if hi <= lo:
            hi = lo + 1.0
        image = np.clip((np.nan_to_num(data, nan=lo) - lo) / (hi - lo) * 255, 0, 255)
        image = np.rint(image).astype(np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    return np.ascontiguousarray(image)


def _labels(seg: Segmentation | np.ndarray) -> np.ndarray:
    """The label image to colour. A semantic result's ids are category + 1, so each class keeps
    one colour across images; other results are coloured by segment id."""
    if isinstance(seg, Segmentation):
        return seg.labels
    labels = np.asarray(seg)
    if labels.ndim != 2 or labels.dtype == bool or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"expected a Segmentation or a 2-D integer label image, got "
                         f"{labels.shape} {labels.dtype}")
    if labels.size and labels.min() < 0:
        raise ValueError("label images must be non-negative")
    return labels


def colorize(
    seg: Segmentation | np.ndarray, *, legend: bool = False, path: str | os.PathLike[str] | None
    = None
) -> np.ndarray:
    """Colour each segment (semantic: each class) with the stable palette; 0 stays black.

    With ``legend`` and class names, a legend of the classes present is drawn on the right.

    Examples
    --------
    >>> colorize(np.array([[0, 1], [2, 2]])).shape
    (2, 2, 3)
    """
    labels = _labels(seg)
    palette = label_colors(int(labels.max(initial=0)) + 1)
    out = palette[labels]
    names = seg.class_names if isinstance(seg, Segmentation) else None
    if legend and isinstance(seg, Segmentation) and names and seg.kind == "semantic":
        entries = [(names[c], palette[c + 1]) for c in np.unique(seg.categories)]
        out = _append_legend(out, entries)
    if path is not None:
        imwrite(path, out)
    return out


def overlay(
    image: np.ndarray,
    seg: Segmentation | np.ndarray,
    *,
    alpha: float = 0.45,
    outline: bool = True,
    path: str | os.PathLike[str] | None = None,
) -> np.ndarray:
    """Blend the coloured segments over the image; background (0) is left untouched.

    Examples
    --------
    >>> overlay(np.zeros((4, 4), np.uint8), np.ones((4, 4), int)).dtype
    dtype('uint8')
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    base = to_display(image)
    labels = _labels(seg)
    if base.shape[:2] != labels.shape:
        raise ValueError(f"image shape {base.shape[:2]} differs from labels shape {labels.shape}")
    colours = colorize(seg).astype(np.float32)
    out = base.astype(np.float32)
    fg = labels > 0
    out[fg] = (1 - alpha) * out[fg] + alpha * colours[fg]
    out = np.rint(out).astype(np.uint8)
    if outline:
        from skimage.segmentation import find_boundaries

        edge = find_boundaries(labels, mode="inner")
        out[edge] = colours[edge].astype(np.uint8)
    if path is not None:
        imwrite(path, out)
    return out


def boundaries(
    image: np.ndarray,
    seg: Segmentation | np.ndarray,
    *,
    color: tuple[int, int, int] = (255, 255, 0),
    mode: str = "inner",
    path: str | os.PathLike[str] | None = None,
) -> np.ndarray:
    """Draw the segment boundaries on the image in one colour.

    ``mode`` is scikit-image's ``find_boundaries`` mode: "inner", "outer", "thick" or "subpixel"
    is refused (it changes the size).
    """
    from skimage.segmentation import find_boundaries

    if mode not in ("inner", "outer", "thick"):
        raise ValueError(f"mode must be 'inner', 'outer' or 'thick', got {mode!r}")
    base = to_display(image).copy()
    labels = _labels(seg)
    if base.shape[:2] != labels.shape:
        raise ValueError(f"image shape {base.shape[:2]} differs from labels shape {labels.shape}")
    base[find_boundaries(labels, mode=mode)] = np.asarray(color, np.uint8)
    if path is not None:
        imwrite(path, base)
    return base


def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType
        return ImageFont.load_default()


def _append_legend(image: np.ndarray, entries: Sequence[tuple[str, np.ndarray]]) -> np.ndarray:
    from PIL import Image, ImageDraw

    row, size = 18, 13
    font = _font(size)
    width = 24 + max((int(ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(n, font=font))
                      for n, _ in entries), default=0) + 8
    height = max(image.shape[0], row * len(entries) + 8)
    canvas = Image.new("RGB", (image.shape[1] + width, height), (255, 255, 255))
    canvas.paste(Image.fromarray(image), (0, 0))
    draw = ImageDraw.Draw(canvas)
    x0 = image.shape[1] + 6
    for k, (name, colour) in enumerate(entries):
        y = 4 + k * row
        draw.rectangle([x0, y + 2, x0 + 12, y + 14], fill=tuple(int(c) for c in colour),
                       outline=(0, 0, 0))
        draw.text((x0 + 18, y + 1), name, fill=(0, 0, 0), font=font)
    return np.asarray(canvas)


def panel(
    images: Sequence[np.ndarray],
    *,
    titles: Sequence[str] | None = None,
    columns: int | None = None,
    gap: int = 6,
    path: str | os.PathLike[str] | None = None,
) -> np.ndarray:
    """Images side by side (wrapping after ``columns``), each with its title above it.

    Examples
    --------
    >>> panel([np.zeros((5, 5), np.uint8)] * 2, titles=["a", "b"]).shape[1] > 10
    True
    """
    from PIL import Image, ImageDraw

    if not images:
        raise ValueError("panel needs at least one image")
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"{len(titles)} titles for {len(images)} images")
    tiles = [to_display(im) for im in images]
    columns = columns or len(tiles)
    if columns < 1:
        raise ValueError(f"columns must be positive, got {columns}")
    title_h = 20 if titles else 0
    cell_h = max(t.shape[0] for t in tiles) + title_h
    cell_w = max(t.shape[1] for t in tiles)
    rows = -(-len(tiles) // columns)
    canvas = Image.new("RGB", (columns * cell_w + (columns - 1) * gap,
                               rows * cell_h + (rows - 1) * gap), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    font = _font(14)
    for k, tile in enumerate(tiles):
        x = (k % columns) * (cell_w + gap)
        y = (k // columns) * (cell_h + gap)
        canvas.paste(Image.fromarray(tile), (x, y + title_h))
        if titles:
            draw.text((x + 2, y + 2), titles[k], fill=(0, 0, 0), font=font)
    out = np.asarray(canvas)
    if path is not None:
        imwrite(path, out)
    return out
