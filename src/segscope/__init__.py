"""segscope: image segmentation with one API, one result type and one metric suite.

>>> import segscope
>>> seg = segscope.segment(segscope.imread(path), "otsu")      # doctest: +SKIP
>>> segscope.overlay(image, seg, path="overlay.png")            # doctest: +SKIP

Importing segscope loads the classical methods, formats and pictures; it never imports torch.
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _package_version

try:
    __version__ = _package_version("segscope")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

from . import datasets, panoptic
from .api import methods, prompt, segment
from .io import image_info, imread, imwrite
from .metrics import Evaluator, MetricReport, evaluate
from .result import Provenance, Segment, Segmentation
from .tiled import segment_tiled
from .viz import boundaries, colorize, overlay, panel

__all__ = [
    "Evaluator",
    "MetricReport",
    "Provenance",
    "Segment",
    "Segmentation",
    "__version__",
    "boundaries",
    "colorize",
    "datasets",
    "evaluate",
    "image_info",
    "imread",
    "imwrite",
    "methods",
    "overlay",
    "panel",
    "panoptic",
    "prompt",
    "segment",
    "segment_tiled",
]
