"""Names for objects that tiles agree on, and the joining of objects across tile seams.

An object's name is ``1 +`` the raster index (``row * width + col``) of its first pixel in the
whole image. Two tiles that both see an object whole compute the same name for it with no
communication. Pieces that cannot be named that way (components cut by a seam, objects cut by a
halo) get a provisional name above ``height * width`` and are joined afterwards with a union-find:
components where they touch across a seam, objects where two tiles' readings of the strip beside
a seam agree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .grid import Tile

__all__ = ["TileSummary", "UnionFind", "join_pieces", "object_names", "seam_strips"]


@dataclass
class TileSummary:
    """What a tile reports after stage 1: the names in its core, their pixel counts and first
    pixels (raster index in the whole image), and the names along its four edges."""

    ids: np.ndarray
    counts: np.ndarray
    firsts: np.ndarray
    top: np.ndarray
    bottom: np.ndarray
    left: np.ndarray
    right: np.ndarray

    @classmethod
    def of(cls, local: np.ndarray, lookup: np.ndarray, tile: Tile, *, width: int) -> TileSummary:
        """From the method's labels of a tile's core (``local``) and each label's name
        (``lookup``), in one linear pass."""
        values, first, counts = _first_pixels(local)
        ids = lookup[values]
        order = np.argsort(ids)
        ids, first, counts = ids[order], first[order], counts[order]
        rows, cols = np.divmod(first, local.shape[1])
        firsts = (tile.top + rows) * width + tile.left + cols
        return cls(ids, counts, firsts, lookup[local[0]], lookup[local[-1]], lookup[local[:, 0]],
                   lookup[local[:, -1]])

    def arrays(self) -> dict[str, np.ndarray]:
        return {"ids": self.ids, "counts": self.counts, "firsts": self.firsts, "top": self.top,
                "bottom": self.bottom, "left": self.left, "right": self.right}


def _first_pixels(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each non-zero label, the flat index of its first pixel in raster order and its pixel count
    (labels are a method's: non-negative and dense enough to count in an array as long as the
    largest)."""
    from ..classical._kernels import first_pixels_and_counts

    flat = np.ascontiguousarray(labels).ravel()
    if flat.size == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty
    first, counts = first_pixels_and_counts(flat, int(flat.max()) + 1)
    values = np.flatnonzero(counts)
    values = values[values != 0]
    return values, first[values], counts[values]


def object_names(labels: np.ndarray, tile: Tile, *, height: int, width: int, whole: bool,
                 stride: int) -> np.ndarray:
    """The name of each label of a padded tile (index: the label; 0 for 0).

    ``whole`` says whether objects that touch no inner halo edge are whole (style ``objects``);
    for ``components`` tiles are read without a halo and every piece is provisional. ``stride``
    exceeds the pixel count of the largest padded tile: provisional names of different tiles
    never collide.
    """
    padded_h, padded_w = labels.shape
    values, first, _ = _first_pixels(labels)
    rows, cols = np.divmod(first, padded_w)
    names = (tile.pad_top + rows) * width + (tile.pad_left + cols) + 1
    # Pieces that reach an edge of the padded window inside the image may be cut: provisional.
    cut = np.zeros(int(labels.max(initial=0)) + 1, bool)
    if not whole:
        cut[:] = True
    else:
        if tile.pad_top > 0:
            cut[labels[0]] = True
        if tile.pad_bottom < height:
            cut[labels[-1]] = True
        if tile.pad_left > 0:
            cut[labels[:, 0]] = True
        if tile.pad_right < width:
            cut[labels[:, -1]] = True
    provisional = values[cut[values]]
    if padded_h * padded_w >= stride:
        raise ValueError(f"stride {stride} must exceed the padded tile's {padded_h * padded_w} pixels")
    base = height * width + 1 + tile.index * stride
    lookup = np.zeros(len(cut), np.int64)
    lookup[values] = names
    lookup[provisional] = base + provisional
    lookup[0] = 0
    return lookup


_SIDES = ("north", "south", "west", "east")


def seam_strips(labels: np.ndarray, lookup: np.ndarray, tile: Tile) -> dict[str, np.ndarray]:
    """The names a tile gives to the strips on each side of its four seams.

    ``halo_<side>`` is the tile's own reading of the neighbour's core next to the seam (its halo);
    ``rim_<side>`` is its reading of its own core there, as wide as the halo. Comparing one tile's
    halo with the neighbour's rim tells which of their pieces are the same object.
    """
    core_rows, core_cols = tile.core_in_padded
    strips: dict[str, np.ndarray] = {}
    reach = {"north": tile.top - tile.pad_top, "south": tile.pad_bottom - tile.bottom,
             "west": tile.left - tile.pad_left, "east": tile.pad_right - tile.right}
    for side in _SIDES:
        n = reach[side]
        if n == 0:
            continue
        if side == "north":
            halo, rim = labels[:n, core_cols], labels[n:2 * n, core_cols]
        elif side == "south":
            halo, rim = labels[-n:, core_cols], labels[-2 * n:-n, core_cols]
        elif side == "west":
            halo, rim = labels[core_rows, :n], labels[core_rows, n:2 * n]
        else:
            halo, rim = labels[core_rows, -n:], labels[core_rows, -2 * n:-n]
        strips[f"halo_{side}"], strips[f"rim_{side}"] = lookup[halo], lookup[rim]
    return strips


