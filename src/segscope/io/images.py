"""Reading and writing images: PNG, JPEG and TIFF, without silent intensity rescaling.

PNG and JPEG go through Pillow (EXIF orientation honoured), TIFF through tifffile (any dtype,
multi-band). Pixel values come back exactly as stored: a 16-bit PNG gives uint16, a float TIFF gives
float32, nothing is scaled to [0, 1] or to 8 bits behind your back.
"""

from __future__ import annotations

import io as _io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..atomic import atomic_write_bytes
from .limits import (
    ImageReadError,
    check_decoded_size,
    check_page_chain,
    open_pil,
    pil_decoded_shape,
    require_regular_file,
)

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

    from .volumes import Volume

__all__ = [
    "IMAGE_SUFFIXES",
    "ImageInfo",
    "ImageReadError",
    "image_info",
    "imread",
    "imwrite",
    "read_image_or_volume",
]

_PIL_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".ppm", ".pgm", ".pbm"}
_TIFF_SUFFIXES = {".tif", ".tiff"}
IMAGE_SUFFIXES = tuple(sorted(_PIL_SUFFIXES | _TIFF_SUFFIXES))
"""The file endings :func:`imread` reads (lower case)."""
_SUPPORTED_KINDS = {"b", "u", "i", "f"}


@dataclass(frozen=True)
class ImageInfo:
    """What ``segscope info`` prints about an image."""

    path: str
    shape: tuple[int, ...]
    dtype: str
    channels: int
    minimum: float
    """The smallest finite value."""
    maximum: float
    """The largest finite value."""
    has_nan: bool
    has_inf: bool = False
    palette: bool = False
    """A palette (indexed) image: ``shape`` and ``channels`` are its indices', one per pixel."""
    spacing: tuple[float, float, float] | None = None
    """A volume's voxel size (z, y, x); None for a 2-D image."""

    def __str__(self) -> str:
        flags = [f for f, on in (("palette indices", self.palette), ("contains NaN", self.has_nan),
                                 ("contains infinite values", self.has_inf)) if on]
        if self.spacing is not None:
            axes = "(Z, Y, X, C)" if len(self.shape) == 4 else "(Z, Y, X)"
            what = (f"volume {axes} {self.shape}, voxel spacing (z, y, x) "
                    f"({', '.join(f'{s:g}' for s in self.spacing)})")
        else:
            what = f"image {'(H, W, C)' if len(self.shape) == 3 else '(H, W)'} {self.shape}"
        return (
            f"{self.path}: {what}, dtype {self.dtype}, {self.channels} channel(s), "
            f"values [{self.minimum:g}, {self.maximum:g}]" + "".join(f", {f}" for f in flags)
        )


def imread(path: str | os.PathLike[str], *, max_bytes: int | None = None) -> np.ndarray:
    """Read an image file into an array, exactly as stored.

    Parameters
    ----------
    path : str or path-like
        A PNG, JPEG, TIFF (also BMP, GIF, WebP, PNM) file.
    max_bytes : int, optional
        Refuse images that would decode to more bytes than this, counting every page, band and
        byte (a guard against decompression bombs); default :func:`segscope.io.max_decoded_bytes`.

    Returns
    -------
    image : ndarray
        (H, W) for greyscale, (H, W, C) for colour or multi-band; the stored dtype (bool, uint8,
        uint16, int, float32 or float64). Palette images are expanded to RGB(A); read them with
        :func:`segscope.io.read_label_png` to get the indices instead.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ImageReadError
        If the file is not a regular, readable image, is truncated, has no pixels, is too large,
        or is a stack of images (volumes are not read as 2-D images).

    Examples
    --------
    >>> import segscope, numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "a.png")
    >>> segscope.imwrite(path, np.full((2, 3), 7, np.uint16))
    >>> segscope.imread(path).dtype
    dtype('uint16')
    """
    path = require_regular_file(path)
    if path.suffix.lower() in _TIFF_SUFFIXES:
        image = _read_tiff(path, max_bytes)
    else:
        image = _read_pil(path, max_bytes)
    if image.size == 0:
        raise ImageReadError(f"{path}: image has no pixels (shape {image.shape})")
    if image.dtype.kind not in _SUPPORTED_KINDS:
        raise ImageReadError(f"{path}: unsupported pixel type {image.dtype}")
    return image


