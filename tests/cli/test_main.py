from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from skimage import data

import segscope
from segscope.cli.main import main
from segscope.io import read_coco, read_coco_panoptic, read_label_png, read_palette_png


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    segscope.imwrite(folder / "camera.png", data.camera())
    segscope.imwrite(folder / "coins.png", data.coins())
    return folder


def test_help_everywhere():
    for args in (["--help"], ["methods", "--help"], ["segment", "--help"], ["info", "--help"]):
        with pytest.raises(SystemExit) as exc:
            main(args)
        assert exc.value.code == 0


def test_methods_command(capsys):
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    assert "otsu  [semantic]" in out and "nbins (int, default 256)" in out


def test_segment_folder_with_overlay(images, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["segment", str(images), "-m", "otsu", "-o", str(out), "--overlay"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "camera.png", "camera_overlay.png", "coins.png", "coins_overlay.png"]
    indices, _ = read_palette_png(out / "camera.png")
    expected = segscope.segment(data.camera(), "otsu").class_map()
    assert np.array_equal(indices, expected)
    assert "segmented 2 of 2 images with otsu" in capsys.readouterr().out


def test_segment_params_and_regions(images, tmp_path):
    out = tmp_path / "out"
    assert main(["segment", str(images / "*.png"), "-m", "watershed", "-p", "h=0.2",
                 "-o", str(out)]) == 0
    labels = read_label_png(out / "coins.png")
    assert np.array_equal(labels, segscope.segment(data.coins(), "watershed", h=0.2).labels)


def test_failures_are_reported_and_the_rest_go_on(images, tmp_path, capsys):
    (images / "broken.png").write_text("not an image")
    out = tmp_path / "out"
    code = main(["segment", str(images), str(tmp_path / "missing.png"), "-m", "otsu",
                 "-o", str(out)])
    captured = capsys.readouterr()
    assert code == 1
    assert "broken.png: not a recognised image file" in captured.err
    assert "missing.png: no such file" in captured.err
    assert "segmented 2 of 4 images" in captured.out and "2 failed" in captured.out
    assert sorted(p.name for p in out.iterdir()) == ["camera.png", "coins.png"]


def test_bad_method_and_parameter(images, tmp_path, capsys):
    assert main(["segment", str(images), "-m", "nope", "-o", str(tmp_path / "o")]) == 2
    assert "valid methods" in capsys.readouterr().err
    assert main(["segment", str(images), "-m", "otsu", "-p", "bins=3", "-o",
                 str(tmp_path / "o")]) == 2
    assert "valid parameters" in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_output(images, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    with pytest.raises(SystemExit, match="not writable"):
        main(["segment", str(images), "-m", "otsu", "-o", str(locked)])


def test_output_under_a_file_is_refused(images, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SystemExit, match="cannot create output folder"):
        main(["segment", str(images), "-m", "otsu", "-o", str(blocker / "sub")])


def test_coco_and_panoptic_formats(images, tmp_path):
    out = tmp_path / "coco"
    assert main(["segment", str(images), "-m", "otsu", "-o", str(out), "--format", "coco"]) == 0
    records = read_coco(out / "annotations.json")
    assert [r.file_name for r in records] == ["camera.png", "coins.png"]
    out = tmp_path / "pan"
    assert main(["segment", str(images), "-m", "otsu", "-o", str(out), "--format",
                 "panoptic"]) == 0
    pan = read_coco_panoptic(out / "panoptic.json")
    assert len(pan) == 2
    expected = segscope.segment(data.coins(), "otsu").class_map()
    assert np.array_equal(pan[1].segmentation.to_semantic().class_map(), expected)
    assert json.loads((out / "panoptic.json").read_text())["categories"][0]["name"] == "background"
    # The README's example: regions (no categories) are written as objects of one category.
    out = tmp_path / "regions"
    assert main(["segment", str(images), "-m", "watershed", "-p", "h=0.1", "-o", str(out),
                 "--format", "coco"]) == 0
    regions = read_coco(out / "annotations.json")
    assert regions[1].segmentation.class_names == ("region",)
    np.testing.assert_array_equal(regions[1].segmentation.labels > 0,
                                  segscope.segment(data.coins(), "watershed", h=0.1).labels > 0)


def test_info_command(images, capsys):
    assert main(["info", str(images / "coins.png")]) == 0
    assert "image (H, W) (303, 384), dtype uint8, 1 channel(s), values [1, 252]" in capsys.readouterr().out


def test_console_script_runs_otsu_on_a_file(images):
    code = "import segscope, sys; segscope.segment(segscope.imread(sys.argv[1]), 'otsu')"
    subprocess.run([sys.executable, "-c", code, str(images / "camera.png")], check=True)
    out = subprocess.run([sys.executable, "-m", "segscope", "methods", "--names"],
                         capture_output=True, text=True, check=True)
    names = out.stdout.split()
    assert {"otsu", "watershed", "region_growing", "split_and_merge"} <= set(names)
    assert names == sorted(names)


def test_yolo_labels_are_written_read_and_scored(images, tmp_path, capsys):
    # segment --format yolo writes one .txt per image; read_annotations and evaluate read such a
    # folder back at the size of the images beside it (YOLO's images/ and labels/ layout).
    labels = tmp_path / "labels"
    assert main(["segment", str(images), "-m", "watershed_instances", "-o", str(labels),
                 "--format", "yolo"]) == 0
    assert sorted(p.name for p in labels.iterdir()) == ["camera.txt", "coins.txt"]
    (tmp_path / "images").symlink_to(images)
    from segscope.io.datasets import read_annotations

    task, found = read_annotations(labels)
    truth = segscope.segment(data.coins(), "watershed_instances")
    assert task == "instance" and found["coins"].value.shape == data.coins().shape
    # Polygons traced on pixel edges rasterise back to the same objects (holes are filled).
    assert len(found["coins"].value) == len(truth)
    assert main(["evaluate", "--pred", str(labels), "--truth", str(labels), "--task", "instance"]) == 0
    assert "f1@0.5" in capsys.readouterr().out
    assert main(["segment", str(images), "-m", "otsu", "-o", str(tmp_path / "x"), "--format", "yolo"]) == 1
    assert "--format yolo writes instances" in capsys.readouterr().err


def test_the_cli_modules_import_no_circle():
    import ast
    from pathlib import Path

    folder = Path(segscope.__file__).parent / "cli"
    deep = ast.parse((folder / "deep.py").read_text())
    imported = {node.module for node in ast.walk(deep) if isinstance(node, ast.ImportFrom)}
    assert "main" not in imported and "segscope.cli.main" not in imported


def test_serve_refuses_a_folder_that_is_not_there(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "missing")]) == 2  # a usage error, as argparse gives
    assert "missing: not a folder" in capsys.readouterr().err


def test_serve_warns_when_listening_beyond_this_machine(tmp_path, capsys, monkeypatch):
    pytest.importorskip("starlette")
    import segscope.serve.app as app

    started = {}
    monkeypatch.setattr(app, "serve", lambda settings, *, host, port: started.update(host=host, port=port))
    assert main(["serve", str(tmp_path), "--host", "0.0.0.0", "--port", "8123"]) == 0
    assert started == {"host": "0.0.0.0", "port": 8123}
    assert "anyone who reaches this address" in capsys.readouterr().err
