"""Instance and panoptic models: construction, a training step, targets, grouping, training and inference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from _configs import config_of

import segscope
from segscope.datasets import synthetic_shapes
from segscope.models import get_model, get_model_info, group_instances, list_models
from segscope.train import TrainConfig, train
from segscope.train.instances import (
    InstanceFolder,
    PanopticDeepLabLoss,
    instance_sources,
    maskrcnn_targets,
    panoptic_targets,
)

# Few detections keep the untrained mask head (it runs once per detection) fast.
SMALL_MASKRCNN = {"backbone": "resnet18_fpn", "input_size": None, "anchor_sizes": [8, 16, 32, 64, 128],
                  "max_detections": 5, "proposals": 64}
SMALL_PANOPTIC = {"decoder_width": 16, "center_sigma": 2.0}
DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def _instance_map() -> tuple[torch.Tensor, torch.Tensor]:
    m = torch.zeros(40, 50, dtype=torch.int64)
    m[5:15, 5:20] = 3
    m[20:30, 30:46] = 7
    m[0] = -1  # not annotated
    categories = torch.full((8,), -1)
    categories[3], categories[7] = 0, 1
    return m, categories


def test_models_declare_their_task():
    assert {"maskrcnn", "panoptic_deeplab"} <= set(list_models())
    assert get_model_info("maskrcnn").task == "instance"
    assert get_model_info("panoptic_deeplab").task == "panoptic"
    assert get_model_info("unet").task == "semantic"


@pytest.mark.parametrize("backbone", ["resnet18_fpn", "mobilenet_v3_fpn"])
def test_maskrcnn_trains_one_step_and_always_returns_detections(backbone):
    torch.manual_seed(0)
    sizes = [8, 16, 32, 64] if backbone.startswith("mobilenet") else [8, 16, 32, 64, 128]
    model = get_model("maskrcnn", num_classes=2, in_channels=1, backbone=backbone, input_size=None,
                      anchor_sizes=sizes, max_detections=5, proposals=64)
    images = [torch.randn(1, 64, 80), torch.randn(1, 48, 64)]
    m, categories = _instance_map()
    targets = [maskrcnn_targets(m[:, :80][:64], categories),
               maskrcnn_targets(torch.zeros(48, 64, dtype=torch.int64), categories)]
    model.train()
    losses = model.losses(images, targets)
    assert set(losses) >= {"loss_objectness", "loss_classifier", "loss_mask"}
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    for mode in (True, False):
        model.train(mode)
        found = model(images)
        assert isinstance(found, list) and len(found) == 2
        assert found[0]["masks"].shape[-2:] == (64, 80) and found[1]["masks"].shape[-2:] == (48, 64)
        assert set(found[0]) == {"boxes", "labels", "scores", "masks"}


def test_maskrcnn_resnet50_fpn_builds_and_detects():
    model = get_model("maskrcnn", num_classes=1, backbone="resnet50_fpn", input_size=64, max_detections=3,
                      proposals=32).eval()
    found = model(torch.randn(1, 3, 40, 56))
    assert found[0]["masks"].shape[1:] == (1, 40, 56) and len(found[0]["scores"]) <= 3


def test_maskrcnn_checks_its_options_and_loads_local_weights(tmp_path):
    with pytest.raises(ValueError, match="anchor sizes"):
        get_model("maskrcnn", num_classes=1, backbone="resnet18_fpn", anchor_sizes=[8, 16])
    with pytest.raises(ValueError, match="backbone must be one of"):
        get_model("maskrcnn", num_classes=1, backbone="vgg16")
    with pytest.raises(ValueError, match="neither an existing file"):
        get_model("maskrcnn", num_classes=1, backbone="resnet50_fpn", weights="NOT_A_WEIGHT")
    torch.manual_seed(1)
    source = get_model("maskrcnn", num_classes=3, **SMALL_MASKRCNN)
    torch.save(source.state_dict(), tmp_path / "weights.pt")
    # A different number of classes: everything but the class-specific predictors loads.
    loaded = get_model("maskrcnn", num_classes=5, weights=str(tmp_path / "weights.pt"), **SMALL_MASKRCNN)
    a, b = source.state_dict(), loaded.state_dict()
    assert torch.equal(a["detector.backbone.body.conv1.weight"], b["detector.backbone.body.conv1.weight"])
    assert b["detector.roi_heads.box_predictor.cls_score.weight"].shape[0] == 6


def test_panoptic_targets_known_answer():
    m, categories = _instance_map()
    t = panoptic_targets(m, categories, sigma=2.0)
    assert t["semantic"][10, 10] == 1 and t["semantic"][25, 35] == 2 and t["semantic"][35, 5] == 0
    assert (t["semantic"][0] == 255).all() and (t["center_weight"][0] == 0).all()
    # Instance 3 covers rows 5..14 and columns 5..19: centre (9.5, 12).
    assert t["offset"][:, 5, 5].tolist() == [4.5, 7.0]
    assert t["offset_weight"].sum() == 10 * 15 + 10 * 16
    peak = t["center"][0, 9:11, 12]
    assert peak.max() == pytest.approx(np.exp(-0.25 / 8), abs=1e-6)
    boxes = maskrcnn_targets(m, categories)
    assert boxes["boxes"].tolist() == [[5, 5, 20, 15], [30, 20, 46, 30]]
    assert boxes["labels"].tolist() == [0, 1] and boxes["masks"].sum() == 310


def test_grouping_sends_each_pixel_to_the_centre_its_offset_points_at():
    height, width = 20, 30
    semantic = torch.zeros(2, height, width)
    semantic[1, :, :] = 1.0  # every pixel is a thing
    center = torch.zeros(1, height, width)
    center[0, 5, 5], center[0, 14, 24] = 0.9, 0.8
    offset = torch.zeros(2, height, width)
    rows, cols = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    left = cols < 12
    offset[0] = torch.where(left, 5 - rows, 14 - rows).float()
    offset[1] = torch.where(left, 5 - cols, 24 - cols).float()
    instance_map, centers, scores = group_instances(semantic, center, offset, thing_classes=[1])
    assert centers.tolist() == [[5, 5], [14, 24]] and scores.tolist() == pytest.approx([0.9, 0.8])
    assert (instance_map[left] == 1).all() and (instance_map[~left] == 2).all()
    # Stuff pixels belong to no instance.
    semantic[0, :, :15] = 2.0
    instance_map, _, _ = group_instances(semantic, center, offset, thing_classes=[1])
    assert (instance_map[:, :15] == 0).all()


def test_panoptic_deeplab_output_type_and_overfitting():
    torch.manual_seed(0)
    model = get_model("panoptic_deeplab", num_classes=2, in_channels=3, **SMALL_PANOPTIC)
    for mode in (True, False):
        out = model.train(mode)(torch.randn(1, 3, 50, 70))
        assert type(out).__name__ == "PanopticOutput"
        assert [tuple(t.shape) for t in out] == [(1, 2, 50, 70), (1, 1, 50, 70), (1, 2, 50, 70)]
    model.train()
    m, categories = _instance_map()
    categories[7] = 0
    target = {k: v[None] for k, v in panoptic_targets(m, categories, sigma=2.0).items()}
    x = torch.randn(1, 3, 40, 50)
    criterion = PanopticDeepLabLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        optimizer.zero_grad()
        loss, _ = criterion(model(x), target)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert np.isfinite(losses).all() and losses[-1] < 0.5 * losses[0]


def _write_shapes(root: Path, count: int, size: int) -> Path:
    from segscope.io import imwrite, write_label_png

    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for k, sample in enumerate(synthetic_shapes(count, size, seed=4)):
        imwrite(root / "images" / f"{k}.png", sample.image)
        write_label_png(root / "labels" / f"{k}.png", sample.instances.labels.astype(np.uint16))
    return root


def test_instance_sources_read_png_folders_and_coco(tmp_path):
    from segscope.io import write_coco

    root = _write_shapes(tmp_path / "shapes", 3, 48)
    folder = InstanceFolder(instance_sources(root / "images", root / "labels"), mean=[0] * 3, std=[1] * 3)
    samples = synthetic_shapes(3, 48, seed=4)
    image, instance_map, categories = folder.load(1)
    assert (image == samples[1].image).all()
    assert (instance_map == samples[1].instances.labels).all()
    assert categories[0] == -1 and (categories[1:] == 0).all()
    write_coco(tmp_path / "coco.json", {f"{k}.png": s.instances for k, s in enumerate(samples)})
    sources = instance_sources(root / "images", tmp_path / "coco.json")
    coco = InstanceFolder(sources, mean=[0] * 3, std=[1] * 3)
    _, instance_map, categories = coco.load(1)
    assert (instance_map == samples[1].instances.labels).all()
    assert (categories[1:] == samples[1].instances.categories).all()
    with pytest.raises(ValueError, match="not found"):
        instance_sources(tmp_path, tmp_path / "coco.json")
    # Shapes are categories 2 and 3: two classes are too few, and the error says which file.
    too_few = InstanceFolder(sources, mean=[0] * 3, std=[1] * 3, num_classes=2)
    with pytest.raises(ValueError, match=r"0\.png.*not below num_classes 2"):
        too_few.load(0)


def test_instance_sources_read_voc_segmentation_object():
    voc = DATA / "format_fixtures" / "labelme_voc2011" / "voc_instances"
    if not voc.is_dir():
        pytest.skip(f"VOC fixture not found at {voc} (the shared data folder is absent)")
    folder = InstanceFolder(instance_sources(voc / "JPEGImages", voc / "SegmentationObject"),
                            mean=[0] * 3, std=[1] * 3)
    from segscope.io import read_label_png

    for k, source in enumerate(folder.sources):
        _, instance_map, categories = folder.load(k)
        classes = read_label_png(source.classes)
        assert (instance_map[classes == 255] == -1).all()
        for obj in np.unique(instance_map[instance_map > 0]):
            assert categories[obj] == np.bincount(classes[instance_map == obj]).argmax() - 1


def _shapes_config(root: Path, out: Path, model: str, options: dict, **kw) -> TrainConfig:
    base = dict(model=model, train_images=str(root / "images"), train_labels=str(root / "labels"),
                output=str(out), num_classes=1, class_names=["shape"], holdout=1, crop=48, epochs=2,
                batch_size=2, model_options=options, seed=3)
    return config_of(**{**base, **kw})


def test_panoptic_deeplab_trains_and_resumes_exactly(tmp_path):
    root = _write_shapes(tmp_path / "shapes", 5, 48)
    config = _shapes_config(root, tmp_path / "run", "panoptic_deeplab", SMALL_PANOPTIC)
    result = train(config, progress=False)
    assert result.metric == "val_f1" and 0.0 <= result.best_score <= 1.0 and result.steps == 4
    # Stopped after epoch 1 and resumed, the run ends exactly where the straight run ended.
    again = _shapes_config(root, tmp_path / "resumed", "panoptic_deeplab", SMALL_PANOPTIC)
    train(again, stop_after_epoch=1, progress=False)
    resumed = train(again, resume=tmp_path / "resumed" / "last.pt", progress=False)
    first = torch.load(result.checkpoint.parent / "last.pt", weights_only=True)["state_dict"]
    second = torch.load(resumed.checkpoint.parent / "last.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(first[k], second[k]) for k in first)
    image = synthetic_shapes(1, 48, seed=4)[0].image
    seg = segscope.segment(image, str(tmp_path / "run" / "last.pt"))
    assert seg.kind == "instance" and seg.shape == (48, 48) and list(seg.class_names) == ["shape"]
    assert (seg.categories == 0).all() and np.isfinite(seg.scores).all()
    with pytest.raises(TypeError, match="unknown option"):
        segscope.segment(image, str(tmp_path / "run" / "last.pt"), flip=True)


def test_semantic_only_options_are_refused_for_instance_models(tmp_path):
    root = _write_shapes(tmp_path / "shapes", 2, 32)
    config = _shapes_config(root, tmp_path / "run", "panoptic_deeplab", SMALL_PANOPTIC, class_weights="auto")
    with pytest.raises(ValueError, match="class_weights apply to semantic models only"):
        train(config, progress=False)


def test_maskrcnn_trains_and_segments(tmp_path):
    root = _write_shapes(tmp_path / "shapes", 3, 48)
    config = _shapes_config(root, tmp_path / "run", "maskrcnn", SMALL_MASKRCNN, epochs=1)
    result = train(config, progress=False)
    assert result.metric == "val_f1" and result.steps == 1
    image = synthetic_shapes(1, 48, seed=4)[0].image
    seg = segscope.segment(image, str(result.checkpoint), score_threshold=0.0)
    assert seg.kind == "instance" and seg.shape == (48, 48) and len(seg) <= 5
    assert seg.masks is not None and seg.masks.shape == (len(seg), 48, 48)
    from segscope.cli.main import main as cli

    args = ["predict", str(root / "images"), "--checkpoint", str(result.checkpoint), "--panoptic"]
    assert cli([*args, "-o", str(tmp_path / "out")]) == 2


def test_panoptic_output_and_cli_predict_writes_coco(tmp_path, capsys):
    from segscope.cli.main import main as cli
    from segscope.infer import InstanceSegmenter
    from segscope.io import read_coco

    root = _write_shapes(tmp_path / "shapes", 4, 48)
    config = config_of(model="panoptic_deeplab", train_images=str(root / "images"),
                         train_labels=str(root / "labels"), output=str(tmp_path / "run"), num_classes=1,
                         crop=48, epochs=1, batch_size=2, model_options=SMALL_PANOPTIC)
    train(config, progress=False)
    segmenter = InstanceSegmenter.from_checkpoint(tmp_path / "run" / "best.pt")
    pan = segmenter.segment(synthetic_shapes(1, 48, seed=4)[0].image, output="panoptic")
    assert pan.kind == "panoptic" and list(pan.class_names) == ["background", "object_0"]
    assert set(pan.categories[~pan.is_thing]) <= {0} and set(pan.categories[pan.is_thing]) <= {1}
    code = cli(["predict", str(root / "images"), "--checkpoint", str(tmp_path / "run" / "best.pt"),
                "--format", "coco", "-o", str(tmp_path / "out")])
    assert code == 0 and "predicted 4 of 4" in capsys.readouterr().out
    onnx_file = str(tmp_path / "m.onnx")
    assert cli(["export", "--checkpoint", str(tmp_path / "run" / "best.pt"), "-o", onnx_file]) == 2
    assert "covers semantic models" in capsys.readouterr().err
    records = read_coco(tmp_path / "out" / "annotations.json")
    assert len(records) == 4 and all(r.segmentation.shape == (48, 48) for r in records)
    # The same predictions as label PNGs score against the truth with `evaluate`, and the
    # checkpoint runs beside a classical method in `compare`.
    checkpoint = str(tmp_path / "run" / "best.pt")
    png = tmp_path / "png"
    assert cli(["predict", str(root / "images"), "--checkpoint", checkpoint, "-o", str(png)]) == 0
    capsys.readouterr()
    assert cli(["evaluate", "--pred", str(png), "--truth", str(root / "labels"),
                "--task", "instance"]) == 0
    assert "f1@0.5" in capsys.readouterr().out
    assert cli(["compare", str(root / "images"), "--methods", f"watershed_instances,{checkpoint}",
                "--truth", str(root / "labels"), "--task", "instance", "-o", str(tmp_path / "cmp")]) == 0
    assert checkpoint in (tmp_path / "cmp" / "index.html").read_text()


def test_an_instance_checkpoint_segments_a_tiled_image(tmp_path):
    pytest.importorskip("zarr", reason="tiled processing needs segscope[scale]")
    import tifffile

    from segscope.tiled import segment_tiled

    root = _write_shapes(tmp_path / "shapes", 3, 48)
    checkpoint = train(_shapes_config(root, tmp_path / "run", "panoptic_deeplab", SMALL_PANOPTIC, epochs=1),
                       progress=False).checkpoint
    image = np.concatenate([synthetic_shapes(1, 96, seed=s)[0].image for s in (4, 5)], axis=1)
    tifffile.imwrite(tmp_path / "big.tif", image, tile=(32, 32))
    result = segment_tiled(tmp_path / "big.tif", checkpoint, tmp_path / "out.zarr", tile=64, overlap=32,
                           params={"score_threshold": 0.0}, workers=1, progress=False)
    labels = result.read()
    assert result.kind == "instance" and result.class_names == ("shape",) and labels.shape == (96, 192)
    # Objects are numbered 1..n with no gaps, whichever tile found them.
    assert sorted(set(np.unique(labels).tolist()) - {0}) == list(range(1, result.objects + 1))


@pytest.mark.parametrize(("model", "options"),
                         [("panoptic_deeplab", SMALL_PANOPTIC), ("maskrcnn", SMALL_MASKRCNN)])
def test_validation_scores_what_segment_and_evaluate_score(tmp_path, model, options):
    # Training validates through the predictor that runs the checkpoint afterwards, so the F1 in
    # the log is the F1 that `segscope.segment` + `evaluate` give on the same held-out images.
    from segscope.infer.instances import MIN_AREA
    from segscope.io import read_label_png
    from segscope.metrics import Evaluator

    root = _write_shapes(tmp_path / "shapes", 4, 48)
    config = _shapes_config(root, tmp_path / "run", model, options, epochs=1, holdout=2)
    result = train(config, progress=False)
    evaluator = Evaluator(task="instance")
    for k in (2, 3):  # the held-out pairs: the last two
        image = segscope.imread(root / "images" / f"{k}.png")
        found = segscope.segment(image, str(result.checkpoint))
        assert found.provenance.parameters["min_area"] == MIN_AREA
        assert (found.areas() >= MIN_AREA).all()
        truth = read_label_png(root / "labels" / f"{k}.png")
        evaluator.update(found.labels, truth, name=str(k))
    assert evaluator.compute()["f1@0.5"] == pytest.approx(result.history[-1]["val_f1"], nan_ok=True)
