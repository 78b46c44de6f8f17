"""A corpus of odd and hostile files, written by a script: ``python corpus.py FOLDER``.

Each entry is (input class, kind, path). The kind says which targets read it (see campaign.py):
``image`` files go to every image reader and every command that takes images, ``annotation``
files to the annotation readers and ``evaluate``, ``checkpoint`` files to the model loaders,
``predict`` and ``export``. Well-formed but unusual files (LZW TIFF, 16-bit, palette, 1x1) are
in the corpus too: for those, "handled cleanly" means read, not refused.

Only the standard library, NumPy, Pillow, tifffile and SciPy write these files, never segscope,
so the campaign can run against any version of segscope.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import sys
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

Entry = tuple[str, str, Path]


def _png(array: np.ndarray, **save: object) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", **save)  # type: ignore[arg-type]
    return buffer.getvalue()


def _png_claiming(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + \
        chunk(b"IEND", b"")


def _tiff_claiming(pages: int, height: int, width: int, samples: int = 1) -> bytes:
    """A few hundred bytes a page, each page claiming height x width x samples bytes."""
    out = bytearray(b"II*\x00" + struct.pack("<I", 24) + b"\x00" * 16)
    ifd_size = 2 + 12 * 9 + 4
    for page in range(pages):
        start = len(out)
        bits = start + ifd_size
        tags = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, samples, 8 if samples == 1 else bits),
                (259, 3, 1, 1), (262, 3, 1, 1), (273, 4, 1, 8), (277, 3, 1, samples),
                (278, 4, 1, height), (279, 4, 1, 16)]
        following = 0 if page == pages - 1 else bits + (2 * samples if samples > 1 else 0)
        out += struct.pack("<H", len(tags))
        for code, kind, count, value in tags:
            wide = kind == 4 or count > 1
            out += struct.pack("<HHII" if wide else "<HHIHH", code, kind, count,
                               *((value,) if wide else (value, 0)))
        out += struct.pack("<I", following)
        if samples > 1:
            out += struct.pack(f"<{samples}H", *([8] * samples))
    return bytes(out)


def _tiff(array: np.ndarray, **options: object) -> bytes:
    import tifffile

    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array, **options)  # type: ignore[arg-type]
    return buffer.getvalue()


def _image() -> np.ndarray:
    yy, xx = np.mgrid[:48, :64]
    return np.where((yy - 24) ** 2 + (xx - 32) ** 2 < 150, 200, 40).astype(np.uint8)


def _coco(images: object, annotations: object, categories: object = None) -> str:
    return json.dumps({"images": images, "annotations": annotations,
                       "categories": [{"id": 1, "name": "thing"}] if categories is None else categories})


_IMAGE_1 = {"id": 1, "file_name": "a.png", "height": 8, "width": 8}


def _annotation(segmentation: object, **more: object) -> dict:
    return {"id": 1, "image_id": 1, "category_id": 1, "segmentation": segmentation, **more}


def _npz(**arrays: object) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def _npz_claiming(shape: tuple[int, ...]) -> bytes:
    """A .npz whose labels member's header claims ``shape`` (int32) over a few bytes of data."""
    header = f"{{'descr': '<i4', 'fortran_order': False, 'shape': {shape}, }}".encode()
    header += b" " * (63 - len(header) % 64) + b"\n"
    member = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + b"\x00" * 64
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("labels.npy", member)
    return buffer.getvalue()


class _Runs:
    """Unpickling this runs code: what a malicious checkpoint does."""

    def __reduce__(self) -> tuple[Callable[..., object], tuple[str]]:
        return (os.system, ("echo pwned > /tmp/segscope_corpus_pwned",))


def _torch_save(obj: object) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _mat(value: object) -> bytes:
    from scipy.io import savemat

    buffer = io.BytesIO()
    savemat(buffer, {"groundTruth": value})
    return buffer.getvalue()


def _bsds_cell(segmentation: np.ndarray) -> np.ndarray:
    cell = np.empty((1, 1), dtype=object)
    cell[0, 0] = {"Segmentation": segmentation, "Boundaries": np.zeros(segmentation.shape, bool)}
    return cell


