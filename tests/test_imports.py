"""The floors of the architecture: the classical part never imports torch."""

from __future__ import annotations

import subprocess
import sys


def test_import_segscope_does_not_import_torch():
    code = ("import sys, segscope, segscope.io, segscope.viz, segscope.classical, segscope.cli.main;"
            "import segscope.metrics, segscope.compare, segscope.io.datasets;"
            "import segscope.datasets, segscope.panoptic;"
            "segscope.cli.main.build_parser();"
            "import numpy as np; segscope.segment(np.zeros((4, 4), np.uint8), 'otsu');"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_result_does_not_import_scipy_or_torch_at_import():
    code = "import sys; import segscope.result; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
