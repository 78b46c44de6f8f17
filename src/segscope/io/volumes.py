"""Volumes: NIfTI and TIFF stacks (OME-TIFF, ImageJ hyperstacks) as (Z, Y, X[, C]) arrays with
their voxel spacing.

segscope's axis order is NumPy's and SimpleITK's: slowest first, so a volume is (Z, Y, X), and a
multi-channel one (Z, Y, X, C). NIfTI stores voxels as (i, j, k) = (x, y, z); reading reverses the
axes and writing reverses them back, so the file's affine (voxel (i, j, k) to world millimetres)
is kept as it was, and the spacing is its header's voxel size, reversed to (z, y, x).

Every reader checks the decoded size from the header before any voxel is read
(:func:`segscope.io.limits.check_decoded_size`); writers write a temporary file and rename it.
"""

from __future__ import annotations

import gzip
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write_bytes
from .limits import ImageReadError, check_decoded_size, check_page_chain, require_regular_file

__all__ = ["VOLUME_SUFFIXES", "Volume", "VolumeSource", "file_stem", "holds_volume", "is_volume_file",
           "open_volume", "read_label_volume", "read_volume", "write_volume"]

VOLUME_SUFFIXES = (".nii", ".nii.gz", ".ome.tif", ".ome.tiff", ".tif", ".tiff", ".zarr")


@dataclass(frozen=True)
class Volume:
    """A volume read from a file: its voxels and where they sit."""

    data: np.ndarray
    """(Z, Y, X) or (Z, Y, X, C) voxels, in the file's dtype."""
    spacing: tuple[float, float, float]
    """Voxel size along (z, y, x), in the file's units (millimetres for NIfTI, micrometres for
    OME-TIFF unless it says otherwise); 1 where the file does not say."""
    affine: np.ndarray | None = field(default=None)
    """NIfTI's 4x4 voxel-to-world matrix, for the file's own (i, j, k) = (x, y, z) voxel order."""

    @property
    def channels(self) -> int:
        return int(self.data.shape[3]) if self.data.ndim == 4 else 1


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in (".nii.gz", ".ome.tiff", ".ome.tif"):
        if name.endswith(suffix):
            return suffix
    return path.suffix.lower()


def file_stem(path: str | os.PathLike[str]) -> str:
    """The file name without its suffix, a double one included (``case_01.nii.gz`` -> ``case_01``,
    ``a.ome.tif`` -> ``a``, ``b.png`` -> ``b``).

    >>> file_stem("labels/case_01.nii.gz")
    'case_01'
    """
    path = Path(path)
    return path.name[: len(path.name) - len(_suffix(path))]


