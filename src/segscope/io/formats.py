"""Formats declare themselves: what they read and write, and how their files are recognised.

Each format module registers one :class:`Format` next to its reader and writer. Whatever reads
annotations of any kind (:func:`segscope.io.datasets.read_annotations`, so ``segscope evaluate``)
and whatever writes results (``segscope segment --format``) asks this registry; neither holds a
list of formats.

Two shapes of format:

* per image: one file per image, named by the image's stem (label PNGs, ``.npz`` results, BSDS
  ``.mat`` files, YOLO ``.txt`` labels);
* one file for all images: a JSON (COCO instances, COCO panoptic), recognised by its content.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..result import Segmentation

__all__ = ["Annotation", "Format", "ReadContext", "get_format", "list_formats", "register_format", "writers"]


@dataclass
class Annotation:
    """One image's annotation (a result, a label array, or a BSDS ground truth), crowd flags, and
    the file it came from."""

    value: Any
    crowd: np.ndarray | None = None
    source: str = ""


@dataclass(frozen=True)
class ReadContext:
    """What a per-image reader may need beyond its file."""

    task: str | None = None
    """How to read files that do not say (label PNGs: class indices or object ids)."""
    images: Path | None = None
    """The images the annotations belong to (YOLO labels are normalised by their image's size)."""


@dataclass(frozen=True)
class Format:
    """A file format segscope reads or writes.

    Attributes
    ----------
    name : str
        What ``--format`` calls it.
    help : str
        One line for ``--help``.
    suffixes : tuple of str
        Per-image formats: the endings of their files (lower case).
    read_file : callable, optional
        Per-image: ``read_file(path, context) -> value`` (a Segmentation, an array ...).
    task : str, optional
        The task its files imply when read; None: the caller's, else the values' own kind.
    priority : int
        When a folder holds files of several per-image formats, the highest priority is read.
    read_all : callable, optional
        One file for all images: ``read_all(path) -> (task, {stem: Annotation})``.
    recognise : callable, optional
        One file for all images: whether a loaded JSON object is of this format.
    write_file : callable, optional
        Per-image: ``write_file(segmentation, folder, stem)``.
    write_all : callable, optional
        One file for all images: ``write_all([(file name, segmentation), ...], folder)``.
    write_volume : callable, optional
        Per volume: ``write_volume(segmentation, folder, stem, source)``, given the source
        :class:`~segscope.io.volumes.Volume` (its affine). A format without it writes 2-D results
        only.
    """

    name: str
    help: str
    suffixes: tuple[str, ...] = ()
    read_file: Callable[[Path, ReadContext], Any] | None = None
    task: str | None = None
    priority: int = 0
    read_all: Callable[[Path], tuple[str, dict[str, Annotation]]] | None = None
    recognise: Callable[[Mapping[str, Any]], bool] | None = None
    write_file: Callable[[Segmentation, Path, str], None] | None = None
    write_all: Callable[[Sequence[tuple[str, Segmentation]], Path], None] | None = None
    write_volume: Callable[[Segmentation, Path, str, Any], None] | None = None

    @property
    def per_image(self) -> bool:
        return self.read_all is None and self.write_all is None


_FORMATS: dict[str, Format] = {}


def register_format(fmt: Format) -> Format:
    """Add a format to the registry (each format module does so once, at import)."""
    if fmt.name in _FORMATS:
        raise ValueError(f"a format named {fmt.name!r} is already registered")
    _FORMATS[fmt.name] = fmt
    return fmt


def list_formats() -> list[Format]:
    """Every registered format, by name."""
    return [_FORMATS[k] for k in sorted(_FORMATS)]


def get_format(name: str) -> Format:
    try:
        return _FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown format {name!r}; known: {', '.join(sorted(_FORMATS))}") from None


def writers() -> list[Format]:
    """The formats results can be written in (``--format`` choices)."""
    return [f for f in list_formats() if f.write_file is not None or f.write_all is not None]


def for_files(files: Sequence[os.PathLike[str]]
              ) -> tuple[Format, Callable[[Path, ReadContext], Any], list[Path]] | None:
    """The per-image format of the highest priority among ``files``, its reader and its files."""
    found: list[tuple[int, Format, Callable[[Path, ReadContext], Any], list[Path]]] = []
    for fmt in _FORMATS.values():
        if fmt.read_file is None:
            continue
        mine = [Path(p) for p in files if Path(p).name.lower().endswith(fmt.suffixes)]
        if mine:
            found.append((fmt.priority, fmt, fmt.read_file, mine))
    if not found:
        return None
    _, fmt, read, mine = max(found, key=lambda item: item[0])
    return fmt, read, mine


def for_json(data: Mapping[str, Any]) -> Format | None:
    """The one-file format a loaded JSON object is in (None when none recognises it)."""
    for fmt in _FORMATS.values():
        if fmt.recognise is not None and fmt.recognise(data):
            return fmt
    return None
