"""Pictures and reports: colour maps, overlays, boundaries, panels and HTML galleries, and slices of
volumes."""

from .pictures import boundaries, colorize, label_colors, overlay, panel, to_display
from .report import GalleryItem, png_data_uri, write_gallery
from .volumes import orthogonal_slices, slice_montage

__all__ = ["GalleryItem", "boundaries", "colorize", "label_colors", "orthogonal_slices", "overlay", "panel",
           "png_data_uri", "slice_montage", "to_display", "write_gallery"]
