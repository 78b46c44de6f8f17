"""The predictor of edge networks (``rcf``): soft boundary maps, their hierarchy, regions.

A boundary map is the fused output's probability averaged over several scales of the image
(each resized back) and, with ``flip``, over the image and its left-right mirror, then thinned
to its crests (:func:`segscope.edgemaps.thin_boundaries`) for boundary benchmarks and pictures.
The hierarchy of regions is built on the unthinned map, whose watershed lines follow the crests,
and cut at a level for a segmentation.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..edgemaps import thin_boundaries
from ..hierarchy import Hierarchy, boundary_orientation, region_hierarchy
from ..merging import MERGE_FEATURES, MergeModel, merged_hierarchy
from ..result import Provenance, Segmentation
from .predictor import WholeImagePredictor, normalise_image, predicts

__all__ = ["BoundaryPredictor"]


@predicts("boundaries")
class BoundaryPredictor(WholeImagePredictor):
    """A trained edge network: ``boundaries(image)`` gives a soft boundary map in [0, 1],
    ``hierarchy(image)`` its hierarchy of regions, ``segment(image)`` the regions at a level."""

    task = "regions"
    expects = "an edge network"
    decoded_by = ("flip", "default_level", *(f"merge_{name}" for name in MERGE_FEATURES))
    scales: tuple[float, ...] = (0.5, 1.0, 1.5)
    """Image scales whose boundary maps are averaged (HED's and RCF's multi-scale testing). On 50
    BSDS500 train images (every fourth, 25 thresholds) the zoo's ``edges`` v0.2.0 map reached
    boundary ODS 0.7767 with these and 0.7703 with a fourth scale, 2."""
    flip = False
    """Whether each scale's map is averaged with that of the left-right mirror image (twice the
    network's time); a checkpoint's decoding may turn it on. Off for the zoo's ``edges``: on 50
    BSDS500 train images (every fourth, 25 thresholds) its v0.2.0 map's boundary ODS was 0.7767
    without and 0.7769 with it (OIS 0.799 and 0.801)."""
    default_level = 0.73
    """The hierarchy's cut when no ``level`` is given; a checkpoint's decoding may set its own.
    This default is where the zoo's ``edges`` network (v0.2.0) reached its best dataset-wide
    covering (ODS, 0.642) on 50 BSDS500 train images (every fourth), chosen by ``python
    benchmarks/bsds.py --split train --every 4 --regions-only --methods "ucm (learned)"``
    (v0.1.0's was 0.72); the same command chose 0.71 for the weights of v0.4.0, which the card's
    decoding set in v0.4.1, and 0.69 for their learned merge order (:attr:`merging`), which the
    card's decoding sets since v0.5.0."""
    oriented = False
    """Whether :meth:`hierarchy` orients its watershed by default: no, because on 25 BSDS500 train
    images (every eighth) the zoo's ``edges`` map's hierarchy reached covering 0.628, PRI 0.809
    and VOI 1.483 plain, 0.601, 0.813 and 1.634 oriented (``python benchmarks/bsds.py --split
    train --every 8 --regions-only``, rows ``ucm (learned; min_size=0)`` and ``ucm (learned;
    min_size=0; oriented=true)``)."""
    min_size = 300
    """:meth:`hierarchy`'s smallest region in pixels by default: on 50 BSDS500 train images (every
    fourth) the ``edges`` hierarchy's covering, PRI and VOI at ODS are 0.622, 0.823 and 1.547 with
    every region, 0.624, 0.823 and 1.507 with none under 300 pixels, 0.623, 0.822 and 1.498 under
    600 (``python benchmarks/bsds.py --split train --every 4 --regions-only``, rows ``ucm
    (learned; min_size=0)``, ``ucm (learned; min_size=300)``, ...)."""
    merging: MergeModel | None = None
    """The learned merge order of :meth:`hierarchy` (:func:`segscope.merging.merged_hierarchy`),
    from a checkpoint's decoding (its ``merge_*`` weights, fitted on annotated images after
    training); None: regions merge by their common boundary's mean strength."""

    def boundaries(self, image: np.ndarray, *, scales: Sequence[float] | None = None, thin: bool = True,
                   flip: bool | None = None, channel_axis: int | None = None) -> np.ndarray:
        """The (H, W) boundary probability of ``image``, averaged over ``scales`` (default
        :attr:`scales`) and with ``flip`` over its left-right mirror (default :attr:`flip`) and,
        with ``thin``, suppressed to its crests."""
        import torch

        x = torch.from_numpy(normalise_image(image, self.inputs, channel_axis=channel_axis))[None]
        return self.boundaries_normalised(x.to(self.device), scales=scales, thin=thin, flip=flip)

    def boundaries_normalised(self, x: Any, *, scales: Sequence[float] | None = None,
                              thin: bool = True, flip: bool | None = None) -> np.ndarray:
        """:meth:`boundaries` of an image already normalised: a (1, C, H, W) tensor on the device.
        Training validates through here."""
        import torch
        import torch.nn.functional as F

        mirrored = self.flip if flip is None else bool(flip)
        scales = tuple(self.scales if scales is None else scales)
        if not scales or min(scales) <= 0:
            raise ValueError(f"scales are positive factors, got {scales}")
        size = tuple(x.shape[-2:])
        total = None
        with torch.inference_mode():
            for scale in scales:
                resized = x if scale == 1 else F.interpolate(
                    x, scale_factor=scale, mode="bilinear", align_corners=False, antialias=scale < 1)
                probability = self.model(resized).fused.sigmoid()
                if mirrored:
                    probability = 0.5 * (probability + self.model(resized.flip(3)).fused.sigmoid().flip(3))
                if probability.shape[-2:] != size:
                    probability = F.interpolate(probability, size=size, mode="bilinear", align_corners=False)
                total = probability if total is None else total + probability
        soft = (total[0, 0] / len(scales)).double().cpu().numpy()  # type: ignore[index]
        return thin_boundaries(soft) if thin else soft

    def apply_decoding(self, decoding: Mapping[str, float]) -> None:
        """A checkpoint's decoding: ``merge_*`` weights make :attr:`merging`, the rest set the
        attributes of their names."""
        weights = {key: value for key, value in decoding.items() if key.startswith("merge_")}
        super().apply_decoding({key: value for key, value in decoding.items() if key not in weights})
        if weights:
            self.merging = MergeModel.from_decoding(weights)

    def hierarchy(self, image: np.ndarray, *, scales: Sequence[float] | None = None,
                  oriented: bool | None = None, min_size: int | None = None, flip: bool | None = None,
                  merging: bool | None = None, channel_axis: int | None = None) -> Hierarchy:
        """The hierarchy of regions of the image's (unthinned) boundary map (:meth:`map_hierarchy`)."""
        soft = self.boundaries(image, scales=scales, thin=False, flip=flip, channel_axis=channel_axis)
        colour = image if channel_axis is None else np.moveaxis(image, channel_axis, -1)
        return self.map_hierarchy(soft, image=colour, oriented=oriented, min_size=min_size, merging=merging)

    def map_hierarchy(self, soft: np.ndarray, *, image: np.ndarray | None = None,
                      oriented: bool | None = None, min_size: int | None = None,
                      merging: bool | None = None) -> Hierarchy:
        """The hierarchy of regions of a boundary map this network made; ``oriented``: its
        watershed arcs weighted by how they follow the map's orientation, ``min_size``: no region
        smaller (:func:`segscope.hierarchy.region_hierarchy`); ``merging``: the regions merged in
        the learned order of :attr:`merging`, which needs the ``image`` (channels last) for its
        colours; None for :attr:`oriented`, :attr:`min_size` and whether :attr:`merging` is set."""
        orient = self.oriented if oriented is None else oriented
        size = self.min_size if min_size is None else min_size
        if self.merging is not None if merging is None else merging:
            if self.merging is None:
                raise ValueError(f"{self.name}: no learned merging (its decoding has no merge_* weights)")
            if image is None:
                raise ValueError("learned merging weighs the regions' colours: give the image")
            if orient:
                raise ValueError("learned merging starts from the plain watershed: oriented must be off")
            return merged_hierarchy(soft, image, self.merging, min_size=size)
        orientation = boundary_orientation(soft) if orient else None
        return region_hierarchy(soft, orientation=orientation, min_size=size)

    def segment(self, image: np.ndarray, *, level: float | None = None, scales: Sequence[float] | None = None,
                flip: bool | None = None, merging: bool | None = None,
                channel_axis: int | None = None) -> Segmentation:
        """Regions of ``image``: its hierarchy cut at ``level`` (default :attr:`default_level`);
        lower keeps more regions. ``flip``: the map averaged with its mirror image's (default
        :attr:`flip`); ``merging``: the learned merge order (default: when :attr:`merging` is set)."""
        start = time.perf_counter()
        level = self.default_level if level is None else float(level)
        if not level >= 0:
            raise ValueError(f"level must be at least 0, got {level}")
        mirrored = self.flip if flip is None else bool(flip)
        merged = self.merging is not None if merging is None else bool(merging)
        hierarchy = self.hierarchy(image, scales=scales, flip=mirrored, merging=merged,
                                   channel_axis=channel_axis)
        labels = hierarchy.cut(level=level)
        provenance = Provenance(self.name, parameters={"level": level, "scales": list(scales or self.scales),
                                                       "flip": mirrored, "merging": merged},
                                details={"model": self.architecture, "finest": hierarchy.finest},
                                seconds=time.perf_counter() - start)
        return Segmentation.from_labels(labels, kind="regions").with_provenance(provenance)
