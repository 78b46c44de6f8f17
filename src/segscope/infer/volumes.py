"""Run a trained 3-D network (``unet3d``) on volumes: sliding windows in 3-D with Gaussian
blending, and test-time mirroring (``flip``), as nnU-Net predicts.

A volume is an (Z, Y, X) array, a (Z, Y, X, C) one, or a :class:`segscope.io.volumes.Volume`
(whose spacing the result keeps). It is normalised as the training volumes were (their
:class:`~segscope.checkpoint.InputSpec`: per-volume percentiles, then the training mean and
standard deviation), cut into windows of the training patch that overlap by ``overlap``,
and each window's class probabilities are weighted by a Gaussian that trusts its centre; with
``flip``, the volume mirrored along every combination of its axes is predicted too and
averaged back.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..checkpoint import Checkpoint, InputSpec
from ..result import Provenance, Segmentation
from .predictor import WholeImagePredictor, build_network, predicts, to_training_units
from .segmenter import sliding_window

__all__ = ["VolumeSegmenter", "normalise_volume"]


def normalise_volume(
    volume: np.ndarray, inputs: InputSpec, *, channel_axis: int | None = None, name: str = "volume"
) -> np.ndarray:
    """A (C, Z, Y, X) float32 array of a (Z, Y, X) or (Z, Y, X, C) volume, normalised as the
    model's training volumes were (``inputs``)."""
    data = np.asarray(volume)
    if channel_axis is not None:
        if data.ndim != 4:
            raise ValueError(
                f"{name}: channel_axis={channel_axis} needs a 4-D volume, got shape {data.shape}"
            )
        data = np.moveaxis(data, channel_axis, -1)
    if data.ndim == 3:
        data = data[..., None]
    if data.ndim != 4:
        raise ValueError(f"{name}: expected (Z, Y, X) or (Z, Y, X, C) voxels, got shape {data.shape}")
    if data.size == 0:
        raise ValueError(f"{name}: the volume is empty (shape {data.shape})")
    if data.dtype.kind not in "biuf":
        raise TypeError(f"{name}: unsupported dtype {data.dtype}")
    if data.dtype.kind == "f" and not np.isfinite(data).all():
        raise ValueError(f"{name}: the volume holds NaN or infinite values; fill or mask them first")
    if data.shape[-1] != inputs.channels:
        raise ValueError(
            f"{name}: the model takes {inputs.channels} channel(s); the volume has {data.shape[-1]}"
        )
    if inputs.percentiles is None:
        data = to_training_units(data, inputs.dtype)
    mean = np.asarray(inputs.mean, np.float32)
    std = np.asarray(inputs.std, np.float32)
    x = (np.asarray(inputs.rescale(data), np.float32) - mean) / std
    return np.ascontiguousarray(np.moveaxis(x, -1, 0))


@predicts("volumes")
class VolumeSegmenter(WholeImagePredictor):
    """A trained 3-D network as a method: ``VolumeSegmenter.from_checkpoint(path).segment(volume)``.

    Parameters
    ----------
    model : torch.nn.Module
        A network taking (N, C_in, D, H, W) volumes (``unet3d``).
    class_names : sequence of str
    inputs : InputSpec
        The training volumes' normalisation; ``inputs.crop`` is the training patch side, and the
        sliding window's.
    device : torch.device
    name : str
        Recorded as the method in each result's provenance (the model file).
    architecture : str or None
        The network's registered name.
    batch_size : int
        Windows per forward pass.
    """

    task = "semantic"
    expects = "a 3-D network (unet3d)"
    takes_volumes = True
    """It segments volumes (a ``Volume``'s spacing is kept); predictors of images do not say so."""

    def __init__(
        self,
        model: Any,
        *,
        class_names: Sequence[str],
        inputs: InputSpec,
        device: Any,
        name: str,
        architecture: str | None = None,
        batch_size: int = 4,
    ) -> None:
        super().__init__(
            model, class_names=class_names, inputs=inputs, device=device, name=name, architecture=architecture
        )
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.batch_size = batch_size

    @classmethod
    def from_checkpoint_data(
        cls,
        checkpoint: Checkpoint,
        *,
        device: str | None = None,
        tile: int | str | None = None,
        name: str = "checkpoint",
    ) -> VolumeSegmenter:
        """A predictor from a checkpoint already read; windows are the training patch (``tile``
        is unused: the tiled engine's 2-D tiles do not apply to volumes)."""
        model, dev = build_network(checkpoint, device=device)
        return cls(
            model,
            class_names=checkpoint.class_names,
            inputs=checkpoint.inputs,
            device=dev,
            name=name,
            architecture=checkpoint.model,
        )

    def _logits(self, batch: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device)
            return self.model(x).float().cpu().numpy()

    def probabilities(
        self, volume: Any, *, overlap: float = 0.5, flip: bool = True, channel_axis: int | None = None
    ) -> np.ndarray:
        """Class probabilities (C, Z, Y, X) of a volume (an array or a ``Volume``)."""
        data = getattr(volume, "data", volume)
        x = normalise_volume(data, self.inputs, channel_axis=channel_axis)
        return self.probabilities_of_normalised(x, overlap=overlap, flip=flip)

    def probabilities_of_normalised(
        self, x: np.ndarray, *, overlap: float = 0.5, flip: bool = True
    ) -> np.ndarray:
        """Class probabilities (C, Z, Y, X) of a volume already normalised (:func:`normalise_volume`)."""
        n = len(self.class_names)
        flips = [axes for k in range(4) for axes in itertools.combinations((1, 2, 3), k)] if flip else [()]
        total = np.zeros((n, *x.shape[1:]), np.float32)
        for axes in flips:
            flipped = np.flip(x, axes) if axes else x
            probs = sliding_window(
                np.ascontiguousarray(flipped),
                self._logits,
                num_classes=n,
                tile=self.inputs.crop,
                overlap=overlap,
                batch_size=self.batch_size,
            )
            total += np.flip(probs, axes) if axes else probs
        return total / len(flips)

    def segment(
        self, volume: Any, *, overlap: float = 0.5, flip: bool = True, channel_axis: int | None = None
    ) -> Segmentation:
        """A semantic 3-D :class:`Segmentation` with the class probabilities and the volume's
        spacing (a ``Volume``'s; none for a plain array).

        Parameters
        ----------
        volume : ndarray or Volume
            (Z, Y, X) or (Z, Y, X, C) voxels.
        overlap : float
            Overlap of neighbouring windows, as a fraction of the window (nnU-Net's 0.5).
        flip : bool
            Average the predictions of the volume mirrored along every combination of its three
            axes (8 passes).
        channel_axis : int, optional
            Where the channels are, when not last.
        """
        start = time.perf_counter()
        probs = self.probabilities(volume, overlap=overlap, flip=flip, channel_axis=channel_axis)
        class_map = probs.argmax(0).astype(np.uint8 if len(self.class_names) <= 255 else np.int32)
        provenance = Provenance(
            self.name,
            parameters={"overlap": overlap, "flip": flip},
            details={"model": self.architecture, "window": self.inputs.crop},
            seconds=time.perf_counter() - start,
        )
        return Segmentation.from_class_map(
            class_map,
            num_classes=len(self.class_names),
            class_names=self.class_names,
            probabilities=probs,
            provenance=provenance,
            spacing=getattr(volume, "spacing", None),
        )
