"""Deep-model tests need torch; a small synthetic dataset serves the training tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the deep tests need segscope[deep] (torch)")


@pytest.fixture(scope="session")
def toy_dataset(tmp_path_factory) -> Path:
    """12 RGB images, 48x64, with bright discs on a noisy background; labels 0 background, 1 disc,
    and a band of 255 (ignored) along the top."""
    from segscope.io import imwrite, write_label_png

    root = tmp_path_factory.mktemp("toy")
    rng = np.random.default_rng(0)
    for split, count in (("train", 10), ("val", 2)):
        (root / split / "images").mkdir(parents=True)
        (root / split / "labels").mkdir(parents=True)
        for k in range(count):
            yy, xx = np.mgrid[:48, :64]
            cy, cx, r = rng.integers(12, 36), rng.integers(12, 52), rng.integers(6, 11)
            disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2
            image = rng.normal(60, 15, (48, 64, 3))
            image[disc] += 120
            label = disc.astype(np.uint8)
            label[:2] = 255
            imwrite(root / split / "images" / f"img{k}.png", np.clip(image, 0, 255).astype(np.uint8))
            write_label_png(root / split / "labels" / f"img{k}.png", label)
    return root