class UnionFind:
    """Disjoint sets over arbitrary integer names; a set's root is its smallest name."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        parent = self.parent
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while x != root:  # path compression
            parent[x], x = root, parent.get(x, x)
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            if ra < rb:
                self.parent[rb] = ra
            else:
                self.parent[ra] = rb


def _seam_pairs(a: np.ndarray, b: np.ndarray, diagonal: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    """Pairs of names facing each other across a seam (edge ``a`` of one tile, ``b`` of the next)."""
    pairs = [(a, b)]
    if diagonal and len(a) > 1:
        pairs += [(a[:-1], b[1:]), (a[1:], b[:-1])]
    return pairs


def join_pieces(summaries: dict[int, TileSummary], tiles: list[Tile], *, rule: str, diagonal: bool,
                strip: Callable[[int, str], np.ndarray | None] | None = None) -> UnionFind:
    """Join the pieces of objects that tile seams cut, and the names two tiles gave one object.

    ``rule="touch"`` joins any two pieces that touch across a seam (connected components, which
    are read without a halo: exact). ``rule="overlap"`` compares, on each side of each seam, one
    tile's halo with the neighbour's rim (see :func:`seam_strips`) and joins two names whose pixels
    there have an intersection over union above one half: the same object, seen by both tiles.
    Distinct objects that merely touch share no pixels and are never joined. ``strip(index, key)``
    reads one strip of one tile (None when that side is the image's edge), so that only the four
    strips of one seam are in memory at a time.
    """
    found = UnionFind()
    by_position = {(t.row, t.col): t for t in tiles}

    def touch(a: np.ndarray, b: np.ndarray, with_diagonals: bool) -> None:
        for left, right in _seam_pairs(a, b, with_diagonals):
            both = (left != 0) & (right != 0) & (left != right)
            for x, y in set(zip(left[both].tolist(), right[both].tolist(), strict=True)):
                found.union(x, y)

    def overlap(halo: np.ndarray, rim: np.ndarray) -> None:
        h, w = min(halo.shape[0], rim.shape[0]), min(halo.shape[1], rim.shape[1])
        halo, rim = halo[:h, :w].ravel(), rim[:h, :w].ravel()
        differ = (halo != rim) & (halo != 0) & (rim != 0)
        if not differ.any():
            return  # every object here has the same name in both tiles already
        a_ids, a_counts = np.unique(halo[halo != 0], return_counts=True)
        b_ids, b_counts = np.unique(rim[rim != 0], return_counts=True)
        # Pairs of names as one integer key (positions in a_ids and b_ids): a fast 1-D count.
        ia = np.searchsorted(a_ids, halo[differ])
        ib = np.searchsorted(b_ids, rim[differ])
        keys, shared = np.unique(ia * len(b_ids) + ib, return_counts=True)
        ia, ib = np.divmod(keys, len(b_ids))
        union = a_counts[ia] + b_counts[ib] - shared
        for i, j in zip(ia[2 * shared > union].tolist(), ib[2 * shared > union].tolist(), strict=True):
            found.union(int(a_ids[i]), int(b_ids[j]))

    for tile in tiles:
        here = summaries[tile.index]
        east = by_position.get((tile.row, tile.col + 1))
        south = by_position.get((tile.row + 1, tile.col))
        if rule == "overlap":
            if strip is None:
                raise ValueError("rule='overlap' needs the tiles' seam strips")
            for neighbour, side, facing in ((east, "east", "west"), (south, "south", "north")):
                if neighbour is None:
                    continue
                halo, rim = strip(tile.index, f"halo_{side}"), strip(neighbour.index, f"rim_{facing}")
                if halo is not None and rim is not None:
                    overlap(halo, rim)
                halo, rim = strip(neighbour.index, f"halo_{facing}"), strip(tile.index, f"rim_{side}")
                if halo is not None and rim is not None:
                    overlap(halo, rim)
            continue
        if east is not None:
            touch(here.right, summaries[east.index].left, diagonal)
        if south is not None:
            touch(here.bottom, summaries[south.index].top, diagonal)
        if diagonal:
            south_east = by_position.get((tile.row + 1, tile.col + 1))
            if south_east is not None:
                touch(here.bottom[-1:], summaries[south_east.index].top[:1], False)
            south_west = by_position.get((tile.row + 1, tile.col - 1))
            if south_west is not None:
                touch(here.bottom[:1], summaries[south_west.index].top[-1:], False)
    return found
