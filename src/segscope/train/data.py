"""Labelled image folders for training: pairs by file stem, joint image-and-mask augmentation."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler
from torchvision import tv_tensors
from torchvision.transforms import v2

from ..checkpoint import InputSpec, percentile_rescale
from ..io.images import IMAGE_SUFFIXES, imread
from ..io.labels import apply_label_map, read_label_png

__all__ = ["AreaSampler", "Augment", "ElasticDeform", "LabelledFolder", "image_areas", "pair_by_stem"]


def _natural(path: Path) -> list[Any]:
    """Sort key that orders 2.png before 10.png."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def pair_by_stem(images: str | Path, labels: str | Path, *,
                 label_suffixes: Sequence[str] = IMAGE_SUFFIXES) -> list[tuple[Path, Path]]:
    """(image, label) paths with the same file stem, in natural order (2 before 10); an image
    without a label is an error. Labels are the files of ``labels`` with one of ``label_suffixes``."""
    images, labels = Path(images), Path(labels)
    for folder in (images, labels):
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: no such folder")
    label_files = {p.stem: p for p in labels.iterdir() if p.suffix.lower() in label_suffixes}
    pairs, missing = [], []
    for image in sorted((p for p in images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=_natural):
        if image.stem in label_files:
            pairs.append((image, label_files[image.stem]))
        else:
            missing.append(image.name)
    if missing:
        raise ValueError(f"{len(missing)} image(s) in {images} have no label in {labels}: {missing[:5]}")
    if not pairs:
        raise ValueError(f"{images}: no images")
    return pairs


@dataclass(frozen=True)
class Augment:
    """Joint augmentation: random scale, crop, elastic deformation, flips, rotation and colour jitter.

    Masks are only ever resampled with nearest neighbours (torchvision's ``tv_tensors.Mask``),
    and pixels that a crop or rotation brings in from outside the image are ``ignore_index``.
    ``elastic`` is the standard deviation, in pixels, of the random displacements of
    :class:`ElasticDeform` (0: none).
    """

    crop: int = 256
    scale: tuple[float, float] = (0.5, 2.0)
    hflip: bool = True
    vflip: bool = False
    rotation: float = 0.0
    colour: float = 0.2  # contrast and brightness jitter, in standard deviations
    stain: float = 0.0  # per-channel gain and offset jitter, in standard deviations
    invert: float = 0.0  # probability of inverting the contrast
    elastic: float = 0.0  # elastic deformation: displacement standard deviation, pixels

    def intensity(self, x: torch.Tensor) -> torch.Tensor:
        """The intensity changes, on a normalised (C, H, W) image (so any number of bands): one
        contrast and brightness for all channels; with ``stain``, a gain and an offset per channel
        (stain and white-balance variation); with probability ``invert``, the contrast inverted
        (the image negated, as a bright-field picture of dark nuclei against a fluorescent one)."""
        if self.colour:
            contrast = 1 + self.colour * (2 * float(torch.rand(())) - 1)
            brightness = self.colour * (2 * float(torch.rand(())) - 1)
            x = x * contrast + brightness
        if self.stain:
            shape = (x.shape[0], 1, 1)
            x = x * (1 + self.stain * (2 * torch.rand(shape) - 1)) + self.stain * (2 * torch.rand(shape) - 1)
        if self.invert and float(torch.rand(())) < self.invert:
            x = -x
        return x

    def build(self, ignore_index: int) -> v2.Compose:
        fill = {tv_tensors.Image: 0.0, tv_tensors.Mask: ignore_index}
        steps: list[v2.Transform] = []
        if self.scale != (1.0, 1.0):
            steps.append(v2.RandomAffine(degrees=0, scale=self.scale, fill=fill))
        if self.rotation:
            steps.append(v2.RandomRotation(self.rotation, fill=fill))
        steps.append(v2.RandomCrop(self.crop, pad_if_needed=True, fill=fill))
        if self.elastic:
            steps.append(ElasticDeform(self.elastic))
        if self.hflip:
            steps.append(v2.RandomHorizontalFlip())
        if self.vflip:
            steps.append(v2.RandomVerticalFlip())
        return v2.Compose(steps)


class ElasticDeform(v2.Transform):
    """Smooth random elastic deformation of an image and its mask together (U-Net's augmentation
    for electron microscopy).

    Random displacement vectors, with standard deviation ``sigma`` pixels in each direction, are
    drawn on a coarse grid of control points ``spacing`` pixels apart (3x3 on a 256-pixel crop at
    the default) and interpolated bicubically to every pixel. Images are resampled bilinearly,
    masks (``tv_tensors.Mask``) with nearest neighbours, so label values stay labels; content
    beyond the border is mirrored, so nothing new needs a fill value.

    References
    ----------
    .. [1] Ronneberger, O., Fischer, P. and Brox, T. (2015). U-Net: Convolutional Networks for
       Biomedical Image Segmentation. MICCAI, 234-241.
    """

    def __init__(self, sigma: float, *, spacing: int = 128) -> None:
        super().__init__()
        if sigma < 0:
            raise ValueError(f"sigma must be non-negative, got {sigma}")
        if spacing < 1:
            raise ValueError(f"spacing must be positive, got {spacing}")
        self.sigma = float(sigma)
        self.spacing = int(spacing)

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        import torch.nn.functional as F

        sizes = {tuple(x.shape[-2:]) for x in flat_inputs
                 if isinstance(x, tv_tensors.Image | tv_tensors.Mask)}
        if len(sizes) != 1:
            raise ValueError(f"elastic deformation needs images and masks of one size, got {sorted(sizes)}")
        height, width = sizes.pop()
        coarse = (2, height // self.spacing + 2, width // self.spacing + 2)
        shift = torch.randn(coarse) * self.sigma
        shift = F.interpolate(shift[None], size=(height, width), mode="bicubic", align_corners=True)[0]
        # grid_sample's coordinates run from -1 to 1 across the image (corners aligned).
        rows = torch.linspace(-1, 1, height)[:, None] + shift[0] * 2 / max(height - 1, 1)
        cols = torch.linspace(-1, 1, width)[None, :] + shift[1] * 2 / max(width - 1, 1)
        return {"grid": torch.stack([cols, rows], dim=-1)[None]}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        import torch.nn.functional as F

        if not isinstance(inpt, tv_tensors.Image | tv_tensors.Mask):
            return inpt
        mask = isinstance(inpt, tv_tensors.Mask)
        data = inpt.as_subclass(torch.Tensor)
        lead = data.shape[:-2]
        flat = data.reshape(1, -1, *data.shape[-2:]).to(torch.float32)
        out = F.grid_sample(flat, params["grid"], mode="nearest" if mask else "bilinear",
                            padding_mode="reflection", align_corners=True)
        out = out.reshape(*lead, *data.shape[-2:]).to(data.dtype)
        return tv_tensors.wrap(out, like=inpt)


class LabelledFolder(Dataset):
    """Images and label PNGs paired by stem, as normalised float tensors and long masks.

    Parameters
    ----------
    pairs : sequence of (image path, label path)
        From :func:`pair_by_stem`.
    mean, std : sequence of float
        Per-channel normalisation, in the images' own units (no rescaling of the dtype).
    ignore_index : int
        Label value that is not scored; also what augmentation fills in.
    label_map : dict, optional
        Label values to replace before training (ISBI's {0: 0, 255: 1}).
    augment : Augment, optional
        None for validation (whole images, no change).
    percentiles : (float, float), optional
        Map each image from its own percentiles to 0..1 first (:attr:`InputSpec.percentiles`).
    """

    def __init__(
        self,
        pairs: Sequence[tuple[Path, Path]],
        *,
        mean: Sequence[float],
        std: Sequence[float],
        ignore_index: int = 255,
        label_map: dict[int, int] | None = None,
        augment: Augment | None = None,
        cache: bool = True,
        percentiles: tuple[float, float] | None = None,
    ) -> None:
        self.pairs = list(pairs)
        self.percentiles = percentiles
        self.mean = torch.tensor(mean, dtype=torch.float32)[:, None, None]
        self.std = torch.tensor(std, dtype=torch.float32)[:, None, None]
        self.ignore_index = ignore_index
        self.label_map = label_map
        self.augment = augment
        self.transform = augment.build(ignore_index) if augment is not None else None
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.pairs)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The image (H, W, C) and label (H, W) as stored, label values mapped."""
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        image_path, label_path = self.pairs[index]
        image = imread(image_path)
        if image.ndim == 2:
            image = image[..., None]
        if self.percentiles is not None:
            image = percentile_rescale(image, self.percentiles)
        label = read_label_png(label_path)
        if label.shape != image.shape[:2]:
            raise ValueError(f"{label_path}: label is {label.shape}, image {image_path} is {image.shape[:2]}")
        if self.label_map:
            label = apply_label_map(label, self.label_map)
        out = (image, label.astype(np.int64))
        if self._cache is not None:
            self._cache[index] = out
        return out

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, label = self.load(index)
        x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)).astype(np.float32))
        x = (x - self.mean) / self.std
        y = torch.from_numpy(label)
        return augment_pair(x, y, self.transform, self.augment)


def augment_pair(
    x: torch.Tensor, mask: torch.Tensor, transform: v2.Compose | None, augment: Augment | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply :meth:`Augment.build`'s transform to an image and its mask together, then
    :meth:`Augment.intensity` to the image."""
    if transform is None or augment is None:
        return x, mask
    image, target = transform(tv_tensors.Image(x), tv_tensors.Mask(mask))
    return augment.intensity(image.as_subclass(torch.Tensor)), target.as_subclass(torch.Tensor)


def input_statistics(images: Sequence[Path], limit: int = 64, *, crop: int | None = None,
                     percentiles: tuple[float, float] | None = None) -> InputSpec:
    """What a model trained on ``images`` expects: per-channel mean and standard deviation (of the
    images mapped from their ``percentiles`` when given), the images' dtype and their value range,
    over (up to ``limit``) training images."""
    total = total_sq = None
    count = 0
    low, high = np.inf, -np.inf
    dtype: str | None = None
    step = max(1, len(images) // limit)
    for image_path in list(images)[::step][:limit]:
        raw = imread(image_path)
        dtype = dtype or raw.dtype.name
        low, high = min(low, float(raw.min())), max(high, float(raw.max()))
        image = raw.astype(np.float64)
        if image.ndim == 2:
            image = image[..., None]
        if percentiles is not None:
            image = percentile_rescale(image, percentiles).astype(np.float64)
        flat = image.reshape(-1, image.shape[-1])
        total = flat.sum(0) if total is None else total + flat.sum(0)
        total_sq = (flat**2).sum(0) if total_sq is None else total_sq + (flat**2).sum(0)
        count += flat.shape[0]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 1e-12))
    return InputSpec(tuple(mean.tolist()), tuple(std.tolist()), dtype, (low, high), crop, percentiles)


