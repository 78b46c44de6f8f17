"""Pictures and reports: colour maps, overlays, boundaries, panels and HTML galleries."""

from .pictures import boundaries, colorize, label_colors, overlay, panel, to_display

__all__ = ["boundaries", "colorize", "label_colors", "overlay", "panel", "to_display"]
from .report import GalleryItem, png_data_uri, write_gallery

__all__ += ["GalleryItem", "png_data_uri", "write_gallery"]