def make_corpus(folder: Path) -> list[Entry]:
    """Write every corpus file under ``folder``; return the entries."""
    folder.mkdir(parents=True, exist_ok=True)
    entries: list[Entry] = []
    image = _image()
    good_png = _png(image)

    def add(name: str, kind: str, filename: str, content: bytes | str | None) -> Path:
        sub = folder / f"{len(entries):02d}"
        sub.mkdir()
        path = sub / filename
        if isinstance(content, str):
            path.write_text(content)
        elif content is not None:
            path.write_bytes(content)
        entries.append((name, kind, path))
        return path

    # ----------------------------------------------------------------------------- images
    add("empty file named .png", "image", "empty.png", b"")
    add("text named .png", "image", "text.png", "this is not an image\n")
    add("PNG cut in half", "image", "half.png", good_png[: len(good_png) // 2])
    add("PNG with a corrupt checksum", "image", "crc.png", good_png[:40] + b"\x00" + good_png[41:])
    add("PNG header claiming 200000x200000", "image", "bomb.png", _png_claiming(200_000, 200_000))
    add("PNG named .tif", "image", "png.tif", good_png)
    add("JPEG cut short", "image", "short.jpg", _jpeg(image)[:200])
    add("TIFF cut short", "image", "short.tif", _tiff(image)[:100])
    add("TIFF of 20 pages of 100000x100000", "image", "pages.tif", _tiff_claiming(20, 100_000, 100_000))
    add("TIFF of 200 samples per pixel", "image", "samples.tif", _tiff_claiming(1, 30_000, 30_000, 200))
    add("TIFF stack (7, 48, 64)", "image", "stack.tif", _tiff(np.stack([image] * 7)))
    float_image = image.astype(np.float32)
    float_image[0, :3] = (np.nan, np.inf, -np.inf)
    add("float TIFF holding NaN and inf", "image", "nan.tif", _tiff(float_image))
    add("flat float64 TIFF", "image", "flat.tif", _tiff(np.full((48, 64), 0.5)))
    add("int32 TIFF with negative values", "image", "negative.tif", _tiff(image.astype(np.int32) - 100))
    add("two-channel TIFF (grey and alpha)", "image", "ga.tif", _tiff(np.stack([image, image], -1)))
    for compression in ("lzw", "deflate", "jpeg", "packbits"):
        add(f"{compression.upper()} TIFF", "image", f"{compression}.tif",
            _tiff(np.stack([image] * 3, -1), compression=compression))
    add("1x1 PNG", "image", "one.png", _png(np.array([[7]], np.uint8)))
    add("1x500 PNG", "image", "line.png", _png(np.tile(np.arange(250, dtype=np.uint8), 2)[None]))
    add("16-bit PNG", "image", "deep.png", _png(image.astype(np.uint16) * 257))
    from PIL import Image as PILImage

    palette = PILImage.fromarray(image // 100).convert("P")
    buffer = io.BytesIO()
    palette.save(buffer, format="PNG")
    add("palette PNG", "image", "palette.png", buffer.getvalue())
    add("RGBA PNG", "image", "rgba.png", _png(np.dstack([image] * 3 + [np.full_like(image, 128)])))
    frames = [PILImage.fromarray(image), PILImage.fromarray(255 - image)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    add("animated GIF", "image", "animated.gif", buffer.getvalue())
    directory = add("folder named .png", "image", "folder.png", None)
    directory.mkdir()
    fifo = add("FIFO named .png", "image", "pipe.png", None)
    os.mkfifo(fifo)
    dangling = add("dangling symlink .png", "image", "dangling.png", None)
    dangling.symlink_to(dangling.parent / "missing.png")
    loop = add("symlink loop .png", "image", "loop.png", None)
    loop.symlink_to(loop)
    add("missing file", "image", "absent.png", None)

    # ------------------------------------------------------------------------ annotations
    add("COCO: empty file", "annotation", "empty.json", b"")
    add("COCO: not JSON", "annotation", "bad.json", "{'images': ")
    add("COCO: a JSON list", "annotation", "list.json", "[]")
    add("COCO: JSON nested 100000 deep", "annotation", "deep.json", "[" * 100_000 + "]" * 100_000)
    add("COCO: bytes that are not UTF-8", "annotation", "latin.json", b'{"images": "\xff\xfe"}')
    add("COCO: image claiming 100000x100000", "annotation", "huge.json",
        _coco([{"id": 1, "file_name": "a.png", "height": 100_000, "width": 100_000}],
              [_annotation([[0, 0, 5, 0, 5, 5]], id=k) for k in range(3)]))
    add("COCO: negative height", "annotation", "negative.json",
        _coco([{**_IMAGE_1, "height": -8}], []))
    add("COCO: polygon of odd length", "annotation", "odd.json",
        _coco([_IMAGE_1], [_annotation([[0, 0, 5, 0, 5]])]))
    add("COCO: polygon of NaN", "annotation", "nan.json",
        _coco([_IMAGE_1], [_annotation([[0, 0, 5, 0, float("nan"), 5]])]))
    add("COCO: RLE counts longer than the image", "annotation", "rle.json",
        _coco([_IMAGE_1], [_annotation({"size": [8, 8], "counts": [0, 500]})]))
    add("COCO: RLE of another size", "annotation", "rlesize.json",
        _coco([_IMAGE_1], [_annotation({"size": [4, 4], "counts": [0, 16]})]))
    add("COCO: image listed twice", "annotation", "twice.json", _coco([_IMAGE_1, _IMAGE_1], []))
    add("COCO: image without height", "annotation", "noheight.json",
        _coco([{"id": 1, "file_name": "a.png", "width": 8}], []))
    add("COCO: annotation of an unknown image", "annotation", "orphan.json",
        _coco([_IMAGE_1], [{**_annotation([[0, 0, 5, 0, 5, 5]]), "image_id": 9}]))
    add("COCO: annotation of an unknown category", "annotation", "category.json",
        _coco([_IMAGE_1], [{**_annotation([[0, 0, 5, 0, 5, 5]]), "category_id": 9}]))
    add("COCO: annotations as a dict", "annotation", "dict.json", _coco([_IMAGE_1], {"a": 1}))
    add("COCO: segmentation as a string", "annotation", "string.json", _coco([_IMAGE_1], [_annotation("x")]))
    add("COCO panoptic: file_name ../", "annotation", "panoptic.json",
        json.dumps({"annotations": [{"image_id": 1, "file_name": "../secret.png", "segments_info": []}],
                    "categories": []}))
    add("COCO panoptic: PNG missing", "annotation", "panoptic.json",
        json.dumps({"annotations": [{"image_id": 1, "file_name": "gone.png", "segments_info": []}],
                    "categories": []}))
    entry = add("COCO panoptic: segments_info a number", "annotation", "panoptic.json",
                json.dumps({"annotations": [{"image_id": 1, "file_name": "a.png", "segments_info": 3}],
                            "categories": []}))
    (entry.parent / "panoptic").mkdir()
    (entry.parent / "panoptic" / "a.png").write_bytes(_png(np.zeros((8, 8, 3), np.uint8)))
    add("YOLO: words", "annotation", "words.txt", "zero one two\n")
    add("YOLO: odd coordinates", "annotation", "odd.txt", "0 0.1 0.1 0.5\n")
    add("YOLO: NaN coordinates", "annotation", "nan.txt", "0 0.1 0.1 nan 0.5 0.9 0.9\n")
    add("YOLO: coordinates outside 0..1", "annotation", "outside.txt", "0 -3 0.1 5 0.5 0.9 9\n")
    add("YOLO: class 10^12", "annotation", "class.txt", "1000000000000 0.1 0.1 0.5 0.5 0.9 0.1\n")
    add("BSDS .mat cut short", "annotation", "short.mat", _mat(_bsds_cell(image.astype(np.uint16)))[:300])
    add("BSDS .mat of random bytes", "annotation", "random.mat", np.random.default_rng(0).bytes(4000))
    add("BSDS .mat of no annotator", "annotation", "none.mat", _mat(np.zeros((1, 1))))
    add("BSDS .mat of a 3-D segmentation", "annotation", "cube.mat",
        _mat(_bsds_cell(np.ones((4, 4, 4), np.uint16))))
    add(".npz cut short", "annotation", "cut.npz", _npz(labels=image.astype(np.int32))[:60])
    add(".npz that is not a zip", "annotation", "text.npz", "hello")
    add(".npz holding a pickled object", "annotation", "object.npz", _npz(labels=np.array([_Runs()], object)))
    add(".npz header claiming 100000x100000", "annotation", "claim.npz", _npz_claiming((100_000, 100_000)))
    add(".npz of a foreign array", "annotation", "foreign.npz", _npz(x=np.arange(3)))

    # ------------------------------------------------------------------------ checkpoints
    add("checkpoint that runs code when unpickled", "checkpoint", "evil.pt", _torch_save({"x": _Runs()}))
    add("checkpoint of random bytes", "checkpoint", "random.pt", np.random.default_rng(1).bytes(5000))
    add("checkpoint: a plain dict of tensors", "checkpoint", "dict.pt", _torch_save({"weights": [1, 2]}))
    add("checkpoint cut short", "checkpoint", "short.pt", _torch_save({"schema": 2, "weights": {}})[:300])
    add("checkpoint of a newer schema", "checkpoint", "newer.pt", _torch_save({"schema": 99}))
    add("a pickle named .onnx", "checkpoint", "model.onnx", pickle.dumps({"weights": [1, 2, 3]}))
    add("ONNX file of random bytes", "checkpoint", "random.onnx", np.random.default_rng(2).bytes(3000))
    return entries


def _jpeg(array: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG")
    return buffer.getvalue()


if __name__ == "__main__":
    made = make_corpus(Path(sys.argv[1]))
    for name, kind, path in made:
        print(f"{kind:11s} {name:45s} {path}")
