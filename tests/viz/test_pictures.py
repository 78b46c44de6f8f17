from __future__ import annotations

import numpy as np
import pytest

import segscope
from segscope import Segmentation
from segscope.viz import GalleryItem, label_colors, write_gallery


def test_palette_is_stable_and_distinct():
    small, large = label_colors(5), label_colors(50)
    assert np.array_equal(small, large[:5])
    assert small[0].tolist() == [0, 0, 0]
    assert len({tuple(c) for c in large[1:]}) == 49


def test_colorize_semantic_colours_by_class():
    a = Segmentation.from_class_map(np.array([[0, 2]]), num_classes=3)
    b = Segmentation.from_class_map(np.array([[2, 2]]), num_classes=3)
    assert np.array_equal(segscope.colorize(a)[0, 1], segscope.colorize(b)[0, 0])


def test_colorize_legend_adds_a_strip_with_names(tmp_path):
    seg = Segmentation.from_class_map(np.array([[0, 1]] * 40), class_names=["sky", "road"])
    out = segscope.colorize(seg, legend=True, path=tmp_path / "c.png")
    plain = segscope.colorize(seg)
    assert out.shape[0] >= 40 and out.shape[1] > 2 + 20
    assert np.array_equal(out[:40, :2], plain)
    assert np.array_equal(segscope.imread(tmp_path / "c.png"), out)


def test_overlay_keeps_background_and_tints_segments():
    image = np.full((10, 10), 100, np.uint8)
    labels = np.zeros((10, 10), int)
    labels[2:8, 2:8] = 1
    out = segscope.overlay(image, labels, alpha=0.5, outline=False)
    assert out.shape == (10, 10, 3) and out.dtype == np.uint8
    assert (out[0, 0] == 100).all()
    assert not (out[5, 5] == 100).all()
    with pytest.raises(ValueError, match="differs"):
        segscope.overlay(np.zeros((3, 3)), labels)


def test_boundaries_draws_only_edges():
    image = np.zeros((10, 10), np.uint8)
    labels = np.zeros((10, 10), int)
    labels[2:8, 2:8] = 1
    out = segscope.boundaries(image, labels, color=(255, 0, 0))
    red = (out == [255, 0, 0]).all(axis=-1)
    assert red[2, 2] and red[2, 7] and not red[5, 5] and not red[0, 0]


def test_display_stretch_of_16_bit_images():
    image = np.linspace(0, 4000, 100).reshape(10, 10).astype(np.uint16)
    out = segscope.overlay(image, np.zeros((10, 10), int))
    assert out.min() == 0 and out.max() == 255


def test_panel_layout_and_titles(tmp_path):
    tiles = [np.zeros((20, 30), np.uint8), np.full((10, 10, 3), 255, np.uint8)]
    out = segscope.panel(tiles, titles=["a", "b"], path=tmp_path / "p.png")
    assert out.shape == (20 + 20, 30 * 2 + 6, 3)
    two_rows = segscope.panel(tiles, columns=1)
    assert two_rows.shape == (20 * 2 + 6, 30, 3)
    with pytest.raises(ValueError, match="titles"):
        segscope.panel(tiles, titles=["a"])


def test_gallery_is_offline_html(tmp_path):
    segscope.imwrite(tmp_path / "x.png", np.zeros((4, 4), np.uint8))
    write_gallery(tmp_path / "index.html", [("sec <1>", [
        GalleryItem("linked", path=str(tmp_path / "x.png")),
        GalleryItem("embedded", image=np.zeros((4, 4, 3), np.uint8), details={"k": "v"}),
    ])])
    page = (tmp_path / "index.html").read_text()
    assert "src='x.png'" in page and "data:image/png;base64," in page
    assert "sec &lt;1&gt;" in page and "http" not in page
