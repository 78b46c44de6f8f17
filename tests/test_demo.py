from __future__ import annotations

import segscope
from segscope import demo


def test_demo_writes_gallery_for_every_method(tmp_path):
    index = demo.run(tmp_path)
    page = index.read_text()
    for info in segscope.methods():
        for name in demo.SAMPLES:
            assert (tmp_path / f"{name}_{info.name}_overlay.png").is_file()
            assert (tmp_path / f"{name}_{info.name}_labels.png").is_file()
            assert f"{name}_{info.name}_overlay.png" in page
