"""Hostile and malformed inputs, made on the spot: each is a (name, expected behaviour, maker).

A maker writes its file(s) under a folder and returns what to call: the table in
``test_hostile_inputs.py`` runs every entry and checks that it fails as stated, cleanly (a
segscope error naming the file), fast and without allocating what the file claims.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

Maker = Callable[[Path], Callable[[], object]]

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import _png_claiming, _tiff_claiming  # noqa: E402  (the corpus's bomb writers)


def png_bomb(folder: Path) -> Callable[[], object]:
    from segscope.io import imread

    path = folder / "bomb.png"
    path.write_bytes(_png_claiming(200_000, 200_000))
    return lambda: imread(path)


def tiff_pages(folder: Path) -> Callable[[], object]:
    from segscope.io import image_info

    path = folder / "pages.tif"
    path.write_bytes(_tiff_claiming(20, 100_000, 100_000))
    return lambda: image_info(path)


def tiff_samples(folder: Path) -> Callable[[], object]:
    from segscope.io import imread

    path = folder / "samples.tif"
    path.write_bytes(_tiff_claiming(1, 30_000, 30_000, 200))
    return lambda: imread(path)


def fifo(folder: Path) -> Callable[[], object]:
    from segscope.io import imread

    path = folder / "pipe.png"
    os.mkfifo(path)
    return lambda: imread(path)


def tiff_stack(folder: Path) -> Callable[[], object]:
    import tifffile

    from segscope.io import imread

    path = folder / "stack.tif"
    tifffile.imwrite(path, np.zeros((7, 64, 64), np.uint8))
    return lambda: imread(path)


def tiff_stack_tiled(folder: Path) -> Callable[[], object]:
    import tifffile

    import segscope

    path = folder / "stack.tif"
    tifffile.imwrite(path, np.zeros((7, 64, 64), np.uint8))
    return lambda: segscope.segment_tiled(path, "otsu", folder / "out.zarr", tile=32, overlap=0, workers=1,
                                          progress=False)


def _coco(folder: Path, images: list, annotations: object) -> Path:
    path = folder / "coco.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations,
                                "categories": [{"id": 0, "name": "thing"}]}))
    return path


def coco_huge_image(folder: Path) -> Callable[[], object]:
    from segscope.io import read_coco

    path = _coco(folder, [{"id": 1, "file_name": "a.png", "height": 100_000, "width": 100_000}],
                 [{"id": k, "image_id": 1, "category_id": 0, "segmentation": [[0, 0, 5, 0, 5, 5]]}
                  for k in range(3)])
    return lambda: read_coco(path)


def coco_odd_polygon(folder: Path) -> Callable[[], object]:
    from segscope.io import read_coco

    path = _coco(folder, [{"id": 1, "file_name": "a.png", "height": 8, "width": 8}],
                 [{"id": 1, "image_id": 1, "category_id": 0, "segmentation": [[0, 0, 5, 0, 5]]}])
    return lambda: read_coco(path)


def coco_duplicate_images(folder: Path) -> Callable[[], object]:
    from segscope.io import read_coco

    image = {"id": 1, "file_name": "a.png", "height": 8, "width": 8}
    path = _coco(folder, [image, image], [])
    return lambda: read_coco(path)


def coco_missing_height(folder: Path) -> Callable[[], object]:
    from segscope.io import read_coco

    path = _coco(folder, [{"id": 1, "file_name": "a.png", "width": 8}], [])
    return lambda: read_coco(path)


def coco_annotations_as_dict(folder: Path) -> Callable[[], object]:
    from segscope.io import read_coco

    path = _coco(folder, [{"id": 1, "file_name": "a.png", "height": 8, "width": 8}], {"a": 1})
    return lambda: read_coco(path)


def panoptic_outside_folder(folder: Path) -> Callable[[], object]:
    from segscope.io import read_coco_panoptic

    (folder / "secret.png").write_bytes(b"not for you")
    (folder / "panoptic").mkdir()
    path = folder / "panoptic.json"
    path.write_text(json.dumps({"annotations": [{"image_id": 1, "file_name": "../secret.png",
                                                 "segments_info": []}], "categories": []}))
    return lambda: read_coco_panoptic(path)


def sauvola_huge_window(folder: Path) -> Callable[[], object]:
    import segscope

    return lambda: segscope.segment(np.zeros((64, 64), np.uint8), "sauvola", window_size=100_001)


def felzenszwalb_negative_scale(folder: Path) -> Callable[[], object]:
    import segscope

    return lambda: segscope.segment(np.zeros((16, 16), np.uint8), "felzenszwalb", scale=-1)


def truncated_npz(folder: Path) -> Callable[[], object]:
    import segscope
    from segscope.io import load_segmentation, save_segmentation

    path = folder / "cut.npz"
    save_segmentation(segscope.Segmentation.from_labels(np.ones((30, 30), int)), path)
    path.write_bytes(path.read_bytes()[:40])
    return lambda: load_segmentation(path)


#: name -> (the error, words its message must hold, maker): the table the test runs and
#: docs/robustness.md publishes. Messages also name the file whenever there is one.
HOSTILE: dict[str, tuple[str, str, Maker]] = {
    "PNG header claiming 200000x200000": ("ImageReadError", "over the limit of", png_bomb),
    "TIFF of 20 pages of 100000x100000": ("ImageReadError", "over the limit of", tiff_pages),
    "TIFF of 200 samples per pixel": ("ImageReadError", "over the limit of", tiff_samples),
    "FIFO named .png": ("ImageReadError", "not a regular file", fifo),
    "3-D TIFF stack (7, 64, 64)": ("ImageReadError", "a stack of 7 images", tiff_stack),
    "3-D TIFF stack, tiled job": ("ImageReadError", "a stack of 7 images", tiff_stack_tiled),
    "COCO image claiming 100000x100000": ("ImageReadError", "over the limit of", coco_huge_image),
    "COCO polygon of odd length": ("ValueError", "x, y pairs", coco_odd_polygon),
    "COCO image listed twice": ("ValueError", "listed twice", coco_duplicate_images),
    "COCO image without height": ("ValueError", "'height'", coco_missing_height),
    "COCO annotations as a dict": ("ValueError", "no 'annotations' list", coco_annotations_as_dict),
    "COCO panoptic file_name ../": ("ValueError", "leaves the PNG folder", panoptic_outside_folder),
    "sauvola window_size=100001": ("ValueError", "wider than this 64x64 image can use", sauvola_huge_window),
    "felzenszwalb scale=-1": ("ValueError", "needs scale > 0", felzenszwalb_negative_scale),
    "truncated .npz": ("ValueError", "cannot read a segscope Segmentation", truncated_npz),
}


def bsds_without_annotators(folder: Path) -> Callable[[], object]:
    from scipy.io import savemat

    from segscope.io import read_bsds_groundtruth

    path = folder / "x.mat"
    savemat(path, {"groundTruth": np.zeros((1, 1))})
    return lambda: read_bsds_groundtruth(path)


def pickle_named_onnx(folder: Path) -> Callable[[], object]:
    import pickle

    import segscope

    path = folder / "model.onnx"
    path.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    return lambda: segscope.segment(np.zeros((8, 8), np.uint8), path)


def instances_without_categories(folder: Path) -> Callable[[], object]:
    from segscope import Segmentation

    return lambda: Segmentation.from_labels(np.array([[0, 1]]), kind="instance")


def panoptic_scores_of_arrays(folder: Path) -> Callable[[], object]:
    from segscope.metrics import evaluate

    return lambda: evaluate(np.zeros((4, 4), int), np.zeros((4, 4), int), task="panoptic")


HOSTILE.update({
    "BSDS .mat of no annotator": ("ValueError", "not a BSDS ground-truth .mat file", bsds_without_annotators),
    "a pickle named .onnx": ("ValueError", "not an ONNX model", pickle_named_onnx),
    "instances without categories": ("ValueError", "pass categories", instances_without_categories),
    "panoptic evaluation of arrays": ("TypeError", "must be a Segmentation", panoptic_scores_of_arrays),
})
