"""The images the web app may open: those under its folder, and uploads kept in memory.

A name is a path relative to the folder, checked before anything is opened: no absolute paths,
no ``..``, no hidden parts, an image ending, a regular file whose real path (links followed) lies
inside the folder. Images are decoded by :func:`segscope.imread`, so the readers' bound on the
decoded size holds here too. Uploads are decoded the same way from a private temporary file and
kept in memory (the last few), never written into the folder.
"""

from __future__ import annotations

import os
import re
import secrets
import tempfile
from collections import OrderedDict
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from ..io.images import IMAGE_SUFFIXES, imread
from ..io.volumes import file_stem

__all__ = ["Library", "NotFound"]

UPLOAD = "upload"
"""Uploads are named ``upload/<token>/<file name>``."""


class NotFound(LookupError):
    """No image of that name may be opened."""


def _safe_filename(name: str) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", PurePosixPath(name.replace("\\", "/")).name).strip("._")
    return base[:80] or "upload"


class Library:
    """Images under ``folder`` and uploads; truths (when given) read once, keyed by file stem.

    Parameters
    ----------
    folder : path
        The folder whose images the page lists and opens; nothing outside it is read.
    truths : dict, optional
        ``{stem: Annotation}`` (:func:`segscope.io.datasets.read_annotations`).
    skip : path, optional
        A sub-folder left out of the listing (the truths' own).
    limit : int
        At most this many images are listed.
    """

    def __init__(self, folder: str | os.PathLike[str], *, truths: dict[str, Any] | None = None,
                 skip: str | os.PathLike[str] | None = None, limit: int = 5000, keep: int = 16) -> None:
        self.root = Path(folder).resolve()
        if not self.root.is_dir():
            raise NotADirectoryError(f"{folder}: not a folder")
        self.truths = truths or {}
        self.skip = Path(skip).resolve() if skip is not None else None
        self.limit = limit
        self.keep = keep
        self._uploads: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()

    def names(self) -> list[str]:
        """The images under the folder (hidden files and folders, and links out of it, left out)."""
        found: list[str] = []
        for top, dirs, files in os.walk(self.root):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                             and (self.skip is None or Path(top, d).resolve() != self.skip))
            for name in sorted(files):
                relative = Path(top, name).relative_to(self.root).as_posix()
                if self._checked(relative) is not None:
                    found.append(relative)
                    if len(found) >= self.limit:
                        return sorted(found)
        return sorted(found)

    def _checked(self, name: str) -> Path | None:
        """The file ``name`` stands for, if it may be opened."""
        parts = PurePosixPath(name).parts
        if (not parts or name.startswith("/") or "\\" in name or "\x00" in name
                or any(p in ("", ".", "..") or p.startswith(".") for p in parts)):
            return None
        if not name.lower().endswith(IMAGE_SUFFIXES):
            return None
        path = self.root.joinpath(*parts)
        try:
            real = path.resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        if not real.is_relative_to(self.root) or not real.is_file():
            return None
        if self.skip is not None and real.is_relative_to(self.skip):
            return None
        return real

    def read(self, name: str) -> np.ndarray:
        """The decoded image ``name`` (a folder image or an upload)."""
        if name in self._uploads:
            self._uploads.move_to_end(name)
            return self._uploads[name]
        if name in self._cache:
            self._cache.move_to_end(name)
            return self._cache[name]
        path = self._checked(name)
        if path is None:
            raise NotFound(f"no image {name!r} in the served folder")
        image = imread(path)
        self._cache[name] = image
        while len(self._cache) > 4:
            self._cache.popitem(last=False)
        return image

    def truth(self, name: str) -> Any | None:
        """The truth of image ``name`` (by file stem), if any; uploads have none."""
        if name.startswith(UPLOAD + "/"):
            return None
        return self.truths.get(file_stem(name))

    def upload(self, filename: str, data: bytes) -> str:
        """Decode an uploaded file (bounded like every read) and keep it; its name."""
        safe = _safe_filename(filename)
        if not safe.lower().endswith(IMAGE_SUFFIXES):
            raise ValueError(f"{safe}: uploads must be images ({', '.join(IMAGE_SUFFIXES)})")
        with tempfile.TemporaryDirectory(prefix="segscope-upload-") as work:
            path = Path(work) / safe
            path.write_bytes(data)
            try:
                image = imread(path)
            except (OSError, ValueError) as exc:
                raise ValueError(str(exc).replace(str(path), safe)) from None
        name = f"{UPLOAD}/{secrets.token_hex(6)}/{safe}"
        self._uploads[name] = image
        while len(self._uploads) > self.keep:
            self._uploads.popitem(last=False)
        return name
