"""Prompts (clicks, boxes, scribbles, a previous mask) and the registry of methods that follow them.

A user points at what they want: positive clicks on an object, negative clicks where a result
leaked, a box around an object, a scribble painted over it, or the previous result to correct.
:func:`encode_prompts` turns every kind into one :class:`Seeds`: voxels known to belong to an
object (``sure``: its id) or to the background (``sure == BACKGROUND``), and voxels likely to
belong to one (``likely``: inside its box, or in the previous mask). A prompted method is a
function ``f(image, seeds, **options) -> labels`` registered with the prompt kinds it follows
(:func:`register_prompted`); :func:`segscope.prompt` checks the prompts against that declaration,
encodes them and runs it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .registry import keyword_parameters, parse_numpydoc
from .result import Segmentation
from .textvalues import convert_all

__all__ = [
    "BACKGROUND",
    "KINDS",
    "PromptedMethod",
    "Seeds",
    "click_disc",
    "encode_prompts",
    "get_prompted",
    "list_prompted",
    "register_prompted",
]

BACKGROUND = -1
"""``Seeds.sure`` of voxels the user marked as background (negative clicks and scribbles)."""
KINDS = ("points", "boxes", "scribbles", "mask")
"""The kinds of prompt."""


@dataclass(frozen=True)
class Seeds:
    """All the prompts of one call, as label images of the image's shape."""

    sure: np.ndarray
    """int32: 0 unknown, an object's id where the user marked it, :data:`BACKGROUND` where they
    marked background. Later prompts win: clicks over scribbles over boxes and masks."""
    likely: np.ndarray
    """int32: an object's id inside its box or its previous mask, else 0."""
    objects: tuple[int, ...]
    """The objects' ids, sorted."""
    boxes: dict[int, tuple[int, int, int, int]] = field(default_factory=dict)
    """(row0, col0, row1, col1) of each boxed object, end exclusive."""
    outside_boxes_is_background: bool = False
    """Every object has a box: what lies outside all of them is background."""

    def positive(self, obj: int) -> np.ndarray:
        """Where object ``obj`` is sure."""
        return self.sure == obj

    def negative(self, obj: int) -> np.ndarray:
        """Where object ``obj`` is surely not: background marks and other objects' marks, and
        outside every box when each object has one."""
        out = (self.sure != 0) & (self.sure != obj)
        if self.outside_boxes_is_background:
            out |= self.likely == 0
        return out

    def window(self, margin: float = 0.5, minimum: int = 80) -> tuple[slice, slice]:
        """The rows and columns around every prompt (sure and likely), grown by ``margin`` of
        their extent (at least ``minimum`` pixels) and clipped to the image: where a method needs
        to look, so that its cost follows the object rather than the image."""
        marked = (self.sure > 0) | (self.likely > 0)
        if not marked.any():
            marked = self.sure != 0
        rows, cols = np.nonzero(marked)
        height, width = self.sure.shape[:2]
        if rows.size == 0:
            return slice(0, height), slice(0, width)
        r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
        dr = max(minimum, int(margin * (r1 - r0)))
        dc = max(minimum, int(margin * (c1 - c0)))
        return slice(max(0, r0 - dr), min(height, r1 + dr)), slice(max(0, c0 - dc), min(width, c1 + dc))

    def markers(self) -> np.ndarray:
        """One int32 marker image for multi-label methods (random walker, watershed, region
        growing): 0 unknown, 1 background, 2 + k the k-th object of :attr:`objects`.

        An object with no sure pixel is seeded at the centre of its likely region (the point
        farthest from its edge). The border of the image (a window around the prompts) is
        background where nothing marks it and no box or previous mask covers it: a prompted object
        that touches it is corrected by a positive click there."""
        from scipy import ndimage

        out = np.zeros(self.sure.shape, np.int32)
        out[self.sure == BACKGROUND] = 1
        if self.outside_boxes_is_background:
            out[self.likely == 0] = 1
        frame = np.zeros(out.shape, bool)
        frame[[0, -1], :] = True
        frame[:, [0, -1]] = True
        out[frame & (self.sure == 0) & (self.likely == 0)] = 1
        for k, obj in enumerate(self.objects):
            mine = self.sure == obj
            if not mine.any():
                region = self.likely == obj
                if not region.any():
                    continue
                depth = ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
                mine = np.zeros_like(region)
                mine[np.unravel_index(int(np.argmax(depth)), depth.shape)] = True
            out[mine] = 2 + k
        return out

    def connected(self, labels: np.ndarray) -> np.ndarray:
        """``labels`` with each object kept only where it is connected (8-connectivity) to its own
        sure marks, or to its likely region when it has none: a colour model that also takes a
        similar object elsewhere in the window does not make it part of this one."""
        from scipy import ndimage

        out = np.zeros_like(labels)
        for obj in self.objects:
            mine = labels == obj
            anchor = self.sure == obj
            if not anchor.any():
                anchor = self.likely == obj
            pieces, _ = ndimage.label(mine, structure=np.ones((3, 3), bool))
            keep = np.unique(pieces[anchor & mine])
            out[np.isin(pieces, keep[keep > 0])] = obj
        return out

    def labels_from_markers(self, labels: np.ndarray) -> np.ndarray:
        """Marker labels (1 background, 2 + k object k) back to object ids (0 background)."""
        lut = np.array([0, 0, *self.objects], np.int32)
        return lut[np.clip(labels, 0, len(lut) - 1)]

    def cropped(self, window: tuple[slice, slice]) -> Seeds:
        """These seeds inside ``window``; outside it is background (boxes moved into it)."""
        r, c = window
        boxes = {
            k: (max(b[0] - r.start, 0), max(b[1] - c.start, 0), b[2] - r.start, b[3] - c.start)
            for k, b in self.boxes.items()
        }
        return Seeds(
            self.sure[window], self.likely[window], self.objects, boxes, self.outside_boxes_is_background
        )