def image_areas(dataset: Any) -> list[int]:
    """Each training image's pixel count, from a dataset of whole images (its ``load(index)``
    returns the image first, as :class:`LabelledFolder`'s does; they stay in its cache)."""
    if not callable(getattr(dataset, "load", None)):
        raise ValueError(f"sampling by area needs a dataset of whole images with load(index); "
                         f"{type(dataset).__name__} has none")
    return [int(np.prod(dataset.load(index)[0].shape[:2])) for index in range(len(dataset))]


class AreaSampler(Sampler[int]):
    """``len(weights)`` draws per epoch, each index with probability proportional to its weight
    (with replacement), the same for a given ``seed`` and epoch (:meth:`set_epoch`) on every
    process; under torchrun each process takes every ``world_size``-th draw from ``rank``.

    Examples
    --------
    >>> sampler = AreaSampler([1, 0, 3], seed=0)
    >>> sampler.set_epoch(2)
    >>> draws = list(sampler)
    >>> len(draws), 1 in draws
    (3, False)
    """

    def __init__(self, weights: Sequence[float], *, seed: int, rank: int = 0, world_size: int = 1) -> None:
        self.weights = torch.as_tensor(weights, dtype=torch.float64)
        if self.weights.ndim != 1 or len(self.weights) == 0 or not bool(torch.isfinite(self.weights).all()) \
                or bool((self.weights < 0).any()) or float(self.weights.sum()) <= 0:
            raise ValueError("weights must be a non-empty sequence of finite non-negative numbers, not all 0")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in 0..{world_size - 1}, got {rank}")
        self.seed, self.rank, self.world_size, self.epoch = seed, rank, world_size, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Any:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        draws = torch.multinomial(self.weights, len(self.weights), replacement=True, generator=generator)
        return iter(draws[self.rank::self.world_size].tolist())

    def __len__(self) -> int:
        return len(range(self.rank, len(self.weights), self.world_size))
