"""Checks and conversions for input images, shared by every method."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["as_plane", "check_image", "check_image_or_volume", "check_volume", "to_gray"]

_SUPPORTED = ("bool", "uint8", "uint16", "uint32", "int8", "int16", "int32", "float32", "float64")


def check_image(
    image: np.ndarray, *, channel_axis: int | None = None, name: str = "image"
) -> np.ndarray:
    """Validate an image and return it channels-last: (H, W) or (H, W, C).

    Raises
    ------
    TypeError
        For an unsupported dtype (complex, object, float16, 64-bit integers ...).
    ValueError
        For a wrong number of dimensions, an empty image, or NaN/inf values.
    """
    image = np.asarray(image)
    if image.dtype.name not in _SUPPORTED:
        raise TypeError(f"{name}: unsupported dtype {image.dtype}; supported: {', '.join(_SUPPORTED)}")
    if channel_axis is not None:
        if image.ndim != 3:
            raise ValueError(
                f"{name}: channel_axis={channel_axis} needs a 3-D image, got shape {image.shape}"
            )
        image = np.moveaxis(image, channel_axis, -1)
    elif image.ndim == 3 and image.shape[-1] > 4 and image.shape[0] <= 4:
        raise ValueError(
            f"{name}: shape {image.shape} looks channels-first; pass channel_axis=0"
        )
    if image.ndim not in (2, 3):
        raise ValueError(f"{name}: expected (H, W) or (H, W, C), got shape {image.shape}")
    if image.size == 0:
        raise ValueError(f"{name}: image is empty (shape {image.shape})")
    if image.dtype.kind == "f" and not np.isfinite(image).all():
        bad = "NaN" if np.isnan(image).any() else "infinite values"
        raise ValueError(f"{name}: image contains {bad}; fill or mask them first")
    return image


def check_volume(
    volume: np.ndarray, *, spacing: Sequence[float], channel_axis: int | None = None, name: str = "volume"
) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Validate a volume and its voxel spacing: (Z, Y, X) or (Z, Y, X, C), channels last.

    A method that takes volumes declares a ``spacing`` keyword; given a spacing, its 3-D array is
    a (Z, Y, X) volume, not an (H, W, C) image.

    Raises
    ------
    TypeError
        For an unsupported dtype.
    ValueError
        For a wrong number of dimensions, an empty volume, NaN/inf values, or a spacing that is
        not three positive numbers.
    """
    volume = np.asarray(volume)
    if volume.dtype.name not in _SUPPORTED:
        raise TypeError(f"{name}: unsupported dtype {volume.dtype}; supported: {', '.join(_SUPPORTED)}")
    if channel_axis is not None:
        if volume.ndim != 4:
            raise ValueError(f"{name}: channel_axis={channel_axis} needs a 4-D volume, got shape "
                             f"{volume.shape}")
        volume = np.moveaxis(volume, channel_axis, -1)
    if volume.ndim not in (3, 4):
        raise ValueError(f"{name}: a volume is (Z, Y, X) or (Z, Y, X, C), got shape {volume.shape}")
    if volume.size == 0:
        raise ValueError(f"{name}: the volume is empty (shape {volume.shape})")
    try:
        sizes = tuple(float(s) for s in spacing)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: spacing must be three numbers (z, y, x), got {spacing!r}") from None
    if len(sizes) != 3 or not all(np.isfinite(s) and s > 0 for s in sizes):
        raise ValueError(f"{name}: spacing must be three positive numbers (z, y, x), got {spacing!r}")
    if volume.dtype.kind == "f" and not np.isfinite(volume).all():
        bad = "NaN" if np.isnan(volume).any() else "infinite values"
        raise ValueError(f"{name}: the volume contains {bad}; fill or mask them first")
    return volume, (sizes[0], sizes[1], sizes[2])


def check_image_or_volume(
    image: np.ndarray, *, channel_axis: int | None = None, spacing: Sequence[float] | None = None
) -> tuple[np.ndarray, tuple[float, float, float] | None]:
    """What a method that takes volumes checks first: with a ``spacing``, a volume
    (:func:`check_volume`) and its validated spacing; without, an image (:func:`check_image`) and
    None."""
    if spacing is None:
        return check_image(image, channel_axis=channel_axis), None
    return check_volume(image, spacing=spacing, channel_axis=channel_axis)


def as_plane(gray: np.ndarray) -> np.ndarray:
    """A grey image as it is, or a grey volume's slices stacked into one contiguous 2-D image, for
    OpenCV's pixel-wise functions (which take 2-D arrays; a 3-D one would be read as channels).

    >>> as_plane(np.zeros((4, 5, 6))).shape
    (20, 6)
    """
    gray = np.ascontiguousarray(gray)
    return gray if gray.ndim == 2 else gray.reshape(-1, gray.shape[-1])


def to_gray(image: np.ndarray) -> np.ndarray:
    """Luma of a channels-last image, in the input's dtype (no rescaling).

    Grey images pass through. RGB and RGBA use ITU-R BT.601 weights, ``0.299 R + 0.587 G + 0.114 B``
    (alpha dropped), rounded for integer dtypes; this is OpenCV's conversion. Other band counts are
    averaged. Bool images become uint8 0/1.
    """
    if image.dtype == bool:
        image = image.astype(np.uint8)
    if image.ndim == 2:
        return image
    if image.ndim == 4:  # a (Z, Y, X, C) volume: its slices side by side, converted as one image
        z, y, x, c = image.shape
        return to_gray(image.reshape(z * y, x, c)).reshape(z, y, x)
    bands = image.shape[-1]
    if bands == 1:
        return image[..., 0]
    if bands in (3, 4) and image.dtype in (np.uint8, np.uint16, np.float32):
        import cv2

        rgb = np.ascontiguousarray(image[..., :3])
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    if bands in (3, 4):
        gray = image[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    else:
        gray = image.astype(np.float64).mean(axis=-1)
    if image.dtype.kind in "iu":
        info = np.iinfo(image.dtype)
        return np.clip(np.rint(gray), info.min, info.max).astype(image.dtype)
    return gray.astype(image.dtype)