def is_volume_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a NIfTI file or a Zarr volume (TIFFs may hold an image or a stack:
    read to know)."""
    return _suffix(Path(path)) in (".nii", ".nii.gz", ".zarr")


def holds_volume(path: str | os.PathLike[str]) -> bool:
    """Whether a large-image input is a volume: a NIfTI file, or an OME-Zarr image with a z axis
    (a plain Zarr array stays an image, (H, W) or (H, W, C), as tiled image jobs read it)."""
    path = Path(path)
    if _suffix(path) in (".nii", ".nii.gz"):
        return True
    if _suffix(path) != ".zarr" or not path.is_dir():
        return False
    try:
        zarr = _zarr()
        node = zarr.open(str(path), mode="r")
    except Exception:  # unreadable: the image reader says what is wrong
        return False
    if not isinstance(node, zarr.Group):
        return False
    attrs = dict(node.attrs)
    multiscales = attrs.get("ome", attrs).get("multiscales") or [{}]
    names = [(a["name"] if isinstance(a, dict) else str(a)).lower() for a in multiscales[0].get("axes", [])]
    return "z" in names


def read_volume(path: str | os.PathLike[str], *, max_bytes: int | None = None) -> Volume:
    """Read a NIfTI file, a TIFF stack or a Zarr volume as a :class:`Volume`.

    Parameters
    ----------
    path : path
        ``.nii`` or ``.nii.gz`` (nibabel); a TIFF whose series has a Z axis (OME-TIFF, ImageJ
        hyperstack, or a plain multi-page stack, whose pages are the slices); or a ``.zarr``
        folder: an OME-Zarr image (its first scale, axes and voxel size from its ``multiscales``
        metadata) or a plain 3-D array (taken as (Z, Y, X), spacing 1).
    max_bytes : int, optional
        The largest decoded size accepted (default :func:`segscope.io.limits.max_decoded_bytes`).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "v.nii.gz"
    >>> write_volume(path, np.arange(24, dtype=np.uint8).reshape(2, 3, 4), spacing=(3.0, 1.0, 0.5))
    >>> volume = read_volume(path)
    >>> volume.data.shape, volume.spacing
    ((2, 3, 4), (3.0, 1.0, 0.5))
    """
    suffix = _suffix(Path(path))
    if suffix == ".zarr":
        return _read_zarr(Path(path), max_bytes)
    path = require_regular_file(path)
    if suffix in (".nii", ".nii.gz"):
        return _read_nifti(path, max_bytes)
    if suffix in (".tif", ".tiff", ".ome.tif", ".ome.tiff"):
        return _read_tiff_stack(path, max_bytes)
    raise ImageReadError(f"{path}: not a volume format segscope reads ({', '.join(VOLUME_SUFFIXES)})")


def _zarr() -> Any:
    try:
        import zarr
    except ImportError as exc:  # zarr comes with segscope[scale]
        raise ImportError(f"Zarr volumes need zarr (pip install 'segscope[scale]'): {exc}") from None
    return zarr


@dataclass(frozen=True)
class _ZarrVolume:
    """An opened Zarr volume: its array, axes as stored, and the voxel size from its metadata."""

    array: Any
    axes: str
    spacing: tuple[float, float, float]

    @property
    def shape(self) -> tuple[int, ...]:
        """(Z, Y, X) or (Z, Y, X, C)."""
        sizes = dict(zip(self.axes, (int(n) for n in self.array.shape), strict=True))
        return tuple(sizes[a] for a in ("ZYXC" if sizes.get("C", 1) > 1 else "ZYX"))

    def read(self, window: tuple[slice, ...] | None = None) -> np.ndarray:
        """The voxels of ``window`` (z, y, x slices; all when None) as (Z, Y, X[, C])."""
        wanted = dict(zip("ZYX", window or (slice(None),) * 3, strict=True))
        index = tuple(wanted.get(a, slice(None)) for a in self.axes)
        data = np.asarray(self.array[index])
        shape = data.shape
        keep = [k for k, a in enumerate(self.axes) if a in "ZYX" or (a == "C" and shape[k] > 1)]
        kept = "".join(self.axes[k] for k in keep)
        data = data.reshape([shape[k] for k in keep])
        target = "ZYXC" if "C" in kept else "ZYX"
        return np.moveaxis(data, [kept.index(a) for a in target], list(range(len(target))))


def _open_zarr(path: Path) -> _ZarrVolume:
    zarr = _zarr()
    if not path.is_dir():
        raise ImageReadError(f"{path}: a Zarr volume is a folder; this is not one")
    try:
        node = zarr.open(str(path), mode="r")
    except Exception as exc:  # zarr raises many types on a damaged store
        raise ImageReadError(f"{path}: not a readable Zarr store ({type(exc).__name__}: {exc})") from exc
    axes, scale = "", None
    if isinstance(node, zarr.Group):
        attrs = dict(node.attrs)
        multiscales = attrs.get("ome", attrs).get("multiscales")
        if not multiscales:
            raise ImageReadError(f"{path}: a Zarr group without OME-Zarr 'multiscales' metadata; give the "
                                 f"array's folder (arrays: {sorted(node.array_keys())})")
        first = multiscales[0]
        axes = "".join((a["name"] if isinstance(a, dict) else str(a)).upper()[0]
                       for a in first.get("axes", []))
        dataset = first["datasets"][0]
        for transform in dataset.get("coordinateTransformations", []):
            if transform.get("type") == "scale":
                scale = [float(v) for v in transform["scale"]]
        node = node[dataset["path"]]
    shape = tuple(int(n) for n in node.shape)
    axes = axes or ("ZYX" if len(shape) == 3 else "")
    if len(axes) != len(shape):
        raise ImageReadError(f"{path}: a Zarr array of shape {shape} without axes metadata; segscope reads "
                             "3-D arrays as (Z, Y, X), or OME-Zarr images with their axes")
    others = [a for a, n in zip(axes, shape, strict=True) if a not in "ZYXC" and n > 1]
    if others or not set("ZYX") <= set(axes):
        raise ImageReadError(f"{path}: a Zarr image with axes {axes} (shape {shape}); segscope reads one "
                             "volume "
                             "with Z, Y, X (and C) axes")
    sizes = dict(zip(axes, scale, strict=True)) if scale is not None and len(scale) == len(axes) else {}
    return _ZarrVolume(node, axes, (sizes.get("Z", 1.0), sizes.get("Y", 1.0), sizes.get("X", 1.0)))


def _read_zarr(path: Path, max_bytes: int | None) -> Volume:
    opened = _open_zarr(path)
    check_decoded_size(path, opened.shape, np.dtype(opened.array.dtype).itemsize, what="Zarr",
                       max_bytes=max_bytes)
    try:
        data = opened.read()
    except Exception as exc:
        raise ImageReadError(f"{path}: cannot decode its chunks ({type(exc).__name__}: {exc})") from exc
    return Volume(np.ascontiguousarray(data), opened.spacing)


class VolumeSource:
    """A volume read window by window: a Zarr volume's chunks as they are needed; other files
    (NIfTI, TIFF stacks) are read whole once."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._zarr: _ZarrVolume | None = None
        self._whole: Volume | None = None
        if _suffix(self.path) == ".zarr":
            self._zarr = _open_zarr(self.path)
        else:
            self._whole = read_volume(self.path)

    @property
    def shape(self) -> tuple[int, ...]:
        """(Z, Y, X) or (Z, Y, X, C)."""
        return self._zarr.shape if self._zarr is not None else self._whole.data.shape  # type: ignore[union-attr]

    @property
    def dtype(self) -> np.dtype[Any]:
        return np.dtype(self._zarr.array.dtype if self._zarr is not None else self._whole.data.dtype)  # type: ignore[union-attr]

    @property
    def spacing(self) -> tuple[float, float, float]:
        return self._zarr.spacing if self._zarr is not None else self._whole.spacing  # type: ignore[union-attr]

    def read(self, window: tuple[slice, ...]) -> np.ndarray:
        """The voxels of a (z, y, x) window."""
        if self._zarr is not None:
            return self._zarr.read(window)
        return self._whole.data[window]  # type: ignore[union-attr]


