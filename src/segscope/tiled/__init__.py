"""Images beyond one machine's memory: tiled segmentation on a local or remote Dask cluster.

``segment_tiled(image, method, output)`` reads an image lazily in padded tiles, segments each with
any method or trained model, writes the labels as they come (Zarr or tiled BigTIFF), makes object
labels unique across tiles and joins objects cut by tile seams. See :mod:`segscope.tiled.plans`
for how each kind of method is tiled and what equality with the untiled result it keeps.
"""

from .executors import open_executor
from .grid import Tile, tile_grid
from .run import TiledResult, segment_tiled

__all__ = ["Tile", "TiledResult", "open_executor", "segment_tiled", "tile_grid"]
