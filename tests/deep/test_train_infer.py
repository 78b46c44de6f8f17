"""Training, exact resume, checkpoints, sliding-window inference, ONNX export, and the CLI."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from _configs import config_of
from hypothesis import given, settings
from hypothesis import strategies as st

import segscope
from segscope.infer import (
    Segmenter,
    export_onnx,
    gaussian_weight,
    load_predictor,
    sliding_window,
    tile_starts,
)
from segscope.io import read_label_png
from segscope.models import get_model
from segscope.train import SegmentationLoss, TrainConfig, load_checkpoint, median_frequency_weights, train

TINY = {"base_width": 4, "depth": 2}


def _config(root, out, **kw) -> TrainConfig:
    base = dict(
        model="unet",
        model_options=TINY,
        train_images=str(root / "train" / "images"),
        train_labels=str(root / "train" / "labels"),
        val_images=str(root / "val" / "images"),
        val_labels=str(root / "val" / "labels"),
        output=str(out),
        num_classes=2,
        class_names=["background", "disc"],
        ignore_index=255,
        crop=32,
        epochs=2,
        batch_size=4,
        seed=1,
    )
    base.update(kw)
    return config_of(**base)


def test_overfitting_one_batch_drives_the_loss_down():
    torch.manual_seed(0)
    model = get_model("unet", num_classes=2, in_channels=3, **TINY)
    x = torch.randn(2, 3, 32, 32)
    y = (x[:, 0] > 0).long()
    criterion = SegmentationLoss("ce+dice", num_classes=2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]


def test_intensity_augmentation_inverts_and_jitters_each_channel_apart():
    from segscope.train import Augment

    x = torch.randn(3, 8, 8)
    assert torch.equal(Augment(colour=0.0).intensity(x), x)
    assert torch.equal(Augment(colour=0.0, invert=1.0).intensity(x), -x)
    torch.manual_seed(0)
    stained = Augment(colour=0.0, stain=0.3).intensity(x)
    # Each channel is its own affine function of the original, with its own gain.
    gains = [float(torch.linalg.lstsq(torch.stack([x[c].ravel(), torch.ones(64)], 1),
                                      stained[c].ravel()[:, None]).solution[0]) for c in range(3)]
    assert all(0.7 - 1e-5 <= g <= 1.3 + 1e-5 for g in gains) and len(set(np.round(gains, 4))) == 3


def test_elastic_deformation_moves_image_and_mask_together_and_keeps_labels():
    from torchvision import tv_tensors

    from segscope.train.data import ElasticDeform

    rows, cols = torch.meshgrid(torch.arange(96), torch.arange(128), indexing="ij")
    labels = (rows // 16) * 8 + cols // 16  # 6x8 blocks of 16 pixels, 48 labels
    image = labels[None].float()
    torch.manual_seed(0)
    moved, mask = ElasticDeform(6.0, spacing=32)(tv_tensors.Image(image), tv_tensors.Mask(labels))
    assert mask.dtype == labels.dtype and mask.shape == labels.shape
    assert set(mask.unique().tolist()) <= set(labels.unique().tolist())
    changed = mask != labels
    assert 0.05 < float(changed.float().mean()) < 0.6  # deformed, not scrambled
    # The same displacement moved both: away from block edges the bilinear image is the label.
    inside = torch.isclose(moved[0], moved[0].round())
    assert float(inside.float().mean()) > 0.5
    assert torch.equal(moved[0][inside].round().long(), mask[inside])
    # No displacement is the identity.
    same, same_mask = ElasticDeform(0.0)(tv_tensors.Image(image), tv_tensors.Mask(labels))
    assert torch.allclose(same, image, atol=1e-4) and torch.equal(same_mask, labels)
    with pytest.raises(ValueError, match="sigma"):
        ElasticDeform(-1.0)


def test_the_elastic_setting_reaches_the_augmentation_and_is_checked(tmp_path):
    from segscope.train.adapters import augment_of

    assert augment_of(_config(tmp_path, tmp_path / "a", elastic=7.5)).elastic == 7.5
    with pytest.raises(ValueError, match="elastic must be a non-negative"):
        _config(tmp_path, tmp_path / "b", elastic=-1.0).validate()


def test_area_sampling_draws_each_image_in_proportion_to_its_pixels():
    from segscope.train.data import AreaSampler

    weights = [256 * 256, 0, 1024 * 1024, 256 * 320]
    sampler = AreaSampler(weights, seed=3)
    counts = np.zeros(len(weights))
    epochs = []
    for epoch in range(2000):
        sampler.set_epoch(epoch)
        draws = list(sampler)
        assert len(draws) == len(sampler) == len(weights)
        np.add.at(counts, draws, 1)
        epochs.append(draws)
    share = np.asarray(weights) / sum(weights)
    # 8,000 draws: each share within 4 standard deviations of its expectation; never the empty one.
    spread = np.sqrt(share * (1 - share) / counts.sum())
    assert counts[1] == 0 and np.all(np.abs(counts / counts.sum() - share) <= 4 * spread + 1e-12)
    uniform = AreaSampler([1] * 50, seed=3)
    drawn = []
    for epoch in (0, 1):
        uniform.set_epoch(epoch)
        drawn.append(list(uniform))
    assert drawn[0] != drawn[1]  # drawn afresh each epoch
    sampler.set_epoch(7)
    assert list(sampler) == epochs[7]  # the same epoch draws the same images (exact resume)
    # Under torchrun, two processes take alternate draws of the same sequence.
    shares = [AreaSampler(weights, seed=3, rank=r, world_size=2) for r in (0, 1)]
    for s in shares:
        s.set_epoch(7)
    assert list(shares[0]) == epochs[7][0::2] and list(shares[1]) == epochs[7][1::2]
    for bad in ([], [0, 0], [1, -1], [1, float("nan")]):
        with pytest.raises(ValueError, match="weights"):
            AreaSampler(bad, seed=0)
    with pytest.raises(ValueError, match="rank"):
        AreaSampler([1], seed=0, rank=2, world_size=2)


def test_area_sampling_trains_resumes_exactly_and_is_checked(toy_dataset, tmp_path):
    from segscope.train.data import LabelledFolder, image_areas, pair_by_stem

    straight = train(_config(toy_dataset, tmp_path / "a", sampling="area"), progress=False)
    train(_config(toy_dataset, tmp_path / "b", sampling="area"), stop_after_epoch=1, progress=False)
    resumed = train(_config(toy_dataset, tmp_path / "b", sampling="area"), resume=tmp_path / "b" / "last.pt",
                    progress=False)
    a, b = (load_checkpoint(tmp_path / run / "last.pt") for run in ("a", "b"))
    for key, value in a.state_dict.items():
        assert torch.equal(value, b.state_dict[key]), key
    assert straight.steps == resumed.steps == 4  # 10 draws an epoch, batches of 4, the last dropped
    pairs = pair_by_stem(toy_dataset / "train" / "images", toy_dataset / "train" / "labels")
    assert image_areas(LabelledFolder(pairs, mean=(0, 0, 0), std=(1, 1, 1))) == [48 * 64] * 10
    with pytest.raises(ValueError, match="sampling must be one of image, area"):
        _config(toy_dataset, tmp_path / "c", sampling="pixels").validate()
    with pytest.raises(ValueError, match="needs a dataset of whole images"):
        image_areas(torch.utils.data.TensorDataset(torch.zeros(3)))


def test_losses_respect_the_ignore_index():
    logits = torch.randn(1, 3, 4, 4)
    target = torch.randint(0, 3, (1, 4, 4))
    masked = target.clone()
    masked[0, 0] = 255
    for spec in ("ce", "dice", "focal", "ce+dice"):
        loss = SegmentationLoss(spec, num_classes=3)
        value = loss(logits, masked)
        assert torch.isfinite(value)
        # Changing an ignored pixel's logits changes nothing.
        other = logits.clone()
        other[0, :, 0] += 5
        assert torch.allclose(loss(other, masked), value)
    with pytest.raises(ValueError, match="loss terms"):
        SegmentationLoss("mse", num_classes=3)
    assert median_frequency_weights([10, 30, 0]) == pytest.approx([2.0, 2 / 3, 0.0])


def test_resume_continues_exactly(toy_dataset, tmp_path):
    straight = train(_config(toy_dataset, tmp_path / "a", epochs=2), progress=False)
    train(_config(toy_dataset, tmp_path / "b", epochs=2), stop_after_epoch=1, progress=False)
    resumed = train(
        _config(toy_dataset, tmp_path / "b", epochs=2), resume=tmp_path / "b" / "last.pt", progress=False
    )
    a = load_checkpoint(tmp_path / "a" / "last.pt")
    b = load_checkpoint(tmp_path / "b" / "last.pt")
    for key, value in a.state_dict.items():
        assert torch.equal(value, b.state_dict[key]), key
    assert straight.steps == resumed.steps
    assert [r["loss"] for r in a.scores.history] == [r["loss"] for r in b.scores.history]
    assert (tmp_path / "a" / "log.csv").read_text().startswith("epoch,step,loss")
    assert a.class_names == ("background", "disc") and a.inputs.channels == 3
    assert a.inputs.dtype == "uint8" and 0 <= a.inputs.value_range[0] < a.inputs.value_range[1] <= 255


def test_validation_every_n_epochs_and_after_the_last(toy_dataset, tmp_path):
    result = train(_config(toy_dataset, tmp_path / "a", epochs=5, val_every=2), progress=False)
    history = load_checkpoint(tmp_path / "a" / "last.pt").scores.history
    assert [r["epoch"] for r in history if "val_miou" in r] == [2, 4, 5]
    assert len(history) == 5 and result.best_epoch in (2, 4, 5)
    with pytest.raises(ValueError, match="val_every must be positive"):
        _config(toy_dataset, tmp_path / "b", val_every=0).validate()


def test_keep_last_makes_best_pt_the_final_epoch_even_for_a_finished_run(toy_dataset, tmp_path):
    first = train(_config(toy_dataset, tmp_path / "a", epochs=4, lr=0.05), progress=False)
    scored = [r["val_miou"] for r in first.history]
    assert first.best_epoch < 4 and first.best_score == max(scored) > scored[-1]  # keep="best" chose earlier
    best, last = tmp_path / "a" / "best.pt", tmp_path / "a" / "last.pt"
    # the same finished run resumed with keep="last" (a setting a resume may change) trains nothing
    kept = train(_config(toy_dataset, tmp_path / "a", epochs=4, lr=0.05, keep="last"), resume=last,
                 progress=False)
    assert kept.steps == first.steps and (kept.best_epoch, kept.best_score) == (4, scored[-1])
    a, b = load_checkpoint(best), load_checkpoint(last)
    assert all(torch.equal(v, b.state_dict[k]) for k, v in a.state_dict.items())
    assert (a.scores.best_epoch, a.scores.best_score) == (4, scored[-1])
    # from scratch, the kept weights are the final epoch's too
    fresh = train(_config(toy_dataset, tmp_path / "b", epochs=4, lr=0.05, keep="last"), progress=False)
    assert fresh.best_epoch == 4 and fresh.best_score == scored[-1]
    with pytest.raises(ValueError, match="keep must be 'best' or 'last'"):
        _config(toy_dataset, tmp_path / "c", keep="first").validate()


def test_bfloat16_mixed_precision_trains_on_cpu_with_float32_weights(toy_dataset, tmp_path):
    full = train(_config(toy_dataset, tmp_path / "a", epochs=3, mixed_precision="off"), progress=False)
    half = train(_config(toy_dataset, tmp_path / "b", epochs=3, mixed_precision="bf16"), progress=False)
    a, b = load_checkpoint(full.checkpoint), load_checkpoint(half.checkpoint)
    assert all(v.dtype == torch.float32 for v in b.state_dict.values() if v.is_floating_point())
    # the network ran in bfloat16: the same seed and data give other weights, and it learns as well
    assert any(not torch.equal(v, b.state_dict[k]) for k, v in a.state_dict.items() if v.is_floating_point())
    losses = [r["loss"] for r in half.history]
    assert losses[-1] < losses[0] and half.best_score > full.best_score - 0.1
    assert b.recipe["optim"]["mixed_precision"] == "bf16"
    # recipes written before mixed_precision said amp: true or false
    old = {**_config(toy_dataset, tmp_path / "c").to_dict()}
    old["optim"] = {k: v for k, v in old["optim"].items() if k != "mixed_precision"} | {"amp": False}
    assert TrainConfig.from_dict(old).optim.mixed_precision == "off"
    with pytest.raises(ValueError, match="mixed_precision must be one of cuda, bf16, off"):
        _config(toy_dataset, tmp_path / "d", mixed_precision="fp8").validate()


def test_bfloat16_on_a_cpu_that_emulates_it_warns_and_still_runs_it(monkeypatch):
    import warnings

    from segscope.infer.predictor import autocast_dtype, cpu_computes_bfloat16

    for avx512_bf16, amx, native in ((False, False, False), (True, False, True), (False, True, True)):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda v=avx512_bf16: v, raising=False)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda v=amx: v, raising=False)
        assert cpu_computes_bfloat16() is native
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert autocast_dtype("bf16", "cpu") == torch.bfloat16  # asked for: run as asked
            assert autocast_dtype("off", "cpu") is None and autocast_dtype("cuda", "cpu") is None
        said = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
        assert len(said) == (0 if native else 1)
        assert all("without native bfloat16" in m and "slower than float32" in m for m in said)
    # a PyTorch that cannot tell: nothing is warned of
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported")
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported")
    assert cpu_computes_bfloat16() is True


def test_a_time_box_ends_at_an_epoch_and_the_same_call_continues(toy_dataset, tmp_path):
    boxed = train(_config(toy_dataset, tmp_path / "a", epochs=3), stop_after_minutes=0, progress=False)
    assert boxed.epochs == 1
    last = tmp_path / "a" / "last.pt"
    resumed = train(_config(toy_dataset, tmp_path / "a", epochs=3), resume=last, progress=False)
    finished = train(_config(toy_dataset, tmp_path / "a", epochs=3), resume=last, progress=False)
    assert resumed.epochs == finished.epochs == 3 and finished.steps == resumed.steps
    seconds = [row["seconds"] for row in finished.history]
    assert seconds == sorted(seconds) and len(seconds) == 3  # training time summed over the calls


def test_percentile_normalisation_is_recorded_and_makes_the_dtype_irrelevant(toy_dataset, tmp_path):
    result = train(_config(toy_dataset, tmp_path / "a", epochs=1, normalise="percentile"), progress=False)
    saved = load_checkpoint(result.checkpoint)
    assert saved.inputs.percentiles == (1.0, 99.8)
    image = segscope.imread(toy_dataset / "val" / "images" / "img0.png")
    as_uint8 = segscope.segment(image, result.checkpoint)
    # The same picture stored in 16 bits (x 257) maps to the same values: the same answer.
    as_uint16 = segscope.segment(image.astype(np.uint16) * 257, result.checkpoint)
    assert np.array_equal(as_uint8.class_map(), as_uint16.class_map())
    assert "percentiles" in as_uint16.provenance.details["input_units"]
    pytest.importorskip("onnxruntime")
    export_onnx(result.checkpoint, tmp_path / "m.onnx", tile=64)
    assert Segmenter.from_onnx(tmp_path / "m.onnx").inputs.percentiles == (1.0, 99.8)
    with pytest.raises(ValueError, match="normalise must be one of"):
        _config(toy_dataset, tmp_path / "b", normalise="zscore").validate()


def test_a_run_from_before_a_setting_existed_resumes_with_its_default(toy_dataset, tmp_path):
    import dataclasses

    from segscope.train import save_checkpoint

    train(_config(toy_dataset, tmp_path / "a", epochs=2), stop_after_epoch=1, progress=False)
    last = tmp_path / "a" / "last.pt"
    saved = load_checkpoint(last)
    older = {**saved.recipe, "data": {k: v for k, v in saved.recipe["data"].items() if k != "stain"}}
    save_checkpoint(last, dataclasses.replace(saved, recipe=older))
    assert train(_config(toy_dataset, tmp_path / "a", epochs=2), resume=last, progress=False).epochs == 2


def test_resume_refuses_other_settings(toy_dataset, tmp_path):
    train(_config(toy_dataset, tmp_path / "b", epochs=2), stop_after_epoch=1, progress=False)
    with pytest.raises(ValueError, match=r"other settings \(optim\.lr: 0\.001 there, 0\.01 now\)"):
        train(_config(toy_dataset, tmp_path / "b", epochs=2, lr=1e-2), resume=tmp_path / "b" / "last.pt",
              progress=False)
    more = train(_config(toy_dataset, tmp_path / "b", epochs=3), resume=tmp_path / "b" / "last.pt",
                 progress=False)  # more epochs may be asked
    assert more.epochs == 3


def test_checkpoints_load_without_running_code(tmp_path):
    class Hostile:
        def __reduce__(self):
            return (print, ("code ran",))

    path = tmp_path / "evil.pt"
    torch.save({"format": "segscope.checkpoint", "payload": Hostile()}, path)
    with pytest.raises(ValueError, match="not a segscope checkpoint") as refused:
        load_checkpoint(path)
    assert "weights_only=False" not in str(refused.value)  # never advise running the file's code
    torch.save({"hello": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a segscope checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_tiles_cover_the_image_and_blend_smoothly():
    assert tile_starts(100, 40, 30) == [0, 30, 60]
    assert tile_starts(30, 40, 30) == [0]
    w = gaussian_weight(16)
    assert w.max() == 1.0 and w.min() > 0 and w[8, 8] > w[0, 0]


def test_sliding_window_equals_whole_image_when_one_window_covers_it():
    torch.manual_seed(0)
    model = get_model("unet", num_classes=3, in_channels=2, **TINY).eval()

    def logits_fn(batch):
        with torch.inference_mode():
            return model(torch.from_numpy(batch)).numpy()

    image = np.random.default_rng(0).normal(size=(2, 40, 56)).astype(np.float32)
    whole = sliding_window(image, logits_fn, num_classes=3, tile=None)
    covering = sliding_window(image, logits_fn, num_classes=3, tile=64)
    np.testing.assert_allclose(covering, whole, atol=1e-6)
    tiled = sliding_window(image, logits_fn, num_classes=3, tile=16, overlap=0.5)
    assert tiled.shape == (3, 40, 56)
    np.testing.assert_allclose(tiled.sum(0), 1, atol=1e-5)


def test_trained_model_segments_as_a_method_and_exports_to_onnx(toy_dataset, tmp_path):
    pytest.importorskip("onnxruntime")
    result = train(_config(toy_dataset, tmp_path / "run", epochs=3, lr=1e-2), progress=False)
    image = segscope.imread(toy_dataset / "val" / "images" / "img0.png")
    seg = segscope.segment(image, str(result.checkpoint))
    assert seg.kind == "semantic" and seg.probabilities.shape == (2, 48, 64)
    assert seg.class_names == ("background", "disc")
    assert seg.provenance.method == str(result.checkpoint)
    assert seg.provenance.details["model"] == "unet"  # the predictor's details reach the result
    # the network runs in its family's memory_format (channels last for 2-D; the ONNX
    # comparison below checks its logits against the layout-free graph)
    from segscope.checkpoint import load_checkpoint
    from segscope.infer.predictor import build_network

    kernels = [p for p in build_network(load_checkpoint(result.checkpoint))[0].parameters() if p.ndim == 4]
    assert kernels and all(k.is_contiguous(memory_format=torch.channels_last) for k in kernels)
    direct = load_predictor(result.checkpoint).segment(image)  # as `segscope predict` runs it
    assert direct.provenance.method == str(result.checkpoint)
    assert direct.provenance.details["model"] == "unet"
    with pytest.raises(TypeError, match="unknown option"):
        segscope.segment(image, str(result.checkpoint), sigma=3)

    onnx_path = tmp_path / "model.onnx"
    export_onnx(result.checkpoint, onnx_path, tile=64)
    torch_seg = Segmenter.from_checkpoint(result.checkpoint, tile=64)
    onnx_seg = Segmenter.from_onnx(onnx_path)
    x = torch_seg.normalise(image)
    tile = np.ascontiguousarray(np.pad(x, ((0, 0), (0, 16), (0, 0)), mode="reflect")[None])
    np.testing.assert_allclose(onnx_seg.logits_fn(tile), torch_seg.logits_fn(tile), atol=1e-4)
    big = np.tile(image, (3, 2, 1))  # 144 x 128: tiled by both backends
    np.testing.assert_allclose(onnx_seg.probabilities(big), torch_seg.probabilities(big), atol=1e-4)


def test_other_dtypes_are_brought_to_the_training_units_or_refused(toy_dataset, tmp_path):
    # Trained on 8-bit images: the same picture as uint16 or as floats in 0..1 segments the same
    # (it used to come out as one class everywhere); floats of another scale are refused.
    result = train(_config(toy_dataset, tmp_path / "run", epochs=2, lr=1e-2), progress=False)
    image = segscope.imread(toy_dataset / "val" / "images" / "img0.png")
    expected = segscope.segment(image, result.checkpoint).class_map()
    assert len(np.unique(expected)) == 2
    wide = segscope.segment(image.astype(np.uint16) * 257, result.checkpoint)
    np.testing.assert_array_equal(wide.class_map(), expected)
    assert wide.provenance.details["input_units"] == "uint16 scaled to uint8"
    unit = segscope.segment(image.astype(np.float32) / 255, result.checkpoint)
    assert np.mean(unit.class_map() == expected) > 0.999  # float rounding only
    with pytest.raises(ValueError, match=r"trained on uint8 images.*float32 image spans \[20, 2220\]"):
        segscope.segment(image.astype(np.float32) * 10, result.checkpoint)


def test_labels_outside_the_classes_are_refused_unless_declared(toy_dataset, tmp_path):
    # The toy labels hold a band of 255: without --ignore 255 it is neither a class nor declared
    # void (ISBI's 255 is its cell class: the message says how to map it).
    refused = r"outside 0\.\.1: 255 \(in 12 of 12 files.*--label-map 255:1.*--ignore 255"
    with pytest.raises(ValueError, match=refused):
        train(_config(toy_dataset, tmp_path / "run", ignore_index=None), progress=False)
    mapped = train(_config(toy_dataset, tmp_path / "mapped", ignore_index=None, label_map={255: 1},
                           epochs=1), progress=False)
    assert mapped.steps >= 1


def test_checkpoints_of_schema_1_still_load(toy_dataset, tmp_path):
    # A first-release checkpoint: one flat dict, the model's name inside its options.
    result = train(_config(toy_dataset, tmp_path / "run", epochs=1), progress=False)
    now = load_checkpoint(result.checkpoint)
    old = {"format": "segscope.checkpoint", "version": 1, "task": "semantic",
           "model": {"name": now.model, **now.options}, "state_dict": now.state_dict,
           "class_names": list(now.class_names),
           "normalisation": {"mean": list(now.inputs.mean), "std": list(now.inputs.std)},
           "crop": now.inputs.crop, "ignore_index": 255, "label_map": None, "train_config": now.recipe}
    torch.save(old, tmp_path / "v1.pt")
    read = load_checkpoint(tmp_path / "v1.pt")
    assert (read.version, read.model, read.inputs.crop) == (1, now.model, now.inputs.crop)
    assert read.inputs.dtype is None
    assert read.training is None
    image = segscope.imread(toy_dataset / "val" / "images" / "img0.png")
    np.testing.assert_array_equal(load_predictor(tmp_path / "v1.pt").segment(image).labels,
                                  load_predictor(result.checkpoint).segment(image).labels)
    newer = {**old, "version": 99}
    torch.save(newer, tmp_path / "v99.pt")
    with pytest.raises(ValueError, match="newer than this segscope reads"):
        load_checkpoint(tmp_path / "v99.pt")


def test_weights_stored_as_int8_fp16_or_fp32_restore_within_their_step(toy_dataset, tmp_path):
    from segscope.checkpoint import save_checkpoint

    result = train(_config(toy_dataset, tmp_path / "run", epochs=1), progress=False)
    full = load_checkpoint(result.checkpoint)
    image = segscope.imread(toy_dataset / "val" / "images" / "img0.png")
    expected = load_predictor(result.checkpoint).segment(image).labels
    sizes: dict[str, int] = {}
    for precision in ("fp32", "fp16", "int8"):
        path = tmp_path / f"{precision}.pt"
        save_checkpoint(path, full, precision=precision)
        raw = torch.load(path, weights_only=True)
        stored = [*raw["state_dict"].values(), *raw.get("quantised", {}).values()]
        sizes[precision] = sum(t.numel() * t.element_size() for t in stored)
        assert raw["version"] == (3 if precision == "int8" else 2)  # older readers refuse int8 files
        read = load_checkpoint(path)
        assert read.state_dict.keys() == full.state_dict.keys()
        for name, value in full.state_dict.items():
            if not torch.is_floating_point(value):
                assert torch.equal(read.state_dict[name], value)
                continue
            got = read.state_dict[name].float()
            if precision == "int8" and value.ndim >= 2:
                assert raw["state_dict"][name].dtype == torch.int8
                # at most half a step of its output channel's scale (largest magnitude / 127)
                step = value.abs().flatten(1).amax(1) / 127
                error = (got - value).abs().flatten(1).amax(1)
                assert bool(torch.all(error <= step / 2 + 1e-7)), name
            else:
                tolerance = 0 if precision == "fp32" else 1e-3 * float(value.abs().max()) + 1e-6
                assert float((got - value).abs().max()) <= tolerance, name
        agree = np.mean(load_predictor(path).segment(image).labels == expected)
        assert agree > 0.99, (precision, agree)
    assert sizes["int8"] < 0.6 * sizes["fp16"] and sizes["fp16"] < 0.6 * sizes["fp32"]  # bytes of weights
    with pytest.raises(ValueError, match="precision must be one of fp32, fp16, int8"):
        save_checkpoint(tmp_path / "x.pt", full, precision="int4")
    raw = torch.load(tmp_path / "int8.pt", weights_only=True)
    name = next(iter(raw["quantised"]))
    raw["quantised"][name] = raw["quantised"][name][:-1]
    torch.save(raw, tmp_path / "mangled.pt")
    with pytest.raises(ValueError, match=rf"mangled\.pt: checkpoint's int8 weight '{name}' does not match"):
        load_checkpoint(tmp_path / "mangled.pt")


def test_cli_train_predict_export(toy_dataset, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from segscope.cli.main import main

    names = tmp_path / "names.txt"
    names.write_text("background\ndisc\n")
    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--model",
            "unet",
            "--images",
            str(toy_dataset / "train" / "images"),
            "--labels",
            str(toy_dataset / "train" / "labels"),
            "--holdout",
            "2",
            "--ignore",
            "255",
            "--classes",
            str(names),
            "--crop",
            "32",
            "--epochs",
            "1",
            "--batch-size",
            "4",
            "--option",
            "base_width=4",
            "--option",
            "depth=2",
            "-o",
            str(out),
        ]
    )
    assert code == 0 and (out / "best.pt").exists()
    assert "best val mIoU" in capsys.readouterr().out
    pred = tmp_path / "pred"
    assert (
        main(
            [
                "predict",
                "--checkpoint",
                str(out / "best.pt"),
                str(toy_dataset / "val" / "images"),
                "-o",
                str(pred),
                "--flip",
                "--probabilities",
            ]
        )
        == 0
    )
    assert (pred / "img0.png").exists() and (pred / "img0_probabilities.npy").exists()
    # A model file is a method like any other: `segment -m` takes it, options converted by the
    # predictor's own annotations, and gives what `predict` gave.
    by_segment = tmp_path / "by_segment"
    assert main(["segment", str(toy_dataset / "val" / "images"), "-m", str(out / "best.pt"), "-p", "flip=yes",
                 "-o", str(by_segment)]) == 0
    np.testing.assert_array_equal(segscope.io.read_palette_png(by_segment / "img0.png")[0],
                                  segscope.io.read_palette_png(pred / "img0.png")[0])
    assert main(["segment", str(toy_dataset / "val" / "images"), "-m", str(out / "best.pt"), "-p", "sigma=2",
                 "-o", str(by_segment)]) == 2
    assert (
        main(["export", "--checkpoint", str(out / "best.pt"), "--tile", "64", "-o", str(tmp_path / "m.onnx")])
        == 0
    )
    assert (
        main(
            [
                "predict",
                "--backend",
                "onnx",
                "--checkpoint",
                str(tmp_path / "m.onnx"),
                str(toy_dataset / "val" / "images"),
                "-o",
                str(tmp_path / "pred_onnx"),
            ]
        )
        == 0
    )
    assert main(["predict", "--checkpoint", str(tmp_path / "missing.pt"), "x.png", "-o", str(pred)]) == 2


def test_a_time_budget_decays_the_learning_rate_with_the_clock():
    from segscope.train.engine import _schedule

    config = config_of(model="unet", train_images="", train_labels="", output="", num_classes=2,
                         max_minutes=1.0, warmup_steps=2)
    used = [0.0]
    factor = _schedule(config.schedule, 10**6, lambda: used[0])
    assert factor(0) == pytest.approx(0.5)  # warm-up
    assert factor(5) == pytest.approx(1.0, abs=1e-4)  # 3 of a million steps taken
    used[0] = 0.5
    assert factor(6) == pytest.approx(0.5**0.9, abs=1e-4)  # half the budget spent
    used[0] = 1.0
    assert factor(7) == 0.0


def test_a_two_class_segmenter_applies_a_chosen_threshold_to_its_second_class():
    from segscope.checkpoint import InputSpec

    def logits(batch: np.ndarray) -> np.ndarray:  # second class's probability: sigmoid of the pixel
        return np.concatenate([np.zeros_like(batch), batch], axis=1)

    image = np.linspace(-3, 3, 64, dtype=np.float32).reshape(8, 8)
    probability = 1 / (1 + np.exp(-image))
    segmenter = Segmenter(logits, class_names=["membrane", "cell"], inputs=InputSpec((0.0,), (1.0,)))
    assert np.array_equal(segmenter.segment(image).class_map(), (probability > 0.5).astype(np.uint8))
    for threshold in (0.2, 0.7, 0.95):
        result = segmenter.segment(image, score_threshold=threshold)
        assert np.array_equal(result.class_map(), (probability >= threshold).astype(np.uint8))
        assert result.provenance.parameters["score_threshold"] == threshold
    with pytest.raises(ValueError, match="probability in"):
        segmenter.segment(image, score_threshold=1.5)
    three = Segmenter(lambda b: np.concatenate([b, b, b], axis=1), class_names=["a", "b", "c"],
                      inputs=InputSpec((0.0,), (1.0,)))
    with pytest.raises(ValueError, match="two classes; this one has 3"):
        three.segment(image, score_threshold=0.5)


def _two_cells_and_a_gap() -> np.ndarray:
    """A cell probability: two discs whose membrane between them has a weak gap in the middle."""
    rows, cols = np.mgrid[:24, :40]
    probability = np.full((24, 40), 0.05)
    for centre in (10, 29):
        probability[np.hypot(rows - 12, cols - centre) < 8] = 0.97
    probability[2:22, 17:22] = np.where(np.abs(rows[2:22, 17:22] - 12) < 3, 0.7, 0.2)  # the gap
    return probability


def test_seeds_close_every_cell_so_a_gap_in_the_membrane_joins_nothing():
    from scipy import ndimage

    from segscope.checkpoint import InputSpec
    from segscope.infer.segmenter import closed_objects

    probability = _two_cells_and_a_gap()
    logit = np.log(probability / (1 - probability)).astype(np.float32)
    segmenter = Segmenter(lambda b: np.concatenate([np.zeros_like(b), b], axis=1),
                          class_names=["membrane", "cell"], inputs=InputSpec((0.0,), (1.0,)))
    joined = segmenter.segment(logit).class_map()
    assert ndimage.label(joined == 1)[1] == 1  # most probable class: the gap joins the two cells
    closed = segmenter.segment(logit, seed_threshold=0.9)
    assert closed.provenance.parameters["seed_threshold"] == 0.9
    cells, count = ndimage.label(closed.class_map() == 1)
    assert count == 2 and cells[12, 10] != cells[12, 29]
    lines = closed.class_map() == 0  # one pixel in every row, between the cells
    assert (lines.sum(axis=1) == 1).all() and set(np.nonzero(lines)[1]) <= set(range(17, 22))
    np.testing.assert_allclose(closed.probabilities[1], probability, atol=1e-6)
    # score_threshold keeps weak pixels in the first class too
    both = segmenter.segment(logit, seed_threshold=0.9, score_threshold=0.5).class_map()
    np.testing.assert_array_equal(both, (closed.class_map() == 1) & (closed.probabilities[1] >= 0.5))
    # a default set by decoding, turned off by False; bad values refused
    seeded = Segmenter(segmenter.logits_fn, class_names=["membrane", "cell"],
                       inputs=InputSpec((0.0,), (1.0,)))._decoded({"seed_threshold": 0.9})
    np.testing.assert_array_equal(seeded.segment(logit).class_map(), closed.class_map())
    np.testing.assert_array_equal(seeded.segment(logit, seed_threshold=False).class_map(), joined)
    for bad, message in ((1.5, "probability in"), (True, "a probability, False")):
        with pytest.raises(ValueError, match=message):
            segmenter.segment(logit, seed_threshold=bad)
    three = Segmenter(lambda b: np.concatenate([b, b, b], axis=1), class_names=["a", "b", "c"],
                      inputs=InputSpec((0.0,), (1.0,)))
    with pytest.raises(ValueError, match="seed_threshold applies to models of two classes"):
        three.segment(logit, seed_threshold=0.9)
    # no seed at all: no object
    assert not closed_objects(probability, seed_threshold=0.99).any()


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from([(32, 32), (6, 10, 12)]))
def test_closed_objects_give_one_object_per_seed_and_no_two_touch(seed, shape):
    from scipy import ndimage

    from segscope.infer.segmenter import closed_objects

    rng = np.random.default_rng(seed)
    probability = ndimage.gaussian_filter(rng.random(shape), 1.5)
    probability = (probability - probability.min()) / max(np.ptp(probability), 1e-9)
    labels = closed_objects(probability, seed_threshold=0.7)
    seeds, count = ndimage.label(probability >= 0.7)
    assert labels.max() == count and len(np.unique(labels[labels > 0])) == count
    for k in range(1, count + 1):  # each seed lies inside one object, its own
        assert np.unique(labels[seeds == k]).tolist() == [k]
    # objects are separated by the zero lines: no two different labels are face neighbours
    for axis in range(labels.ndim):
        a, b = np.moveaxis(labels, axis, 0)[1:], np.moveaxis(labels, axis, 0)[:-1]
        assert not ((a > 0) & (b > 0) & (a != b)).any()
    # so connected components give the objects back, each one piece
    pieces, n = ndimage.label(labels > 0)
    inside = labels > 0
    assert n == count and len(set(zip(pieces[inside], labels[inside], strict=True))) == n


def test_a_checkpoints_decoding_sets_the_segmenters_flip_and_threshold(toy_dataset, tmp_path, capsys):
    import dataclasses

    from segscope.checkpoint import save_checkpoint
    from segscope.cli.main import main

    result = train(_config(toy_dataset, tmp_path / "run", epochs=1), progress=False)
    plain = load_checkpoint(result.checkpoint)
    image = segscope.imread(toy_dataset / "val" / "images" / "img0.png")[:, 5:]  # not mirror-symmetric
    before = load_predictor(result.checkpoint)
    assert (before.flip, before.score_threshold) == (False, None)
    set_both = {"flip": 1.0, "score_threshold": 0.7}
    save_checkpoint(tmp_path / "set.pt", dataclasses.replace(plain, decoding=set_both))
    chosen = load_predictor(tmp_path / "set.pt")
    assert (chosen.flip, chosen.score_threshold) == (True, 0.7)
    by_default = chosen.segment(image)
    assert by_default.provenance.parameters["flip"] is True
    assert by_default.provenance.parameters["score_threshold"] == 0.7
    np.testing.assert_array_equal(by_default.probabilities, before.probabilities(image, flip=True))
    assert not np.allclose(by_default.probabilities, before.probabilities(image))  # the flip changed them
    np.testing.assert_array_equal(by_default.class_map(), by_default.probabilities[1] >= 0.7)
    # given options win over the defaults
    overridden = chosen.segment(image, flip=False, score_threshold=0.5)
    np.testing.assert_array_equal(overridden.probabilities, before.probabilities(image))
    assert overridden.provenance.parameters["flip"] is False
    # the command line keeps the default unless told (--no-flip)
    for flag, flipped in (([], True), (["--no-flip"], False)):
        out = tmp_path / f"out{len(flag)}"
        code = main(["predict", "--checkpoint", str(tmp_path / "set.pt"), *flag, "-o", str(out),
                     "--probabilities", str(toy_dataset / "val" / "images" / "img0.png")])
        assert code == 0
        saved = np.load(out / "img0_probabilities.npy")
        full = segscope.imread(toy_dataset / "val" / "images" / "img0.png")
        near = {f: np.abs(saved - before.probabilities(full, flip=f)).max() for f in (True, False)}
        assert near[flipped] < 1e-3 < near[not flipped], near  # (saved as float16)
    # a semantic model's network runs in float32: asking for less is refused, not ignored
    assert main(["predict", "--checkpoint", str(tmp_path / "set.pt"), "--mixed-precision", "bf16",
                 "-o", str(tmp_path / "half"), str(toy_dataset / "val" / "images" / "img0.png")]) != 0
    assert "runs its network in float32 only" in capsys.readouterr().err
    # seeds from the command line: a threshold, or off (--no-seeds) where the checkpoint sets them
    full = segscope.imread(toy_dataset / "val" / "images" / "img0.png")
    save_checkpoint(tmp_path / "seeded.pt", dataclasses.replace(plain, decoding={"seed_threshold": 0.6}))
    seeded = load_predictor(tmp_path / "seeded.pt")
    for flag, expected in ((["--seed-threshold", "0.8"], seeded.segment(full, seed_threshold=0.8)),
                           (["--no-seeds"], seeded.segment(full, seed_threshold=False)),
                           ([], seeded.segment(full))):
        out = tmp_path / f"seeds{len(flag)}{flag[:1]}"
        assert main(["predict", "--checkpoint", str(tmp_path / "seeded.pt"), *flag, "-o", str(out),
                     str(toy_dataset / "val" / "images" / "img0.png")]) == 0
        written = read_label_png(next(out.glob("img0*.png")))
        np.testing.assert_array_equal(written, expected.class_map())
    assert not np.array_equal(seeded.segment(full).class_map(),
                              seeded.segment(full, seed_threshold=False).class_map())
    capsys.readouterr()
    if importlib.util.find_spec("onnxruntime") is not None:  # an export carries the defaults too
        from segscope.infer import export_onnx

        export_onnx(tmp_path / "set.pt", tmp_path / "set.onnx")
        exported = Segmenter.from_onnx(tmp_path / "set.onnx")
        assert (exported.flip, exported.score_threshold) == (True, 0.7)
    for decoding, message in (({"sharpen": 1.0}, r"decoding settings \['sharpen'\] are not a semantic"),
                              ({"score_threshold": 1.5}, "probability in")):
        save_checkpoint(tmp_path / "bad.pt", dataclasses.replace(plain, decoding=decoding))
        with pytest.raises(ValueError, match=message):
            load_predictor(tmp_path / "bad.pt")
