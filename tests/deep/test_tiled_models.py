"""Trained models run tile by tile: semantic windows blend across tiles, instances join at seams."""

from __future__ import annotations

import numpy as np
import pytest

import segscope

pytest.importorskip("zarr", reason="tiled processing needs segscope[scale]")
tifffile = pytest.importorskip("tifffile")

from _configs import config_of  # noqa: E402

from segscope.tiled import segment_tiled  # noqa: E402
from segscope.train import train  # noqa: E402


def test_a_semantic_checkpoint_tiled_agrees_with_the_whole_image(toy_dataset, tmp_path):
    config = config_of(model="unet", model_options={"base_width": 4, "depth": 2},
                         train_images=str(toy_dataset / "train" / "images"),
                         train_labels=str(toy_dataset / "train" / "labels"),
                         output=str(tmp_path / "run"), num_classes=2, class_names=["background", "disc"],
                         ignore_index=255, crop=32, epochs=3, batch_size=4, lr=1e-2, seed=1)
    checkpoint = train(config, progress=False).checkpoint
    image = segscope.imread(toy_dataset / "val" / "images" / "img0.png")
    big = np.tile(image, (4, 4, 1))  # 192 x 256, three tiles a side
    path = tmp_path / "big.tif"
    tifffile.imwrite(path, big, tile=(32, 32), photometric="rgb")
    result = segment_tiled(path, checkpoint, tmp_path / "out.zarr", tile=80, overlap=32, workers=1,
                           progress=False)
    whole = segscope.segment(big, checkpoint).class_map()
    assert result.kind == "semantic" and result.class_names == ("background", "disc")
    agreement = float(np.mean(result.read() == whole))
    assert agreement > 0.995, agreement
