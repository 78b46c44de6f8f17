"""Images beyond one machine's memory: tiled segmentation on a local or remote Dask cluster.

``segment_tiled(image, method, output)`` reads an image lazily in padded tiles, segments each with
any method or trained model, writes the labels as they come (Zarr or tiled BigTIFF), makes object
labels unique across tiles and joins objects cut by tile seams. See :mod:`segscope.tiled.plans`
for how each kind of method is tiled and what equality with the untiled result it keeps.
``segment_volume_tiled(volume, method, output)`` does the same for volumes, in 3-D blocks, for
the methods whose strategy is pixel-wise (thresholds, local windows) and for 3-D networks.
"""

from .executors import open_executor
from .grid import Tile, tile_grid
from .run import TiledResult, segment_tiled
from .volumes import Block, TiledVolume, block_grid, segment_volume_tiled

__all__ = ["Block", "Tile", "TiledResult", "TiledVolume", "block_grid", "open_executor", "segment_tiled",
           "segment_volume_tiled", "tile_grid"]
