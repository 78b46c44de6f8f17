"""The shape of the code: adding a method touches its own file, and the engines know no names."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

import segscope
from segscope import registry
from segscope.io import write_label_png
from segscope.result import Segmentation
from segscope.tiling import LocalWindow, Objects

SRC = Path(segscope.__file__).parent


def _source_words(folder: Path) -> tuple[set[str], set[str]]:
    """The string constants of a package's source, whole, and every word and identifier in it."""
    constants: set[str] = set()
    words: set[str] = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                constants.add(node.value)
                words.update(node.value.replace("`", " ").replace(",", " ").split())
            elif isinstance(node, ast.Name):
                words.add(node.id)
            elif isinstance(node, ast.Attribute):
                words.add(node.attr)
    return constants, words


def test_the_tiled_engine_names_no_method():
    # The engine holds strategies; each method declares its own (segscope.tiling). Three method
    # names are English words (and numpy's): for them only a string equal to the name counts.
    constants, words = _source_words(SRC / "tiled")
    names = {m.name for m in segscope.methods()}
    common = {"mean", "minimum", "threshold"}
    assert not (names - common) & (constants | words)
    assert not common & constants


@pytest.fixture
def toy_methods(monkeypatch):
    """Two methods registered the way a user's own module would, removed after the test."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))

    def reach(params):
        return int(params["size"]) // 2

    @registry.register_method("toy_peaks", task="semantic", tiling=LocalWindow(reach=reach, parameter="size"))
    def toy_peaks(image: np.ndarray, *, size: int = 5) -> Segmentation:
        """Foreground where a pixel is the largest of its ``size`` window.

        Parameters
        ----------
        size : int
            Side of the window.
        """
        peaks = ndimage.maximum_filter(image, size=size, mode="mirror") == image
        return Segmentation.from_class_map(peaks.astype(np.uint8), class_names=("flat", "peak"))

    @registry.register_method("toy_blobs", task="instance", tiling=Objects())
    def toy_blobs(image: np.ndarray, *, level: float = 100.0) -> Segmentation:
        """Each connected blob above ``level`` is an object.

        Parameters
        ----------
        level : float
            Grey level above which a pixel is part of a blob.
        """
        labels, n = ndimage.label(image > level)
        return Segmentation.from_labels(labels, kind="instance", categories=dict.fromkeys(range(1, n + 1), 0))

    return toy_peaks, toy_blobs


def _image() -> np.ndarray:
    rng = np.random.default_rng(0)
    image = ndimage.gaussian_filter(rng.random((150, 170)), 2)
    return (255 * (image - image.min()) / np.ptp(image)).astype(np.uint8)


def test_a_method_of_ones_own_tiles_by_its_declaration_alone(toy_methods, tmp_path):
    pytest.importorskip("zarr", reason="tiled processing needs segscope[scale]")
    import tifffile

    image = _image()
    tifffile.imwrite(tmp_path / "big.tif", image, tile=(32, 32))
    tiled = segscope.segment_tiled(tmp_path / "big.tif", "toy_peaks", tmp_path / "peaks.zarr", tile=64,
                                   overlap=8, params={"size": 7}, workers=1, progress=False)
    np.testing.assert_array_equal(tiled.read(), segscope.segment(image, "toy_peaks", size=7).class_map())
    with pytest.raises(ValueError, match="overlap must be at least 3"):
        segscope.segment_tiled(tmp_path / "big.tif", "toy_peaks", tmp_path / "p2.zarr", tile=64, overlap=2,
                               params={"size": 7}, workers=1, progress=False)
    blobs = segscope.segment_tiled(tmp_path / "big.tif", "toy_blobs", tmp_path / "blobs.zarr", tile=64,
                                   overlap=40, params={"level": 200}, workers=1, progress=False)
    untiled = segscope.segment(image, "toy_blobs", level=200)
    assert blobs.objects == len(untiled) > 3
    pairs = np.unique(np.stack([blobs.read().ravel(), untiled.labels.ravel()]), axis=1)
    assert pairs.shape[1] == len(untiled) + 1  # the same objects, one to one, renumbered


def test_a_method_of_ones_own_is_listed_run_and_scored_from_the_command_line(toy_methods, tmp_path, capsys):
    from segscope.cli.main import main

    image = _image()
    (tmp_path / "images").mkdir()
    (tmp_path / "truth").mkdir()
    segscope.imwrite(tmp_path / "images" / "a.png", image)
    truth = ndimage.maximum_filter(image, size=5, mode="mirror") == image
    write_label_png(tmp_path / "truth" / "a.png", truth.astype(np.uint8))
    assert main(["methods", "--names"]) == 0
    assert "toy_peaks" in capsys.readouterr().out.split()
    assert main(["segment", str(tmp_path / "images"), "-m", "toy_peaks", "-o", str(tmp_path / "out")]) == 0
    assert main(["evaluate", "--pred", str(tmp_path / "out"), "--truth", str(tmp_path / "truth"),
                 "--task", "semantic", "--num-classes", "2"]) == 0
    assert "1.0000" in capsys.readouterr().out  # its own output scores perfectly against the same rule


def test_a_format_of_ones_own_is_written_by_segment_and_read_by_evaluate(monkeypatch, tmp_path, capsys):
    # Declared in one place (register_format); the CLI's --format and read_annotations find it.
    import segscope.io.formats as formats
    from segscope.cli.main import main

    monkeypatch.setattr(formats, "_FORMATS", dict(formats._FORMATS))

    def write(seg, folder, stem):
        np.savetxt(folder / f"{stem}.labels.csv", seg.labels, fmt="%d", delimiter=",")

    def read(path, context):
        return np.loadtxt(path, delimiter=",", dtype=np.int64).reshape(-1, _image().shape[1])

    formats.register_format(formats.Format("csv", "labels as CSV", suffixes=(".csv",), read_file=read,
                                           write_file=write, priority=9))
    (tmp_path / "images").mkdir()
    segscope.imwrite(tmp_path / "images" / "a.png", _image())
    out = tmp_path / "out"
    assert main(["segment", str(tmp_path / "images"), "-m", "otsu", "-o", str(out), "--format", "csv"]) == 0
    assert [p.name for p in out.iterdir()] == ["a.labels.csv"]
    assert main(["evaluate", "--pred", str(out), "--truth", str(out), "--task", "semantic"]) == 0
    assert "miou" in capsys.readouterr().out