def click_disc(shape: tuple[int, ...], row: int, col: int, radius: int) -> tuple[slice, slice, np.ndarray]:
    """(rows, cols, inside): the bounding slices of a click's disc of ``radius`` at (row, col), cut to
    ``shape``, and which of their pixels the disc covers."""
    r0, r1 = max(0, row - radius), min(shape[0], row + radius + 1)
    c0, c1 = max(0, col - radius), min(shape[1], col + radius + 1)
    yy, xx = np.ogrid[r0:r1, c0:c1]
    return slice(r0, r1), slice(c0, c1), (yy - row) ** 2 + (xx - col) ** 2 <= radius**2


def encode_prompts(
    shape: tuple[int, int],
    *,
    points: Any = None,
    boxes: Any = None,
    scribbles: Any = None,
    mask: Any = None,
    click_radius: int = 3,
) -> Seeds:
    """One :class:`Seeds` from every kind of prompt.

    Parameters
    ----------
    shape : (height, width)
    points : (N, 3) array-like of (row, col, label), optional
        ``label`` k >= 1: a positive click on object k; 0: a negative click (background).
        (row, col) pairs alone are positive clicks on object 1.
    boxes : (M, 4) or (M, 5) array-like, optional
        (row0, col0, row1, col1[, id]) per object, end exclusive; without ids box m is object m + 1.
    scribbles : (H, W) int array, optional
        k >= 1 paints object k, -1 paints background (erases), 0 leaves a pixel alone.
    mask : (H, W) int array or Segmentation, optional
        A previous result to refine: its segment ids are the objects, its pixels their likely
        extent (new clicks then correct it).
    click_radius : int
        Clicks mark a disc of this radius (pixels), as interactive tools do.

    Examples
    --------
    >>> seeds = encode_prompts((5, 6), points=[(2, 1, 1), (2, 4, 0)], click_radius=0)
    >>> seeds.sure.tolist()[2], seeds.objects
    ([0, 1, 0, 0, -1, 0], (1,))
    """
    height, width = int(shape[0]), int(shape[1])
    sure = np.zeros((height, width), np.int32)
    likely = np.zeros((height, width), np.int32)
    objects: set[int] = set()
    if mask is not None:
        labels = mask.labels if isinstance(mask, Segmentation) else np.asarray(mask)
        if labels.shape != (height, width):
            raise ValueError(f"the mask's shape {labels.shape} differs from the image's {(height, width)}")
        if labels.dtype == bool:
            labels = labels.astype(np.int32)
        if not np.issubdtype(labels.dtype, np.integer) or (labels.size and labels.min() < 0):
            raise ValueError("a mask prompt is a label image: 0 background, object ids above")
        likely[:] = labels
        objects.update(int(v) for v in np.unique(labels) if v > 0)
    box_of: dict[int, tuple[int, int, int, int]] = {}
    if boxes is not None:
        array = np.asarray(boxes, np.int64).reshape(-1, np.asarray(boxes).shape[-1] if np.ndim(boxes) else 4)
        if array.shape[1] not in (4, 5):
            raise ValueError(f"boxes are rows of (row0, col0, row1, col1[, id]); got shape {array.shape}")
        for m, row in enumerate(array):
            r0, c0, r1, c1 = (int(v) for v in row[:4])
            obj = int(row[4]) if array.shape[1] == 5 else m + 1
            if obj < 1:
                raise ValueError(f"box {m}: object ids start at 1, got {obj}")
            r0, r1 = sorted((max(0, min(height, r0)), max(0, min(height, r1))))
            c0, c1 = sorted((max(0, min(width, c0)), max(0, min(width, c1))))
            if r1 - r0 < 1 or c1 - c0 < 1:
                raise ValueError(
                    f"box {m} ({row[:4].tolist()}) covers no pixel of the {height}x{width} image"
                )
            region = likely[r0:r1, c0:c1]
            region[region == 0] = obj
            box_of[obj] = (r0, c0, r1, c1)
            objects.add(obj)
    if scribbles is not None:
        painted = np.asarray(scribbles)
        if painted.shape != (height, width) or not np.issubdtype(painted.dtype, np.integer):
            raise ValueError(
                f"scribbles are an integer image of shape {(height, width)}: object ids, -1 for "
                f"background, 0 for none; got {painted.dtype} {painted.shape}"
            )
        if painted.size and painted.min() < BACKGROUND:
            raise ValueError("scribbles hold object ids (>= 1), -1 (background) or 0 (none)")
        sure[painted != 0] = painted[painted != 0]
        objects.update(int(v) for v in np.unique(painted) if v > 0)
    if points is not None:
        clicks = np.asarray(points, np.int64)
        if clicks.ndim != 2 or clicks.shape[1] not in (2, 3):
            raise ValueError(f"points are rows of (row, col[, label]); got shape {clicks.shape}")
        if clicks.shape[1] == 2:
            clicks = np.hstack([clicks, np.ones((len(clicks), 1), np.int64)])
        for row, col, label in clicks.tolist():
            if not (0 <= row < height and 0 <= col < width):
                raise ValueError(f"click ({row}, {col}) lies outside the {height}x{width} image")
            if label < 0:
                raise ValueError(f"click ({row}, {col}): label {label}; 0 is negative, k >= 1 object k")
            rs, cs, disc = click_disc((height, width), row, col, click_radius)
            sure[rs, cs][disc] = label if label > 0 else BACKGROUND
            if label > 0:
                objects.add(label)
    if not objects:
        raise ValueError("no object prompted: give a positive click, a box, an object scribble or a mask")
    every_boxed = bool(box_of) and objects <= set(box_of)
    return Seeds(sure, likely, tuple(sorted(objects)), box_of, every_boxed)


