"""`segscope evaluate` and `segscope compare` from the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from segscope.cli.main import main
from segscope.io import imwrite, write_label_png


def _write_pairs(tmp_path, pred_values, truth_values):
    pred, truth = tmp_path / "pred", tmp_path / "truth"
    pred.mkdir()
    truth.mkdir()
    for k, (p, t) in enumerate(zip(pred_values, truth_values, strict=True)):
        write_label_png(pred / f"img{k}.png", np.asarray(p))
        write_label_png(truth / f"img{k}.png", np.asarray(t))
    return pred, truth


def test_evaluate_semantic_folders(tmp_path, capsys):
    t = np.array([[0, 0, 1, 1], [2, 2, 255, 255]])
    p = np.array([[0, 1, 1, 1], [2, 2, 0, 0]])
    pred, truth = _write_pairs(tmp_path, [p, p], [t, t])
    names = tmp_path / "names.txt"
    names.write_text("sky\nroad\ncar\n")
    out = tmp_path / "report.json"
    code = main(["evaluate", "--pred", str(pred), "--truth", str(truth), "--ignore", "255",
                 "--num-classes", "3", "--classes", str(names), "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "miou" in printed and "road" in printed
    report = json.loads(out.read_text())
    assert report["scores"]["pixel_accuracy"] == pytest.approx(5 / 6)
    assert [row["name"] for row in report["per_image"]] == ["img0", "img1"]


def test_evaluate_instance_folders(tmp_path, capsys):
    t = np.zeros((20, 20), np.uint16)
    t[2:8, 2:8], t[10:18, 10:18] = 1, 2
    pred, truth = _write_pairs(tmp_path, [t], [t])
    assert main(["evaluate", "--pred", str(pred), "--truth", str(truth), "--task", "instance"]) == 0
    printed = capsys.readouterr().out
    assert "AP50" in printed and "f1@0.5" in printed


def test_evaluate_reports_unpaired_files(tmp_path, capsys):
    t = np.zeros((4, 4), np.uint8)
    pred, truth = _write_pairs(tmp_path, [t], [t])
    write_label_png(truth / "extra.png", t)
    with pytest.raises(SystemExit, match="1 truth image"):
        main(["evaluate", "--pred", str(pred), "--truth", str(truth)])
    assert main(["evaluate", "--pred", str(tmp_path / "nope"), "--truth", str(truth)]) == 2
    assert "no such file" in capsys.readouterr().err


def test_evaluate_bsds_truth(data_dir, tmp_path, capsys):
    from segscope.io import read_bsds_groundtruth

    gt_dir = data_dir / "bsds500" / "official_bench_fixtures" / "data" / "groundTruth"
    pred = tmp_path / "pred"
    pred.mkdir()
    for mat in sorted(gt_dir.glob("*.mat")):
        write_label_png(pred / f"{mat.stem}.png", read_bsds_groundtruth(mat).segmentations[0].labels)
    assert main(["evaluate", "--pred", str(pred), "--truth", str(gt_dir)]) == 0
    printed = capsys.readouterr().out
    assert "regions evaluation of 5 image(s)" in printed and "covering" in printed


def test_compare_writes_an_offline_report(tmp_path, capsys):
    from skimage import data

    images = tmp_path / "images"
    images.mkdir()
    coins = data.coins()[:120, :160]
    imwrite(images / "coins.png", coins)
    truth = tmp_path / "truth"
    truth.mkdir()
    write_label_png(truth / "coins.png", (coins > 110).astype(np.uint8))
    out = tmp_path / "report"
    code = main(["compare", str(images), "--methods", "otsu,mean", "--truth", str(truth),
                 "--task", "instance", "-p", "otsu.nbins=128", "-o", str(out)])
    assert code == 0
    page = (out / "index.html").read_text()
    assert "otsu" in page and "mean" in page and "histogram and chosen threshold" in page
    assert "<script" not in page and "src='http" not in page  # opens offline
    printed = capsys.readouterr().out
    assert "seconds" in printed and "f1@0.5" in printed


def test_compare_rejects_unknown_method_and_bad_parameter(tmp_path, capsys):
    assert main(["compare", str(tmp_path), "--methods", "otsu,nosuch", "-o", str(tmp_path / "o")]) == 2
    assert "nosuch" in capsys.readouterr().err
    with pytest.raises(SystemExit, match=r"METHOD\.KEY=VALUE"):
        main(["compare", str(tmp_path), "--methods", "otsu", "-p", "bins=3", "-o", str(tmp_path / "o")])


def test_evaluate_maps_truth_labels_and_compare_checks_its_arguments(tmp_path, capsys):
    from segscope.cli.main import main
    from segscope.io import write_label_png

    (tmp_path / "truth").mkdir()
    (tmp_path / "pred").mkdir()
    truth = np.zeros((8, 8), np.uint8)
    truth[:, 4:] = 255  # ISBI-style: 255 is a class, not void
    write_label_png(tmp_path / "truth" / "a.png", truth)
    write_label_png(tmp_path / "pred" / "a.png", (truth > 0).astype(np.uint8))
    args = ["evaluate", "--pred", str(tmp_path / "pred"), "--truth", str(tmp_path / "truth"),
            "--num-classes", "2"]
    assert main([*args, "--label-map", "255:1", "--json", str(tmp_path / "r.json")]) == 0
    capsys.readouterr()
    assert json.loads((tmp_path / "r.json").read_text())["scores"]["miou"] == 1.0
    assert main(args) == 1  # unmapped, 255 is outside the two classes: a clear error, no traceback
    assert "outside 0..1" in capsys.readouterr().err
    assert main([*args, "--json", str(tmp_path / "missing" / "r.json"), "--label-map", "255:1"]) == 1
    assert "cannot write" in capsys.readouterr().err
    imwrite(tmp_path / "a.png", truth)
    for bad, says in ((["--limit", "0"], "--limit must be at least 1"), (["--limit", "-1"], "--limit"),
                      (["--methods", ","], "names no method")):
        cmd = ["compare", str(tmp_path / "a.png"), "--methods", "otsu", "-o", str(tmp_path / "r"), *bad]
        assert main(cmd) == 2
        assert says in capsys.readouterr().err


def test_info_shows_infinite_values_and_palette_indices(tmp_path, capsys):
    import tifffile

    from segscope.cli.main import main
    from segscope.io import image_info, write_palette_png

    values = np.array([[1.0, np.inf], [2.0, -np.inf]], np.float32)
    tifffile.imwrite(tmp_path / "f.tif", values)
    info = image_info(tmp_path / "f.tif")
    assert info.has_inf and (info.minimum, info.maximum) == (1.0, 2.0)
    write_palette_png(tmp_path / "p.png", np.array([[0, 3], [7, 1]], np.uint8))
    info = image_info(tmp_path / "p.png")
    assert info.palette and info.channels == 1 and info.shape == (2, 2) and info.maximum == 7
    assert main(["info", str(tmp_path / "f.tif"), str(tmp_path / "p.png")]) == 0
    out = capsys.readouterr().out
    assert "contains infinite values" in out and "palette indices" in out


def test_compare_reports_an_unreadable_image_and_goes_on(tmp_path, capsys):
    folder = tmp_path / "images"
    folder.mkdir()
    imwrite(folder / "good.png", (np.arange(64).reshape(8, 8) * 4).astype(np.uint8))
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    assert main(["compare", str(folder), "--methods", "otsu,li", "-o", str(tmp_path / "r")]) == 1
    page = (tmp_path / "r" / "index.html").read_text()
    assert "cannot read the image" in page and "broken.png" in page
    assert "good" in page and "otsu failed" not in page.split("<h2>good</h2>")[1]
    assert "broken.png" in capsys.readouterr().err