def open_volume(path: str | os.PathLike[str]) -> VolumeSource:
    """A :class:`VolumeSource` for ``path`` (what tiled volume jobs read)."""
    return VolumeSource(path)


def _write_zarr(path: Path, data: np.ndarray, sizes: tuple[float, ...]) -> None:
    """An OME-Zarr (NGFF 0.4) image of one scale: axes (c,) z, y, x, the voxel size as its scale;
    written beside the target and renamed into place."""
    import shutil
    import tempfile

    zarr = _zarr()
    channels = data.ndim == 4
    array = np.moveaxis(data, 3, 0) if channels else data
    names = (["c"] if channels else []) + ["z", "y", "x"]
    axes = [{"name": n, "type": "channel"} if n == "c" else {"name": n, "type": "space", "unit": "micrometer"}
            for n in names]
    scale = ([1.0] if channels else []) + list(sizes)
    work = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        group = zarr.open_group(str(work / "v.zarr"), mode="w", zarr_format=2)
        group.create_array("0", data=np.ascontiguousarray(array),
                           chunks=tuple(min(n, 64) for n in array.shape))
        group.attrs["multiscales"] = [{"version": "0.4", "axes": axes, "datasets": [
            {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": scale}]}]}]
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            os.replace(path, old)
        os.replace(work / "v.zarr", path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _read_nifti(path: Path, max_bytes: int | None) -> Volume:
    import nibabel as nib

    try:
        image: Any = nib.load(str(path))
        shape = tuple(int(n) for n in image.shape)
        dtype = np.dtype(image.get_data_dtype())
    except Exception as exc:  # nibabel raises many types on damaged headers
        raise ImageReadError(f"{path}: not a readable NIfTI file ({type(exc).__name__}: {exc})") from exc
    if len(shape) not in (3, 4) or min(shape) < 1:
        raise ImageReadError(f"{path}: a NIfTI volume has 3 axes (or 4 with channels), got shape {shape}")
    check_decoded_size(path, shape, dtype.itemsize, what="NIfTI", max_bytes=max_bytes)
    try:
        data = np.asarray(image.dataobj)
    except Exception as exc:
        raise ImageReadError(f"{path}: cannot decode its voxels ({type(exc).__name__}: {exc})") from exc
    order = (2, 1, 0, 3) if data.ndim == 4 else (2, 1, 0)
    zooms = [float(z) for z in image.header.get_zooms()[:3]]
    return Volume(np.ascontiguousarray(data.transpose(order)), (zooms[2], zooms[1], zooms[0]),
                  np.asarray(image.affine, np.float64))


def _ome_spacing(ome_xml: str | None) -> dict[str, float]:
    """PhysicalSize{X,Y,Z} of an OME-XML block, by axis letter."""
    if not ome_xml:
        return {}
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(ome_xml)
    except ET.ParseError:
        return {}
    pixels = next((e for e in root.iter() if e.tag.endswith("Pixels")), None)
    if pixels is None:
        return {}
    found = {}
    for axis in "XYZ":
        value = pixels.get(f"PhysicalSize{axis}")
        if value is not None:
            found[axis] = float(value)
    return found


def _read_tiff_stack(path: Path, max_bytes: int | None) -> Volume:
    import tifffile

    check_page_chain(path)
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            axes, shape = series.axes, tuple(int(n) for n in series.shape)
            # A plain multi-page stack reads as pages (I or Q): its pages are the slices.
            axes = axes.replace("I", "Z").replace("Q", "Z")
            if "Z" not in axes:
                raise ImageReadError(f"{path}: a TIFF with axes {series.axes} (shape {shape}) has no Z axis; "
                                     "read it as an image with segscope.imread")
            extra = [a for a, n in zip(axes, shape, strict=True) if a not in "ZYXCS" and n > 1]
            if extra:
                raise ImageReadError(f"{path}: a TIFF with axes {series.axes} (shape {shape}) holds more "
                                     f"than one volume (axes {''.join(extra)}); save one volume per file")
            check_decoded_size(path, shape, series.dtype.itemsize, what="TIFF", max_bytes=max_bytes)
            data = series.asarray()
            spacing = _ome_spacing(tif.ome_metadata) if tif.is_ome else {}
            if tif.is_imagej and tif.imagej_metadata:
                # ImageJ hyperstacks: the slice spacing in their metadata, the pixel size as the
                # resolution tags' pixels per unit.
                if "spacing" in tif.imagej_metadata:
                    spacing.setdefault("Z", float(tif.imagej_metadata["spacing"]))
                first: Any = tif.pages.first
                for axis, tag in (("X", "XResolution"), ("Y", "YResolution")):
                    found = first.tags.get(tag)
                    if found is not None and found.value[0] > 0:
                        spacing.setdefault(axis, found.value[1] / found.value[0])
    except ImageReadError:
        raise
    except Exception as exc:  # tifffile and imagecodecs raise many types on damaged data
        raise ImageReadError(f"{path}: cannot decode TIFF ({type(exc).__name__}: {exc})") from exc
    # Drop single-sized axes other than Z, Y, X; move channels (C or S) last.
    keep = [k for k, a in enumerate(axes) if a in "ZYX" or (a in "CS" and shape[k] > 1)]
    data = data.reshape([shape[k] for k in keep])
    kept = "".join(axes[k] for k in keep).replace("S", "C")
    target = "ZYXC" if "C" in kept else "ZYX"
    data = np.moveaxis(data, [kept.index(a) for a in target], list(range(len(target))))
    return Volume(np.ascontiguousarray(data),
                  (spacing.get("Z", 1.0), spacing.get("Y", 1.0), spacing.get("X", 1.0)))


def write_volume(path: str | os.PathLike[str], data: np.ndarray, *,
                 spacing: tuple[float, float, float] | None = None, affine: np.ndarray | None = None) -> None:
    """Write a (Z, Y, X) or (Z, Y, X, C) volume: NIfTI (``.nii``, ``.nii.gz``) with ``affine``
    (default: the spacing on the diagonal), OME-TIFF (``.ome.tif``) or OME-Zarr (``.zarr``) with
    the spacing in its metadata. Written to a temporary file (folder), then renamed.
    """
    path = Path(path)
    data = np.asarray(data)
    if data.ndim not in (3, 4):
        raise ValueError(f"a volume is (Z, Y, X) or (Z, Y, X, C), got shape {data.shape}")
    sizes = tuple(float(v) for v in (spacing or (1.0, 1.0, 1.0)))
    if len(sizes) != 3 or not all(np.isfinite(v) and v > 0 for v in sizes):
        raise ValueError(f"spacing gives the (z, y, x) voxel size, three positive numbers; got {spacing}")
    suffix = _suffix(path)
    if suffix in (".nii", ".nii.gz"):
        import nibabel as nib

        if data.dtype == bool:
            data = data.astype(np.uint8)
        order = (2, 1, 0, 3) if data.ndim == 4 else (2, 1, 0)
        matrix = np.diag([sizes[2], sizes[1], sizes[0], 1.0]) if affine is None else np.asarray(affine)
        if matrix.shape != (4, 4):
            raise ValueError(f"affine is a 4x4 matrix, got shape {matrix.shape}")
        image = nib.Nifti1Image(np.ascontiguousarray(data.transpose(order)), matrix)
        image.header.set_zooms((sizes[2], sizes[1], sizes[0], *([1.0] if data.ndim == 4 else [])))
        raw = image.to_bytes()
        atomic_write_bytes(path, gzip.compress(raw, mtime=0) if suffix == ".nii.gz" else raw)
        return
    if suffix in (".ome.tif", ".ome.tiff", ".tif", ".tiff"):
        import tifffile

        # OME stores channels as planes: (C, Z, Y, X).
        axes = "CZYX" if data.ndim == 4 else "ZYX"
        data = np.moveaxis(data, 3, 0) if data.ndim == 4 else data
        buffer = io.BytesIO()
        tifffile.imwrite(buffer, data, ome=True, photometric="minisblack",
                         metadata={"axes": axes, "PhysicalSizeZ": sizes[0], "PhysicalSizeY": sizes[1],
                                   "PhysicalSizeX": sizes[2]})
        atomic_write_bytes(path, buffer.getvalue())
        return
    if suffix == ".zarr":
        _write_zarr(path, data.astype(np.uint8) if data.dtype == bool else data, sizes)
        return
    raise ValueError(f"{path}: write volumes as .nii, .nii.gz, .ome.tif or .zarr")


def _write_label_volume(seg: Any, folder: Path, stem: str, source: Volume | None = None) -> None:
    """A result's label volume as ``<stem>.nii.gz``: class indices of a semantic result (void 255),
    segment ids of others; the source volume's affine (else its spacing on the diagonal)."""
    if seg.ndim != 3:
        raise ValueError(f"{stem}: --format nifti writes volumes; this result is a {seg.ndim}-D image")
    if seg.kind == "semantic":
        data = seg.class_map(void=255)
        data = data.astype(np.uint8) if int(data.max(initial=0)) <= 255 else data.astype(np.int32)
    else:
        data = seg.labels.astype(np.uint16 if int(seg.labels.max(initial=0)) < 65536 else np.int32)
    spacing = seg.spacing or (source.spacing if source is not None else None)
    write_volume(folder / f"{stem}.nii.gz", data, spacing=spacing,
                 affine=source.affine if source is not None else None)


def read_label_volume(path: str | os.PathLike[str]) -> np.ndarray:
    """A (Z, Y, X) label volume as int64 values; a float file (MSD's are) must hold whole numbers."""
    data = read_volume(path).data
    if data.ndim != 3:
        raise ValueError(f"{path}: a label volume has 3 axes, got shape {data.shape}")
    if data.dtype.kind == "f":
        rounded = np.rint(data)
        if not np.allclose(rounded, data, atol=1e-3):  # float files store whole numbers, give or take
            raise ValueError(f"{path}: a label volume holds whole numbers; this one holds fractions")
        data = rounded
    return data.astype(np.int64)


def _register() -> None:
    from .formats import Format, register_format

    register_format(Format(
        "nifti", "one label volume per volume, NIfTI .nii.gz (semantic: class indices, 255 void; others: "
        "segment ids), with the source's affine", suffixes=(".nii.gz", ".nii"),
        read_file=lambda path, context: read_label_volume(path),
        write_file=_write_label_volume, write_volume=_write_label_volume))


_register()
