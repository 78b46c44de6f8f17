"""The tile grid: cores that cover the image without overlap, each read with a halo of context."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Tile", "tile_grid"]


@dataclass(frozen=True)
class Tile:
    """One tile: its core (written to the output) and its padded window (read, clipped to the image)."""

    index: int
    row: int
    col: int
    top: int
    left: int
    bottom: int
    right: int
    pad_top: int
    pad_left: int
    pad_bottom: int
    pad_right: int

    @property
    def core(self) -> tuple[slice, slice]:
        return slice(self.top, self.bottom), slice(self.left, self.right)

    @property
    def padded(self) -> tuple[slice, slice]:
        return slice(self.pad_top, self.pad_bottom), slice(self.pad_left, self.pad_right)

    @property
    def core_in_padded(self) -> tuple[slice, slice]:
        """Where the core lies inside the padded window."""
        return (slice(self.top - self.pad_top, self.bottom - self.pad_top),
                slice(self.left - self.pad_left, self.right - self.pad_left))

    @property
    def padded_pixels(self) -> int:
        return (self.pad_bottom - self.pad_top) * (self.pad_right - self.pad_left)


def tile_grid(height: int, width: int, *, tile: int, overlap: int) -> list[Tile]:
    """Tiles of ``tile`` x ``tile`` pixels (smaller at the right and bottom edges), in raster order.

    Examples
    --------
    >>> tiles = tile_grid(5, 7, tile=4, overlap=1)
    >>> [(t.top, t.left, t.bottom, t.right) for t in tiles]
    [(0, 0, 4, 4), (0, 4, 4, 7), (4, 0, 5, 4), (4, 4, 5, 7)]
    >>> tiles[3].padded
    (slice(3, 5, None), slice(3, 7, None))
    """
    if tile < 1:
        raise ValueError(f"tile must be at least 1 pixel, got {tile}")
    if overlap < 0:
        raise ValueError(f"overlap must be non-negative, got {overlap}")
    tiles: list[Tile] = []
    for row, top in enumerate(range(0, height, tile)):
        for col, left in enumerate(range(0, width, tile)):
            bottom, right = min(top + tile, height), min(left + tile, width)
            tiles.append(Tile(len(tiles), row, col, top, left, bottom, right,
                              max(top - overlap, 0), max(left - overlap, 0),
                              min(bottom + overlap, height), min(right + overlap, width)))
    return tiles
