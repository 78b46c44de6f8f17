"""Classical segmentation methods, each registered with :func:`segscope.segment`.

Importing this package registers the methods; it never imports torch.
"""

from .threshold import otsu
from .watershed import watershed

__all__ = ["otsu", "watershed"]
