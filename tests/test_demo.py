from __future__ import annotations

import segscope
from segscope import demo


def test_demo_writes_gallery_for_every_method(demo_gallery):
    folder = demo_gallery.parent
    page = demo_gallery.read_text()
    for info in segscope.methods():
        for name in demo.SAMPLES:
            assert (folder / f"{name}_{info.name}_overlay.png").is_file()
            assert (folder / f"{name}_{info.name}_labels.png").is_file()
            assert f"{name}_{info.name}_overlay.png" in page