def _read_pil(path: Path, max_bytes: int | None) -> np.ndarray:
    from PIL import ImageOps, UnidentifiedImageError

    try:
        with open_pil(path) as img:
            shape, itemsize = pil_decoded_shape(img)
            check_decoded_size(path, shape, itemsize, max_bytes=max_bytes)
            img.load()
            return _pil_to_array(ImageOps.exif_transpose(img))
    except ImageReadError:
        raise
    except UnidentifiedImageError as exc:
        raise ImageReadError(f"{path}: not a recognised image file") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"{path}: cannot decode image ({exc})") from exc


def _pil_to_array(img: PILImage) -> np.ndarray:
    mode = img.mode
    if mode in ("P", "PA"):
        img = img.convert("RGBA" if "transparency" in img.info or mode == "PA" else "RGB")
    elif mode == "CMYK" or mode == "YCbCr" or mode == "LAB" or mode == "HSV":
        img = img.convert("RGB")
    elif mode == "I;16" or mode == "I;16B" or mode == "I;16L":
        return np.asarray(img).astype(np.uint16)
    if img.mode == "1":
        return np.asarray(img, dtype=bool)
    array = np.asarray(img)
    if img.mode == "I":
        # 32-bit integer PNGs do not exist; mode "I" here means a 16-bit file Pillow widened.
        if array.min(initial=0) >= 0 and array.max(initial=0) <= 65535:
            return array.astype(np.uint16)
        return array.astype(np.int32)
    return np.array(array)


def refuse_stacks(path: Path, shape: tuple[int, ...], axes: str) -> None:
    """Refuse a TIFF whose series holds several planes (Z, time, pages ...): it is a volume or a
    stack, not a 2-D image with that many channels."""
    planes = [n for n, a in zip(shape, axes, strict=True) if a not in "YXS"]
    if any(n > 1 for n in planes):
        raise ImageReadError(
            f"{path}: a stack of {int(np.prod(planes))} images (shape {tuple(shape)}, axes {axes}); "
            "segscope.imread reads 2-D images: read volumes with segscope.io.read_volume")


def _read_tiff(path: Path, max_bytes: int | None) -> np.ndarray:
    import tifffile

    check_page_chain(path)
    try:
        with tifffile.TiffFile(path) as tif:
            if not tif.pages:
                raise ImageReadError(f"{path}: TIFF has no images")
            series = tif.series[0]
            # Every page of the file, every sample of every pixel, before anything is decoded.
            pages = sum(int(np.prod(s.shape, dtype=object)) * s.dtype.itemsize for s in tif.series)
            check_decoded_size(path, (pages,), 1, what="TIFF", max_bytes=max_bytes)
            axes = series.axes
            refuse_stacks(path, series.shape, axes)
            image = series.asarray().reshape([n for n, a in zip(series.shape, axes, strict=True)
                                              if a in "YXS"])
            # Planar multi-band data come as (C, H, W); segscope works channels-last.
            kept = "".join(a for a in axes if a in "YXS")
            if image.ndim == 3 and kept.startswith("S"):
                image = np.moveaxis(image, 0, -1)
    except ImageReadError:
        raise
    except Exception as exc:  # tifffile and imagecodecs raise many types on damaged or hostile data
        raise ImageReadError(f"{path}: cannot decode TIFF ({type(exc).__name__}: {exc})") from exc
    return image


def image_info(path: str | os.PathLike[str]) -> ImageInfo:
    """Shape, dtype, channel count and value range of an image file (the finite range, with NaN and
    infinite values flagged; a palette image as its indices), or of a volume (NIfTI, a TIFF stack)
    with its voxel spacing."""
    from .volumes import Volume, is_volume_file

    path = Path(path)
    palette = path.suffix.lower() not in _TIFF_SUFFIXES and not is_volume_file(path) and _is_palette(path)
    spacing = None
    if palette:
        from .labels import read_label_png

        image = read_label_png(path).astype(np.uint8)  # a PNG palette has at most 256 entries
    else:
        read = read_image_or_volume(path)
        if isinstance(read, Volume):
            image, spacing = read.data, read.spacing
        else:
            image = read
    spatial = 2 if spacing is None else 3
    channels = 1 if image.ndim == spatial else int(image.shape[-1])
    floating = image.dtype.kind == "f"
    has_nan = bool(floating and np.isnan(image).any())
    has_inf = bool(floating and np.isinf(image).any())
    finite = image[np.isfinite(image)] if floating else image
    lo = float(finite.min()) if finite.size else float("nan")
    hi = float(finite.max()) if finite.size else float("nan")
    return ImageInfo(str(path), tuple(int(s) for s in image.shape), str(image.dtype), channels,
                     lo, hi, has_nan, has_inf, palette, spacing)


