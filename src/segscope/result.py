"""The one result type: :class:`Segmentation`.

Every method in segscope, classical or deep, returns a :class:`Segmentation`; every metric, file
format and picture takes one. Its fields are declared and validated at construction, so a malformed
result fails where it is made, with a message that says what is wrong.

Conventions
-----------
``labels`` is an (H, W) int32 image in which 0 is background or void and each positive value is the
id of one segment. What a segment *means* depends on ``kind``:

* ``"regions"``: an unlabelled partition (watershed, superpixels, graph-based). Segments have no
  category and no score.
* ``"semantic"``: one segment per class present. A segment's id is ``category + 1`` so that class 0
  (often "background", sometimes "sky") is still a segment and 0 stays free for void pixels.
  :meth:`Segmentation.class_map` gives the familiar per-pixel class index image.
* ``"instance"``: one segment per object, with a category and usually a score. Instances may overlap:
  ``masks`` (N, H, W) holds each object's full mask, and ``labels`` is the non-overlapping view in
  which the higher-scoring instance wins.
* ``"panoptic"``: every segment has a category and is a *thing* (a countable object) or *stuff*.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

import numpy as np

__all__ = ["KINDS", "Provenance", "Segment", "Segmentation"]

Kind = Literal["regions", "semantic", "instance", "panoptic"]
KINDS: tuple[str, ...] = get_args(Kind)
"""The kinds of result, which are also the tasks: defined here once."""


def present_ids(labels: np.ndarray) -> np.ndarray:
    """Sorted positive values present in a non-negative integer label image.

    A bincount is O(n) where ``np.unique`` sorts; it is used whenever the largest label is not
    much larger than the image, which is nearly always.
    """
    if labels.size == 0:
        return np.zeros(0, np.int32)
    if labels.dtype == np.int32:
        from ._labelscan import present_positive

        return present_positive(np.ascontiguousarray(labels).ravel())
    top = int(labels.max())
    if top <= max(4 * labels.size, 1 << 16):
        counts = np.bincount(labels.ravel().astype(np.intp, copy=False), minlength=top + 1)
        found = np.flatnonzero(counts)
    else:
        found = np.unique(labels)
    return found[found > 0].astype(np.int32)


def _extremes(labels: np.ndarray) -> tuple[int, int]:
    """Smallest and largest value, in one pass where OpenCV can (it reads int32 and smaller)."""
    if labels.dtype in (np.int32, np.uint8, np.uint16, np.int16, np.int8):
        import cv2

        flat = np.ascontiguousarray(labels).reshape(-1, labels.shape[-1])  # OpenCV takes 2-D arrays
        low, high, _, _ = cv2.minMaxLoc(flat)
        return int(low), int(high)
    return int(labels.min()), int(labels.max())


@dataclass(frozen=True)
class Provenance:
    """Where a result came from: the method, its full parameters, what it chose (``details``: the
    thresholds a threshold method picked, the number of markers ...), time taken, package version."""

    method: str
    parameters: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float | None = None
    version: str | None = None

    def __post_init__(self) -> None:
        # Parameters are stored as plain JSON values so that a saved result loads back equal.
        for name in ("parameters", "details"):
            plain = json.loads(json.dumps(dict(getattr(self, name)), default=_json_default))
            object.__setattr__(self, name, plain)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Segment:
    """One segment of a :class:`Segmentation` (a read-only view; derived fields are computed)."""

    id: int
    category: int | None
    score: float | None
    is_thing: bool
    area: int
    """Pixels (voxels in a volume) of the segment."""
    bbox: tuple[int, ...]
    """(row_min, col_min, row_max, col_max), max exclusive, as in scikit-image's ``regionprops``;
    in a volume (z_min, row_min, col_min, z_max, row_max, col_max)."""


def _as_int_array(values: Iterable[int] | np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold integers, got dtype {arr.dtype}")
    return arr.astype(np.int32, copy=False)


class Segmentation:
    """A segmentation of one (H, W) image or (Z, H, W) volume: labels, per-segment facts, and
    optional extras.

    Parameters
    ----------
    labels : (H, W) or (Z, H, W) int32 ndarray
        0 is background or void; each positive value is one segment's id. Other integer dtypes are
        accepted if their values fit in int32; floats and bools are refused.
    kind : {"regions", "semantic", "instance", "panoptic"}
        What the segments mean (see the module docstring).
    ids : sequence of int, optional
        Segment ids, unique and positive. Default: the ids present in ``labels`` (or 1..N for ``masks``).
    categories : sequence of int, optional
        Category of each segment, in ``ids`` order; -1 (or None) for no category. Required for
        semantic, instance and panoptic results. For ``semantic``, ``ids`` must be ``categories + 1``.
    scores : sequence of float, optional
        Confidence of each segment; NaN (or None) where not scored.
    is_thing : sequence of bool, optional
        Whether each segment is a countable object. Default: True for instances, False otherwise.
    masks : (N, H, W) or (N, Z, H, W) bool ndarray, optional
        Full, possibly overlapping instance masks, aligned with ``ids``. Only for ``instance``.
    probabilities : (C, H, W) or (C, Z, H, W) float ndarray, optional
        Per-class probabilities of a soft semantic output.
    class_names : sequence of str, optional
        Name of each category index.
    provenance : Provenance, optional
        The method, parameters, seconds taken and package version that produced the result.
    spacing : sequence of float, optional
        The size of a pixel (voxel) along each axis, slowest first (a volume's (z, y, x)), in the
        image's units; None when not known. Surface distances use it.

    Raises
    ------
    ValueError, TypeError
        When shapes, dtypes or ids are inconsistent; the message names the field and the values.

    Examples
    --------
    >>> import numpy as np
    >>> seg = Segmentation.from_labels(np.array([[0, 1], [2, 2]]))
    >>> [s.area for s in seg.segments]
    [1, 2]
    """

    __slots__ = (
        "_categories",
        "_class_source",
        "_ids",
        "_is_thing",
        "_labels",
        "_scores",
        "class_names",
        "kind",
        "masks",
        "probabilities",
        "provenance",
        "spacing",
    )

    kind: str
    masks: np.ndarray | None
    probabilities: np.ndarray | None
    class_names: tuple[str, ...] | None
    provenance: Provenance | None
    spacing: tuple[float, ...] | None
    _labels: np.ndarray | None
    _class_source: tuple[np.ndarray, int | None] | None
    _ids: np.ndarray
    _categories: np.ndarray
    _scores: np.ndarray
    _is_thing: np.ndarray

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Segmentation is immutable: {name!r} cannot be set; build a new result "
                             "(with_provenance, select, ...)")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Segmentation is immutable: {name!r} cannot be deleted")

    def __getstate__(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in Segmentation.__slots__}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickling (results sent between processes) restores the fields as they were; they
        were validated when the result was built."""
        for name, value in state.items():
            object.__setattr__(self, name, value)

    def __init__(
        self,
        labels: np.ndarray,
        kind: Kind,
        *,
        ids: Sequence[int] | np.ndarray | None = None,
        categories: Sequence[int | None] | np.ndarray | None = None,
        scores: Sequence[float | None] | np.ndarray | None = None,
        is_thing: Sequence[bool] | np.ndarray | None = None,
        masks: np.ndarray | None = None,
        probabilities: np.ndarray | None = None,
        class_names: Sequence[str] | None = None,
        provenance: Provenance | None = None,
        spacing: Sequence[float] | None = None,
    ) -> None:
        self._init(labels, kind, ids=ids, categories=categories, scores=scores, is_thing=is_thing,
                   masks=masks, probabilities=probabilities, class_names=class_names,
                   provenance=provenance, spacing=spacing)

    def _init(
        self,
        labels: np.ndarray | None,
        kind: Kind,
        *,
        ids: Sequence[int] | np.ndarray | None = None,
        categories: Sequence[int | None] | np.ndarray | None = None,
        scores: Sequence[float | None] | np.ndarray | None = None,
        is_thing: Sequence[bool] | np.ndarray | None = None,
        masks: np.ndarray | None = None,
        probabilities: np.ndarray | None = None,
        class_names: Sequence[str] | None = None,
        provenance: Provenance | None = None,
        present: np.ndarray | None = None,
        scan: bool = True,
        class_source: tuple[np.ndarray, int | None] | None = None,
        spacing: Sequence[float] | None = None,
    ) -> None:
        """Validate and set every field. ``present``: the ids in ``labels``, when already known;
        ``scan=False`` (int32 labels whose values the caller guarantees) skips the per-pixel checks;
        ``class_source``: (uint8 class map, its void value) from which the labels are made on first
        use (``labels`` is then None)."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        if class_source is not None:
            shape = class_source[0].shape
        else:
            labels = np.asarray(labels)
            if labels.ndim not in (2, 3):
                raise ValueError(f"labels must be a 2-D (H, W) or 3-D (Z, H, W) array, got shape "
                                 f"{labels.shape}")
            if labels.dtype == bool or not np.issubdtype(labels.dtype, np.integer):
                raise TypeError(f"labels must be an integer array, got dtype {labels.dtype}")
            if not scan and labels.dtype != np.int32:
                raise TypeError(f"unscanned labels must be int32, got {labels.dtype}")
            if labels.size and scan:
                low, high = _extremes(labels)
                if low < 0 or high > np.iinfo(np.int32).max:
                    raise ValueError(f"labels must lie in [0, 2**31 - 1], got range [{low}, {high}]")
            labels = np.ascontiguousarray(labels, dtype=np.int32)
            shape = labels.shape

        if masks is not None:
            if kind != "instance":
                raise ValueError(f"masks are only for instance results, got kind={kind!r}")
            masks = np.asarray(masks)
            if masks.dtype != bool:
                raise TypeError(f"masks must be a bool array, got dtype {masks.dtype}")
            if masks.shape[1:] != shape:
                raise ValueError(
                    f"masks must have shape (N, {', '.join(map(str, shape))}), got {masks.shape}"
                )

        if present is None:
            if labels is None:
                raise ValueError("a result made from a class map is given the ids present")
            present = present_ids(labels)
        if ids is None:
            if masks is not None:
                ids_arr = np.arange(1, masks.shape[0] + 1, dtype=np.int32)
            else:
                ids_arr = present
        else:
            ids_arr = _as_int_array(ids, "ids")
        n = ids_arr.size
        if n and ids_arr.min() <= 0:
            raise ValueError(f"segment ids must be positive, got {ids_arr[ids_arr <= 0][:5].tolist()}")
        uniq, counts = np.unique(ids_arr, return_counts=True)
        if (counts > 1).any():
            raise ValueError(f"duplicate segment ids: {uniq[counts > 1][:10].tolist()}")
        if masks is not None and masks.shape[0] != n:
            raise ValueError(f"masks has {masks.shape[0]} masks but there are {n} segment ids")
        unknown = np.setdiff1d(present, ids_arr)
        if unknown.size:
            raise ValueError(
                f"labels contain ids with no segment entry: {unknown[:10].tolist()}"
                f"{' ...' if unknown.size > 10 else ''}"
            )

        cats = self._per_segment(categories, n, "categories", -1, np.int32)
        scs = self._per_segment(scores, n, "scores", np.nan, np.float32)
        if is_thing is None:
            things = np.full(n, kind == "instance", dtype=bool)
        else:
            things = np.asarray(is_thing, dtype=bool)
            if things.shape != (n,):
                raise ValueError(f"is_thing must have {n} entries, got shape {things.shape}")

        if kind == "regions":
            if (cats != -1).any():
                raise ValueError("regions results have no categories; use kind='semantic'")
        elif n and (cats < 0).any():
            raise ValueError(f"every segment of a {kind} result needs a category >= 0: pass categories "
                             "(from_labels(..., categories={segment id: category}), e.g. all 0 for one "
                             "class of object)")
        if kind == "semantic" and not np.array_equal(ids_arr, cats + 1):
            raise ValueError("semantic segment ids must equal category + 1 (0 is left for void)")
        if kind == "instance" and not things.all():
            raise ValueError("every segment of an instance result is a thing")

        if class_names is not None:
            class_names = tuple(str(c) for c in class_names)
            if n and cats.max() >= len(class_names):
                raise ValueError(
                    f"category {int(cats.max())} has no name: class_names has "
                    f"{len(class_names)} entries"
                )
        if probabilities is not None:
            probabilities = self._checked_probabilities(probabilities, shape, class_names)
        if provenance is not None and not isinstance(provenance, Provenance):
            raise TypeError(f"provenance must be a Provenance, got {type(provenance).__name__}")

        fields = {"_labels": None if class_source is not None else labels, "_class_source": class_source,
                  "kind": kind, "_ids": ids_arr, "_categories": cats, "_scores": scs, "_is_thing": things,
                  "masks": masks, "probabilities": probabilities, "class_names": class_names,
                  "provenance": provenance, "spacing": _checked_spacing(spacing, len(shape))}
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    @staticmethod
    def _checked_probabilities(
        probabilities: np.ndarray, shape: tuple[int, ...], class_names: Sequence[str] | None
    ) -> np.ndarray:
        probabilities = np.asarray(probabilities)
        if probabilities.shape[1:] != shape:
            raise ValueError(
                f"probabilities must have shape (C, {', '.join(map(str, shape))}), got {probabilities.shape}"
            )
        if not np.issubdtype(probabilities.dtype, np.floating):
            raise TypeError(f"probabilities must be floats, got {probabilities.dtype}")
        if class_names is not None and probabilities.shape[0] != len(class_names):
            raise ValueError(
                f"probabilities has {probabilities.shape[0]} classes but class_names has "
                f"{len(class_names)}"
            )
        return probabilities

    @property
    def labels(self) -> np.ndarray:
        """The (H, W) int32 label image: 0 void, each positive value one segment's id."""
        if self._labels is None:
            # A semantic result built from an 8-bit class map makes its labels on first use:
            # methods that answer with a class map (thresholds) then cost no more than the map.
            source, void = self._class_source  # type: ignore[misc]
            lut = np.arange(1, 257, dtype=np.int32)
            if void is not None:
                lut[void] = 0
            object.__setattr__(self, "_labels", lut[source])  # a cache of a value already fixed
        return self._labels  # type: ignore[return-value]

    @staticmethod
    def _per_segment(
        values: Sequence[Any] | np.ndarray | None, n: int, name: str, missing: Any, dtype: Any
    ) -> np.ndarray:
        if values is None:
            return np.full(n, missing, dtype=dtype)
        if isinstance(values, np.ndarray):
            arr = values.astype(dtype, copy=True)
        else:
            arr = np.array([missing if v is None else v for v in values], dtype=dtype)
        if arr.shape != (n,):
            raise ValueError(f"{name} must have {n} entries (one per segment), got shape {arr.shape}")
        return arr

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_labels(
        cls,
        labels: np.ndarray,
        *,
        kind: Kind = "regions",
        categories: dict[int, int] | None = None,
        scores: dict[int, float] | None = None,
        class_names: Sequence[str] | None = None,
        provenance: Provenance | None = None,
        spacing: Sequence[float] | None = None,
    ) -> Segmentation:
        """Build a result from a label image (or volume); ``categories`` maps segment id to
        category."""
        labels = np.asarray(labels)
        if labels.size and labels.min() < 0:
            raise ValueError(f"labels must be non-negative, got minimum {labels.min()}")
        for name, given in (("categories", categories), ("scores", scores)):
            if given is not None and not isinstance(given, Mapping):
                raise TypeError(f"{name} must map segment id to value (a dict), got "
                                f"{type(given).__name__}")
        ids = present_ids(labels)
        cats = None if categories is None else [categories.get(int(i)) for i in ids]
        scs = None if scores is None else [scores.get(int(i)) for i in ids]
        result = cls.__new__(cls)
        result._init(labels, kind, ids=ids, categories=cats, scores=scs, class_names=class_names,
                     provenance=provenance, present=ids, spacing=spacing)
        return result

    @classmethod
    def from_known_ids(
        cls, labels: np.ndarray, kind: Kind, *, ids: np.ndarray | Sequence[int], **fields: Any
    ) -> Segmentation:
        """The fast constructor, for methods that know which ids their int32 labels hold.

        Every field is validated as by the constructor, except the per-pixel scan of ``labels``
        for the ids present and their range: the caller guarantees that ``labels`` is int32, that
        its positive values are exactly ``ids``, and that it does not change it afterwards. OpenCV's
        component counts and sequential relabelling give such labels.

        Examples
        --------
        >>> labels = np.array([[0, 1], [2, 2]], np.int32)
        >>> len(Segmentation.from_known_ids(labels, "regions", ids=[1, 2]))
        2
        """
        result = cls.__new__(cls)
        result._init(labels, kind, ids=ids, present=np.asarray(ids, np.int32), scan=False, **fields)
        return result

    @classmethod
    def from_class_map(
        cls,
        class_map: np.ndarray,
        *,
        num_classes: int | None = None,
        class_names: Sequence[str] | None = None,
        void: int | None = None,
        probabilities: np.ndarray | None = None,
        provenance: Provenance | None = None,
        copy: bool = True,
        spacing: Sequence[float] | None = None,
    ) -> Segmentation:
        """Build a semantic result from a per-pixel class index image.

        ``void`` marks pixels that belong to no class (for example 255 in VOC, 11 in CamVid).
        An 8-bit (or bool) map is kept as it is and the int32 labels are made on first use, so a
        method that answers with a class map (every threshold) costs no more than the map;
        ``copy=False`` keeps the caller's array itself, which the caller must then leave alone.
        """
        class_map = np.asarray(class_map)
        if class_map.ndim not in (2, 3):
            raise ValueError(f"class_map must be 2-D (H, W) or 3-D (Z, H, W), got shape {class_map.shape}")
        if class_map.dtype == bool:
            class_map = class_map.view(np.uint8)
        if class_map.dtype == np.uint8 and class_map.size:
            # A private copy by default: the result must not change when the caller's array does.
            return cls._from_byte_class_map(class_map.copy() if copy else class_map, num_classes=num_classes,
                                            class_names=class_names, void=void,
                                            probabilities=probabilities, provenance=provenance,
                                            spacing=spacing)
        if not np.issubdtype(class_map.dtype, np.integer):
            raise TypeError(f"class_map must be an integer array, got dtype {class_map.dtype}")
        valid = np.ones(class_map.shape, bool) if void is None else class_map != void
        if num_classes is None and class_names is not None:
            num_classes = len(class_names)
        if valid.any() and class_map[valid].min() < 0:
            raise ValueError("class indices must be non-negative")
        if num_classes is not None and valid.any() and class_map[valid].max() >= num_classes:
            raise ValueError(
                f"class index {int(class_map[valid].max())} out of range for {num_classes} classes"
            )
        labels = np.where(valid, class_map.astype(np.int32) + 1, 0).astype(np.int32)
        ids = present_ids(labels)
        return cls(labels, "semantic", ids=ids, categories=ids - 1, probabilities=probabilities,
                   spacing=spacing,
                   class_names=class_names, provenance=provenance)

    @classmethod
    def _from_byte_class_map(
        cls,
        class_map: np.ndarray,
        *,
        num_classes: int | None = None,
        class_names: Sequence[str] | None = None,
        void: int | None = None,
        probabilities: np.ndarray | None = None,
        provenance: Provenance | None = None,
        spacing: Sequence[float] | None = None,
    ) -> Segmentation:
        """:meth:`from_class_map` for a uint8 map the result keeps: one histogram pass validates
        it, and the int32 labels are made from it on first use."""
        import cv2

        class_map = np.ascontiguousarray(class_map)
        flat = class_map.reshape(-1, class_map.shape[-1])  # OpenCV's statistics take 2-D arrays
        low, high, _, _ = cv2.minMaxLoc(flat)
        if high - low <= 1 and (void is None or not low <= void <= high):
            # Two-class maps (every threshold): the extremes are the classes present.
            present = np.unique(np.array([low, high], np.int32))
        else:
            counts = cv2.calcHist([flat], [0], None, [256], [0, 256]).ravel()
            if void is not None and 0 <= void < 256:
                counts[void] = 0
            present = np.flatnonzero(counts).astype(np.int32)
        if num_classes is None and class_names is not None:
            num_classes = len(class_names)
        if num_classes is not None and present.size and present[-1] >= num_classes:
            raise ValueError(f"class index {int(present[-1])} out of range for {num_classes} classes")
        result = cls.__new__(cls)
        result._init(None, "semantic", ids=present + 1, categories=present, class_names=class_names,
                     probabilities=probabilities, provenance=provenance, present=present + 1,
                     class_source=(class_map, void if void is not None and 0 <= void < 256 else None),
                     spacing=spacing)
        return result

    @classmethod
    def from_masks(
        cls,
        masks: np.ndarray,
        *,
        scores: Sequence[float] | np.ndarray | None = None,
        categories: Sequence[int] | np.ndarray | None = None,
        class_names: Sequence[str] | None = None,
        provenance: Provenance | None = None,
        spacing: Sequence[float] | None = None,
    ) -> Segmentation:
        """Build an instance result from (N, H, W) or (N, Z, H, W) masks, which may overlap.

        ``labels`` becomes the non-overlapping view: where masks overlap, the higher score wins
        (the earlier mask on equal or missing scores).
        """
        masks = np.asarray(masks)
        if masks.ndim not in (3, 4):
            raise ValueError(f"masks must be (N, H, W) or (N, Z, H, W), got shape {masks.shape}")
        if masks.dtype != bool:
            raise TypeError(f"masks must be a bool array, got dtype {masks.dtype}")
        n = masks.shape[0]
        cats = np.zeros(n, np.int32) if categories is None else categories
        labels = _paint_by_score(masks, None if scores is None else np.asarray(scores, float))
        return cls(labels, "instance", ids=np.arange(1, n + 1), categories=cats, scores=scores,
                   masks=masks, class_names=class_names, provenance=provenance, spacing=spacing)

    # ------------------------------------------------------------------ views
    @property
    def shape(self) -> tuple[int, ...]:
        """(H, W), or (Z, H, W) for a volume."""
        grid = self._labels if self._labels is not None else self._class_source[0]  # type: ignore[index]
        return tuple(int(n) for n in grid.shape)

    @property
    def ndim(self) -> int:
        """2 for an image, 3 for a volume."""
        return len(self.shape)

    @property
    def ids(self) -> np.ndarray:
        return self._ids.copy()

    @property
    def categories(self) -> np.ndarray:
        """Category per segment (int32), -1 where there is none."""
        return self._categories.copy()

    @property
    def scores(self) -> np.ndarray:
        """Score per segment (float32), NaN where not scored."""
        return self._scores.copy()

    @property
    def is_thing(self) -> np.ndarray:
        return self._is_thing.copy()

    def __len__(self) -> int:
        return int(self._ids.size)

    def areas(self) -> np.ndarray:
        """Pixel count per segment, in ``ids`` order (full masks for instances)."""
        if self.masks is not None:
            return self.masks.reshape(len(self), int(np.prod(self.shape))).sum(axis=1).astype(np.int64)
        if not len(self):
            return np.zeros(0, np.int64)
        counts = np.bincount(self.labels.ravel(), minlength=int(self._ids.max()) + 1)
        return counts[self._ids].astype(np.int64)

    def bboxes(self) -> np.ndarray:
        """(N, 4) boxes ``(row_min, col_min, row_max, col_max)``, max exclusive; in a volume (N, 6)
        ``(z_min, row_min, col_min, z_max, row_max, col_max)``; zeros if empty."""
        from scipy import ndimage

        out = np.zeros((len(self), 2 * self.ndim), np.int64)
        if self.masks is not None:
            for k, mask in enumerate(self.masks):
                found = ndimage.find_objects(mask.view(np.uint8))
                if found and found[0] is not None:
                    out[k] = [s.start for s in found[0]] + [s.stop for s in found[0]]
            return out
        if not len(self):
            return out
        slices = ndimage.find_objects(self.labels, max_label=int(self._ids.max()))
        for k, seg_id in enumerate(self._ids):
            sl = slices[seg_id - 1]
            if sl is not None:
                out[k] = [s.start for s in sl] + [s.stop for s in sl]
        return out

    @property
    def segments(self) -> list[Segment]:
        """Per-segment facts, with area and bounding box derived."""
        areas, boxes = self.areas(), self.bboxes()
        return [
            Segment(
                id=int(i),
                category=None if c < 0 else int(c),
                score=None if np.isnan(s) else float(s),
                is_thing=bool(t),
                area=int(a),
                bbox=tuple(int(v) for v in b),
            )
            for i, c, s, t, a, b in zip(
                self._ids, self._categories, self._scores, self._is_thing, areas, boxes, strict=True
            )
        ]

    def instance_masks(self) -> np.ndarray:
        """(N, H, W) bool masks in ``ids`` order: ``masks`` if held, else cut from ``labels``."""
        if self.masks is not None:
            return self.masks
        return self.labels[None, :, :] == self._ids[:, None, None]

    def class_map(self, *, void: int = 255) -> np.ndarray:
        """Per-pixel category index image; ``void`` where no category applies.

        Raises ValueError for ``regions`` results, whose segments have no category.
        """
        if self.kind == "regions":
            raise ValueError("a regions result has no categories; it has no class map")
        if self._class_source is not None and self._labels is None:
            source, source_void = self._class_source
            if source_void is None or source_void == void:
                view = source.view()
                view.flags.writeable = False
                return view
        lut = np.full(int(self._ids.max(initial=0)) + 1, void, dtype=np.int64)
        lut[self._ids] = self._categories
        out = lut[self.labels]
        dtype = np.uint8 if out.min(initial=0) >= 0 and out.max(initial=0) <= 255 else np.int32
        return out.astype(dtype)

    # ------------------------------------------------------------------ conversions
    def to_semantic(self) -> Segmentation:
        """One segment per category: instances and panoptic things of a class are merged."""
        if self.kind == "semantic":
            return self
        if self.kind == "regions":
            raise ValueError("a regions result has no categories to make a semantic result from")
        lut = np.zeros(int(self._ids.max(initial=0)) + 1, dtype=np.int64)
        lut[self._ids] = self._categories + 1
        labels = lut[self.labels].astype(np.int32)
        ids = present_ids(labels)
        return Segmentation(labels, "semantic", ids=ids, categories=ids - 1,
                            class_names=self.class_names, provenance=self.provenance, spacing=self.spacing)

    def to_panoptic(self, *, thing_categories: Iterable[int] = ()) -> Segmentation:
        """A panoptic view of this result.

        Semantic results: each category in ``thing_categories`` is split into its connected
        components (8-connectivity), one thing each; other categories become one stuff segment.
        Instance results: each visible instance becomes a thing.
        """
        if self.kind == "panoptic":
            return self
        if self.kind == "regions":
            raise ValueError("a regions result has no categories to make a panoptic result from")
        if self.kind == "instance":
            visible = np.isin(self._ids, present_ids(self.labels))
            return Segmentation(
                self.labels, "panoptic", ids=self._ids[visible],
                categories=self._categories[visible], scores=self._scores[visible],
                is_thing=np.ones(int(visible.sum()), bool), class_names=self.class_names,
                provenance=self.provenance, spacing=self.spacing,
            )
        from scipy import ndimage

        things = set(int(c) for c in thing_categories)
        labels = np.zeros_like(self.labels)
        ids: list[int] = []
        cats: list[int] = []
        is_thing: list[bool] = []
        next_id = 1
        for seg_id, cat in zip(self._ids, self._categories, strict=True):
            region = self.labels == seg_id
            if int(cat) in things:
                comp, count = ndimage.label(region, structure=np.ones((3,) * region.ndim, bool))
                labels[region] = comp[region] + (next_id - 1)
                ids.extend(range(next_id, next_id + count))
                cats.extend([int(cat)] * count)
                is_thing.extend([True] * count)
                next_id += count
            else:
                labels[region] = next_id
                ids.append(next_id)
                cats.append(int(cat))
                is_thing.append(False)
                next_id += 1
        return Segmentation(labels, "panoptic", ids=ids, categories=cats, is_thing=is_thing,
                            class_names=self.class_names, provenance=self.provenance, spacing=self.spacing)

    def with_provenance(self, provenance: Provenance) -> Segmentation:
        """The same result with another provenance (results are treated as immutable).

        The fields were validated when this result was built, so they are shared, not re-checked.
        """
        if not isinstance(provenance, Provenance):
            raise TypeError(f"provenance must be a Provenance, got {type(provenance).__name__}")
        clone = object.__new__(Segmentation)
        for name in Segmentation.__slots__:
            object.__setattr__(clone, name, getattr(self, name))
        object.__setattr__(clone, "provenance", provenance)
        return clone

    # ------------------------------------------------------------------ selection
    def select(self, which: np.ndarray | Sequence[int] | Sequence[bool]) -> Segmentation:
        """The result with only some of its segments: a bool array over segments (``scores > 0.5``)
        or their positions. Pixels of the others become 0; ``masks`` and the per-segment fields
        follow; where instance masks overlap, the label view is painted again (best score wins).

        Examples
        --------
        >>> masks = np.zeros((3, 2, 2), bool); masks[0, 0] = masks[1, 1] = masks[2, :, 0] = True
        >>> seg = Segmentation.from_masks(masks, scores=[0.9, 0.2, 0.7])
        >>> strong = seg.select(seg.scores > 0.5)
        >>> strong.ids.tolist(), strong.labels.tolist()
        ([1, 3], [[1, 1], [3, 0]])
        """
        chosen = np.asarray(which)
        if chosen.dtype == bool:
            if chosen.shape != (len(self),):
                raise ValueError(f"a bool selection needs {len(self)} entries (one per segment), "
                                 f"got shape {chosen.shape}")
            index = np.flatnonzero(chosen)
        else:
            if chosen.size and not np.issubdtype(chosen.dtype, np.integer):
                raise TypeError(f"select takes bools or integer positions, got dtype {chosen.dtype}")
            index = chosen.astype(np.intp).ravel()
            if index.size and (index.min() < -len(self) or index.max() >= len(self)):
                raise IndexError(f"segment positions must lie in [0, {len(self)}), got {index.tolist()[:5]}")
        ids = self._ids[index]
        masks = None if self.masks is None else self.masks[index]
        if masks is not None:
            painted = _paint_by_score(masks, self._scores[index])  # 1..k, in selection order
            labels = np.concatenate([[0], ids]).astype(np.int32)[painted]
        else:
            lut = np.zeros(int(self._ids.max(initial=0)) + 1, np.int32)
            lut[ids] = ids
            labels = lut[self.labels]
        return Segmentation(labels, self.kind, ids=ids, categories=self._categories[index],  # type: ignore[arg-type]
                            scores=self._scores[index], is_thing=self._is_thing[index], masks=masks,
                            probabilities=self.probabilities, class_names=self.class_names,
                            provenance=self.provenance, spacing=self.spacing)

    def __getitem__(self, which: np.ndarray | Sequence[int] | Sequence[bool] | slice | int) -> Segmentation:
        """``seg[seg.scores > 0.5]``, ``seg[:10]``, ``seg[[0, 2]]``: :meth:`select`."""
        if isinstance(which, slice):
            which = np.arange(len(self))[which]
        elif isinstance(which, int | np.integer):
            which = [int(which)]
        return self.select(which)

    @staticmethod
    def concatenate(results: Sequence[Segmentation]) -> Segmentation:
        """One instance result holding the instances of several (of one image; for example two
        detectors' outputs). Ids become 1..N in order; class names must agree.

        Examples
        --------
        >>> a = Segmentation.from_masks(np.ones((1, 2, 2), bool), scores=[0.5])
        >>> len(Segmentation.concatenate([a, a]))
        2
        """
        if not results:
            raise ValueError("nothing to concatenate")
        first = results[0]
        for r in results:
            if r.kind != "instance":
                raise ValueError(f"concatenate joins instance results, got a {r.kind} result")
            if r.shape != first.shape:
                raise ValueError(f"results differ in shape: {first.shape} vs {r.shape}")
            if r.class_names != first.class_names:
                raise ValueError(f"results differ in class names: {first.class_names} vs {r.class_names}")
        masks = np.concatenate([r.instance_masks() for r in results])
        return Segmentation.from_masks(
            masks.reshape(-1, *first.shape),
            scores=np.concatenate([r._scores for r in results]),
            categories=np.concatenate([r._categories for r in results]),
            class_names=first.class_names, provenance=first.provenance)

    # ------------------------------------------------------------------ misc
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Segmentation):
            return NotImplemented
        def same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
            if a is None or b is None:
                return a is b
            return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))

        return (
            self.kind == other.kind
            and same(self.labels, other.labels)
            and same(self._ids, other._ids)
            and same(self._categories, other._categories)
            and same(self._scores, other._scores)
            and same(self._is_thing, other._is_thing)
            and same(self.masks, other.masks)
            and same(self.probabilities, other.probabilities)
            and self.class_names == other.class_names
            and self.provenance == other.provenance
            and self.spacing == other.spacing
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        method = f", method={self.provenance.method!r}" if self.provenance else ""
        return (
            f"Segmentation(kind={self.kind!r}, shape={self.shape}, segments={len(self)}"
            f"{', masks' if self.masks is not None else ''}"
            f"{', probabilities' if self.probabilities is not None else ''}{method})"
        )


def _checked_spacing(spacing: Sequence[float] | None, ndim: int) -> tuple[float, ...] | None:
    """``spacing`` as a tuple of one positive, finite size per axis, or None."""
    if spacing is None:
        return None
    values = tuple(float(v) for v in spacing)
    if len(values) != ndim or not all(np.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"spacing gives one positive size per axis ({ndim}), got {tuple(spacing)}")
    return values


def _paint_by_score(masks: np.ndarray, scores: np.ndarray | None) -> np.ndarray:
    """Non-overlapping label image from masks: the higher score wins, ties go to the earlier mask."""
    n = masks.shape[0]
    labels = np.zeros(masks.shape[1:], np.int32)
    if n == 0:
        return labels
    if scores is None or np.isnan(scores).all():
        order = np.arange(n)
    else:
        keyed = np.where(np.isnan(scores), -np.inf, scores)
        order = np.argsort(-keyed, kind="stable")
    # Paint from the lowest priority up so that the highest priority is painted last.
    for k in order[::-1]:
        labels[masks[k]] = k + 1
    return labels


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (tuple, set)):
        return list(value)
    return str(value)
