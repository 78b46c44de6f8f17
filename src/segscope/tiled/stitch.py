"""Names for objects that tiles agree on, and the joining of objects across tile seams.

An object's name is ``1 +`` the raster index (``row * width + col``) of its first pixel in the
whole image. Two tiles that both see an object whole compute the same name for it with no
communication. Pieces that cannot be named that way (components cut by a seam, objects cut by a
halo) get a provisional name above ``height * width`` and are joined afterwards: each tile reports
the names along its four core edges, and the seams are scanned with a union-find.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from .grid import Tile

__all__ = ["TileSummary", "UnionFind", "join_pieces", "name_objects"]


@dataclass
class TileSummary:
    """What a tile reports after stage 1: the names in its core, their pixel counts, its edges."""

    ids: np.ndarray
    counts: np.ndarray
    top: np.ndarray
    bottom: np.ndarray
    left: np.ndarray
    right: np.ndarray

    @classmethod
    def of(cls, core: np.ndarray) -> TileSummary:
        ids, counts = np.unique(core, return_counts=True)
        keep = ids != 0
        return cls(ids[keep], counts[keep], core[0].copy(), core[-1].copy(), core[:, 0].copy(),
                   core[:, -1].copy())

    def arrays(self) -> dict[str, np.ndarray]:
        return {"ids": self.ids, "counts": self.counts, "top": self.top, "bottom": self.bottom,
                "left": self.left, "right": self.right}


def _first_pixels(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each non-zero label and the flat index of its first pixel in raster order."""
    values, first = np.unique(labels.ravel(), return_index=True)
    keep = values != 0
    return values[keep], first[keep]


def name_objects(labels: np.ndarray, tile: Tile, *, height: int, width: int, whole: bool) -> np.ndarray:
    """Name the objects of a padded tile and return the names over its core (int64).

    ``whole`` says whether objects that touch no inner halo edge are whole (style ``objects``);
    for ``components`` tiles are read without a halo and every piece is provisional.
    """
    padded_h, padded_w = labels.shape
    values, first = _first_pixels(labels)
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
    base = height * width + 1 + tile.index * (padded_h * padded_w + 1)
    lookup = np.zeros(len(cut), np.int64)
    lookup[values] = names
    lookup[provisional] = base + provisional
    lookup[0] = 0
    return lookup[labels[tile.core_in_padded]]


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


def join_pieces(summaries: dict[int, TileSummary], tiles: list[Tile], *, provisional_from: int,
                rule: str, diagonal: bool) -> UnionFind:
    """Join the pieces of objects that a seam cut in two.

    ``rule="touch"`` joins any two pieces that touch across a seam (connected components, exact).
    ``rule="best"`` joins a provisional piece with the piece it shares the longest stretch of seam
    with, when that choice is mutual (objects larger than the overlap, cut by a halo): touching
    but distinct objects, both named whole, are never joined.
    """
    found = UnionFind()
    by_position = {(t.row, t.col): t for t in tiles}

    def scan(a: np.ndarray, b: np.ndarray, with_diagonals: bool) -> None:
        contacts: dict[tuple[int, int], int] = defaultdict(int)
        for left, right in _seam_pairs(a, b, with_diagonals):
            both = (left != 0) & (right != 0) & (left != right)
            if not both.any():
                continue
            if rule == "touch":
                for x, y in set(zip(left[both].tolist(), right[both].tolist(), strict=True)):
                    found.union(x, y)
            else:
                either = both & ((left >= provisional_from) | (right >= provisional_from))
                if either.any():
                    pairs, counts = np.unique(np.stack([left[either], right[either]]), axis=1,
                                              return_counts=True)
                    for (x, y), n in zip(pairs.T.tolist(), counts.tolist(), strict=True):
                        contacts[(x, y)] += n
        # Mutual best contact along this seam (a piece may touch other pieces along other seams).
        best_left: dict[int, tuple[int, int]] = {}
        best_right: dict[int, tuple[int, int]] = {}
        for (x, y), n in contacts.items():
            if n > best_left.get(x, (0, 0))[0]:
                best_left[x] = (n, y)
            if n > best_right.get(y, (0, 0))[0]:
                best_right[y] = (n, x)
        for x, (_, y) in best_left.items():
            if best_right[y][1] == x:
                found.union(x, y)

    for tile in tiles:
        here = summaries[tile.index]
        east = by_position.get((tile.row, tile.col + 1))
        south = by_position.get((tile.row + 1, tile.col))
        if east is not None:
            scan(here.right, summaries[east.index].left, diagonal)
        if south is not None:
            scan(here.bottom, summaries[south.index].top, diagonal)
        if diagonal:
            south_east = by_position.get((tile.row + 1, tile.col + 1))
            if south_east is not None:
                scan(here.bottom[-1:], summaries[south_east.index].top[:1], False)
            south_west = by_position.get((tile.row + 1, tile.col - 1))
            if south_west is not None:
                scan(here.bottom[:1], summaries[south_west.index].top[-1:], False)
    return found