def read_image_or_volume(path: str | os.PathLike[str], *, max_bytes: int | None = None
                         ) -> np.ndarray | Volume:
    """A 2-D image (:func:`segscope.io.imread`), or a :class:`Volume` for a NIfTI file or a TIFF
    stack: what the command line reads, so that folders of scans segment like folders of photos."""
    from .volumes import is_volume_file, read_volume

    if is_volume_file(path):
        return read_volume(path, max_bytes=max_bytes)
    try:
        return imread(path, max_bytes=max_bytes)
    except ImageReadError as exc:
        if "read volumes with segscope.io.read_volume" not in str(exc):
            raise
        return read_volume(path, max_bytes=max_bytes)


def _is_palette(path: Path) -> bool:
    from PIL import UnidentifiedImageError

    require_regular_file(path)
    try:
        with open_pil(path) as img:
            return img.mode == "P"
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return False  # imread says what is wrong with it


def imwrite(path: str | os.PathLike[str], image: np.ndarray, *, quality: int = 95) -> None:
    """Write an image, atomically, in the format its suffix names, without rescaling values.

    PNG takes bool, uint8 and uint16 with 1, 2 (grey + alpha), 3 or 4 channels; JPEG takes uint8
    grey or RGB; TIFF takes any numeric dtype and any number of bands. A dtype the format cannot
    hold raises TypeError rather than being converted.

    Parameters
    ----------
    path : str or path-like
        Output file; its suffix picks the format (``.png``, ``.jpg``/``.jpeg``, ``.tif``/``.tiff``).
    image : ndarray
        (H, W) or (H, W, C).
    quality : int, optional
        JPEG quality, 1 to 100.
    """
    path = Path(path)
    image = np.asarray(image)
    suffix = path.suffix.lower()
    if image.ndim not in (2, 3) or image.size == 0:
        raise ValueError(f"{path}: cannot write an image of shape {image.shape}")
    if suffix in _TIFF_SUFFIXES:
        import tifffile

        if image.dtype.kind not in _SUPPORTED_KINDS:
            raise TypeError(f"{path}: cannot write dtype {image.dtype} to TIFF")
        buffer = _io.BytesIO()
        photometric = "rgb" if image.ndim == 3 and image.shape[-1] in (3, 4) and \
            image.dtype == np.uint8 else "minisblack"
        planar = "contig" if image.ndim == 3 else None
        tifffile.imwrite(buffer, image, photometric=photometric, planarconfig=planar,
                         compression="zlib")
        atomic_write_bytes(path, buffer.getvalue())
        return
    if suffix not in _PIL_SUFFIXES:
        raise ValueError(
            f"{path}: unknown image format {suffix!r}; use .png, .jpg, .jpeg, .tif or .tiff"
        )
    from PIL import Image

    channels = 1 if image.ndim == 2 else image.shape[2]
    if suffix in (".jpg", ".jpeg"):
        if image.dtype != np.uint8 or channels not in (1, 3):
            raise TypeError(f"{path}: JPEG holds uint8 grey or RGB, got {image.dtype} x{channels}")
        img = Image.fromarray(image[..., 0] if image.ndim == 3 and channels == 1 else image)
        buffer = _io.BytesIO()
        img.save(buffer, format="JPEG", quality=quality)
        atomic_write_bytes(path, buffer.getvalue())
        return
    if image.dtype == bool:
        image = image.astype(np.uint8)  # PNG 1-bit reads back as bool-compatible 0/1 uint8
    if image.dtype == np.uint16:
        if channels != 1:
            raise TypeError(f"{path}: 16-bit PNG here is greyscale only; use TIFF for {channels} "
                            "channels")
        img = Image.fromarray(image)
    elif image.dtype == np.uint8:
        if channels > 4:
            raise TypeError(f"{path}: PNG holds 1 to 4 channels, got {channels}; use TIFF")
        img = Image.fromarray(image[..., 0] if image.ndim == 3 and channels == 1 else image)
    else:
        raise TypeError(
            f"{path}: PNG holds bool, uint8 or uint16, got {image.dtype}; use TIFF, or convert "
            "explicitly"
        )
    buffer = _io.BytesIO()
    img.save(buffer, format="PNG", compress_level=3)
    atomic_write_bytes(path, buffer.getvalue())
