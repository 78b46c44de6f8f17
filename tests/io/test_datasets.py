"""read_annotations: one reader for every annotation form evaluate accepts."""

from __future__ import annotations

import numpy as np
import pytest

from segscope.cli.main import main
from segscope.io.datasets import read_annotations


def test_reads_coco_and_coco_panoptic(data_dir):
    fixtures = data_dir / "format_fixtures"
    task, coco = read_annotations(fixtures / "labelme_voc2011" / "coco_instances" / "annotations.json")
    assert task == "instance" and len(coco) == 3
    assert sum(len(a.value.ids) for a in coco.values()) == 12
    task, pan = read_annotations(fixtures / "coco_panoptic_sample" / "sample_data" / "panoptic_examples.json")
    assert task == "panoptic" and len(pan) == 2
    assert all(a.crowd is not None and a.crowd.any() for a in pan.values())


def test_panoptic_json_evaluates_against_itself(data_dir, capsys):
    path = data_dir / "format_fixtures" / "coco_panoptic_sample" / "sample_data" / "panoptic_examples.json"
    assert main(["evaluate", "--pred", str(path), "--truth", str(path)]) == 0
    assert "things_pq" in capsys.readouterr().out


def test_bad_inputs_name_the_file(tmp_path):
    bad = tmp_path / "a.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match=r"a\.json: not valid JSON"):
        read_annotations(bad)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"no annotation files of a known format.*png: \.png \.tif"):
        read_annotations(tmp_path / "empty")
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(ValueError, match="expected a folder"):
        read_annotations(tmp_path / "x.txt")


def test_label_folder_as_instances(tmp_path):
    from segscope.io import write_label_png

    labels = np.zeros((6, 6), np.uint16)
    labels[:2, :2], labels[4:, 4:] = 3, 9
    write_label_png(tmp_path / "cells.png", labels)
    task, entries = read_annotations(tmp_path, task="instance")
    assert task == "instance"
    np.testing.assert_array_equal(entries["cells"].value.ids, [3, 9])