# ------------------------------------------------------------------------------------ registry
PromptedFunction = Callable[..., np.ndarray]


@dataclass(frozen=True)
class PromptedMethod:
    """A method that follows prompts: ``function(image, seeds, **options) -> labels``."""

    name: str
    kinds: tuple[str, ...]
    function: PromptedFunction
    summary: str

    @property
    def options(self) -> dict[str, Any]:
        """Its keyword options and their defaults."""
        return {p.name: p.default for p in keyword_parameters(self.function)}

    def check_options(self, names: Iterable[str]) -> None:
        """Refuse option names the method does not take: a TypeError listing the ones it does."""
        options = self.options
        unknown = sorted(set(names) - set(options))
        if unknown:
            raise TypeError(f"prompted method {self.name!r} has no option {', '.join(unknown)}; its options: "
                            f"{', '.join(options) or 'none'}")

    def options_from_text(self, values: Mapping[str, str]) -> dict[str, Any]:
        """Options typed as text (``-p gamma=0.5``, a form field), converted by the function's
        annotations; an unknown one is a TypeError listing the options."""
        self.check_options(values)
        return convert_all(values, self.function, what=f"prompted method {self.name!r}")


_PROMPTED: dict[str, PromptedMethod] = {}


def register_prompted(name: str, *, kinds: Sequence[str]) -> Callable[[PromptedFunction], PromptedFunction]:
    """Declare ``function(image, seeds, *, option=...) -> (H, W) labels`` as prompted method
    ``name`` following the prompt ``kinds`` (of :data:`KINDS`)."""
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise ValueError(f"prompted method {name!r}: unknown prompt kinds {unknown}; kinds are {KINDS}")

    def register(function: PromptedFunction) -> PromptedFunction:
        if name in _PROMPTED:
            raise ValueError(f"a prompted method named {name!r} is already registered")
        summary = parse_numpydoc(function.__doc__ or "")[0]
        _PROMPTED[name] = PromptedMethod(name, tuple(kinds), function, summary)
        return function

    return register


def get_prompted(name: str) -> PromptedMethod:
    try:
        return _PROMPTED[name]
    except KeyError:
        raise ValueError(
            f"no prompted method {name!r}; prompted methods: {', '.join(sorted(_PROMPTED))}"
        ) from None


def list_prompted() -> list[PromptedMethod]:
    """Every prompted method, by name."""
    return [_PROMPTED[k] for k in sorted(_PROMPTED)]


def given_kinds(**prompts: Any) -> list[str]:
    """The kinds of prompt given (not None)."""
    return [kind for kind in KINDS if prompts.get(kind) is not None]


def check_kinds(method: PromptedMethod, given: Mapping[str, Any]) -> None:
    """Refuse prompts of a kind ``method`` does not follow, naming the methods that do."""
    refused = [kind for kind in given_kinds(**given) if kind not in method.kinds]
    if refused:
        able = ", ".join(m.name for m in list_prompted() if set(refused) <= set(m.kinds))
        raise ValueError(
            f"prompted method {method.name!r} follows {', '.join(method.kinds)}; not "
            f"{', '.join(refused)} (methods that do: {able or 'none'})"
        )
