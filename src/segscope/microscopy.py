"""What kind of microscopy picture an image is, from its pixels alone.

Nuclei datasets such as the 2018 Data Science Bowl mix three kinds of image, and methods behave
very differently on each: fluorescence (bright nuclei on a dark background, one stain, stored grey
or in one colour), stained histology (transmitted light through a coloured stain: the channels
differ) and bright-field (transmitted light, grey, dark objects on a bright background). Reports
split their scores by kind; :func:`imaging_modality` tells them apart so that no hand-made list
of file names is needed.
"""

from __future__ import annotations

import numpy as np

from .imagecheck import check_image

__all__ = ["MODALITIES", "imaging_modality"]

MODALITIES: tuple[str, ...] = ("fluorescence", "histology", "brightfield")

COLOUR_THRESHOLD = 5.0
"""Mean absolute difference between colour channels (in 0..255 units) above which an image is
stained (histology). Grey images stored as RGB have 0; stained tissue in DSB2018 starts near 8."""

BACKGROUND_THRESHOLD = 0.5
"""Median brightness, relative to the image's 99.5th percentile, above which a grey image is
transmitted light (bright-field). Fluorescence backgrounds in DSB2018 stay below 0.45, bright-field
ones lie above 0.85."""


def imaging_modality(image: np.ndarray) -> str:
    """``"fluorescence"``, ``"histology"`` or ``"brightfield"``: what kind of picture ``image`` is.

    An image whose colour channels differ (on average by more than :data:`COLOUR_THRESHOLD` in
    0..255 units) is stained histology; a grey one is bright-field when its median is bright
    (above :data:`BACKGROUND_THRESHOLD` of its 99.5th percentile: mostly background, lit from
    behind) and fluorescence otherwise.

    Parameters
    ----------
    image : ndarray
        (H, W) grey or (H, W, C) colour image, integer or float; an alpha channel is ignored.

    Returns
    -------
    str
        One of :data:`MODALITIES`.

    Examples
    --------
    >>> dark = np.zeros((32, 32), np.uint8); dark[8:16, 8:16] = 200
    >>> imaging_modality(dark), imaging_modality(255 - dark)
    ('fluorescence', 'brightfield')
    """
    data = check_image(image)  # 2-D or channels-last, finite
    values = data.astype(np.float64)
    if data.dtype.kind in "iu" and data.dtype.itemsize > 1:
        values *= 255.0 / np.iinfo(data.dtype).max
    elif data.dtype.kind == "f" and values.max() <= 1.0:
        values *= 255.0
    if values.ndim == 3 and values.shape[2] >= 3:
        rgb = values[..., :3]
        colour = (np.abs(rgb[..., 0] - rgb[..., 1]) + np.abs(rgb[..., 1] - rgb[..., 2])
                  + np.abs(rgb[..., 0] - rgb[..., 2])).mean() / 3
        if colour > COLOUR_THRESHOLD:
            return "histology"
        grey = rgb.mean(axis=2)
    else:
        grey = values if values.ndim == 2 else values[..., 0]
    top = float(np.percentile(grey, 99.5))
    background = float(np.median(grey)) / top if top > 0 else 0.0
    return "brightfield" if background > BACKGROUND_THRESHOLD else "fluorescence"
