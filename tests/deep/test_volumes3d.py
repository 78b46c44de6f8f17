"""The 3-D U-Net, its patches, its training step and its sliding-window predictor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from _configs import config_of

import segscope
from segscope.checkpoint import InputSpec
from segscope.infer import VolumeSegmenter, sliding_window
from segscope.infer.volumes import normalise_volume
from segscope.io.volumes import Volume, read_volume, write_volume
from segscope.models import get_model
from segscope.train import train
from segscope.train.adapters import NO_LABEL
from segscope.train.losses import SegmentationLoss
from segscope.train.volumes import VolumePatches, volume_pairs


def _ball(shape: tuple[int, int, int], centre: tuple[float, ...], radius: float) -> np.ndarray:
    grid = np.indices(shape).astype(np.float64)
    return sum((g - c) ** 2 for g, c in zip(grid, centre, strict=True)) <= radius**2


@pytest.fixture(scope="module")
def ball_volumes(tmp_path_factory) -> Path:
    """Six (14, 18, 16) float32 volumes with a bright ball (class 1) and a dim one (class 2)."""
    root = tmp_path_factory.mktemp("balls")
    rng = np.random.default_rng(0)
    for folder in ("images", "labels"):
        (root / folder).mkdir()
    for k in range(6):
        shape = (14, 18, 16)
        a = _ball(shape, (7, 5 + rng.integers(0, 2), 5), 3.5)
        b = _ball(shape, (7, 12, 11 + rng.integers(0, 2)), 3)
        image = rng.normal(100, 10, shape).astype(np.float32) + 300 * a + 120 * b
        label = (a * 1 + b * 2).astype(np.uint8)
        write_volume(root / "images" / f"case_{k}.nii.gz", image, spacing=(2.0, 1.0, 1.0))
        write_volume(root / "labels" / f"case_{k}.nii.gz", label, spacing=(2.0, 1.0, 1.0))
    return root


def test_unet3d_gives_logits_at_any_size_in_both_modes():
    model = get_model("unet3d", num_classes=3, base_width=4, depth=2, deep_supervision=True)
    x = torch.randn(2, 1, 9, 13, 10)
    train_out = model.train()(x)
    eval_out = model.eval()(x)
    assert type(train_out) is type(eval_out) is torch.Tensor
    assert train_out.shape == eval_out.shape == (2, 3, 9, 13, 10)
    levels = model.forward_levels(x)
    assert [tuple(t.shape[2:]) for t in levels] == [(9, 13, 10), (5, 7, 5)]
    with pytest.raises(ValueError, match=r"\(N, 1, D, H, W\)"):
        model(torch.randn(1, 1, 8, 8))


def test_dice_loss_counts_every_spatial_axis_of_a_volume():
    logits = torch.zeros(1, 2, 2, 2, 2)
    logits[0, 1, 0] = 50.0  # class 1 on the first slice, class 0 on the second, sure of both
    logits[0, 0, 1] = 50.0
    target = torch.zeros(1, 2, 2, 2, dtype=torch.long)
    target[0, 0] = 1
    loss = SegmentationLoss("dice", num_classes=2, ignore_index=NO_LABEL)(logits, target)
    assert float(loss) == pytest.approx(0.0, abs=1e-6)
    target[0, 0, 0, 0] = 0  # one of the four class-1 voxels is now background
    loss = SegmentationLoss("dice", num_classes=2, ignore_index=NO_LABEL)(logits, target)
    # class 1: 2*3/(4+3) ; class 0: 2*4/(4+5), smoothed by 1 each.
    expected = 1 - ((2 * 3 + 1) / (7 + 1) + (2 * 4 + 1) / (9 + 1)) / 2
    assert float(loss) == pytest.approx(expected, abs=1e-4)


def test_sliding_window_in_3d_equals_the_whole_volume_for_a_voxelwise_network():
    rng = np.random.default_rng(1)
    volume = rng.normal(size=(1, 21, 17, 12)).astype(np.float32)

    def voxelwise(batch: np.ndarray) -> np.ndarray:
        return np.concatenate([batch, -2 * batch, batch**2], axis=1)

    whole = sliding_window(volume, voxelwise, num_classes=3, tile=None)
    tiled = sliding_window(volume, voxelwise, num_classes=3, tile=8, overlap=0.5, batch_size=3)
    assert tiled.shape == (3, 21, 17, 12)
    np.testing.assert_allclose(tiled, whole, atol=1e-5)


def test_volume_segmenter_window_covering_the_volume_equals_one_pass():
    torch.manual_seed(0)
    model = get_model("unet3d", num_classes=2, base_width=4, depth=2).eval()
    inputs = InputSpec((0.0,), (1.0,), "float32", crop=16)
    predictor = VolumeSegmenter(
        model, class_names=["bg", "fg"], inputs=inputs, device=torch.device("cpu"), name="toy"
    )
    volume = np.random.default_rng(2).normal(size=(12, 15, 16)).astype(np.float32)
    with torch.inference_mode():
        direct = torch.softmax(model(torch.from_numpy(volume)[None, None]), 1)[0].numpy()
    np.testing.assert_allclose(predictor.probabilities(volume, flip=False), direct, atol=1e-5)
    result = predictor.segment(Volume(volume, (3.0, 1.0, 1.0)), flip=True)
    assert result.ndim == 3 and result.spacing == (3.0, 1.0, 1.0)
    assert result.class_map().shape == (12, 15, 16)


def test_normalise_volume_refuses_the_wrong_channels_and_nan():
    inputs = InputSpec((0.0,), (1.0,), "float32")
    with pytest.raises(ValueError, match="takes 1 channel"):
        normalise_volume(np.zeros((4, 5, 6, 2), np.float32), inputs)
    bad = np.zeros((4, 5, 6), np.float32)
    bad[1, 1, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        normalise_volume(bad, inputs)


def test_patches_are_the_volume_without_augmentation_and_oversample_the_foreground(ball_volumes):
    pairs = volume_pairs(ball_volumes / "images", ball_volumes / "labels")
    assert [p[0].name for p in pairs] == [f"case_{k}.nii.gz" for k in range(6)]
    inputs = InputSpec((0.0,), (1.0,), "float32", crop=8)
    plain = VolumePatches(pairs[:1], inputs=inputs, num_classes=3, ignore_index=None, patch=8, augment=False)
    x, y = plain[0]
    volume = read_volume(pairs[0][0]).data
    labels = read_volume(pairs[0][1]).data
    # The centred patch: voxel (i, j, k) of the patch is (3 + i, 5 + j, 4 + k) of the (14, 18, 16) volume.
    np.testing.assert_allclose(x[0].numpy(), volume[3:11, 5:13, 4:12], rtol=1e-6)
    assert np.array_equal(y.numpy(), labels[3:11, 5:13, 4:12])
    # A patch larger than the volume: voxels from outside are not scored.
    big = VolumePatches(pairs[:1], inputs=inputs, num_classes=3, ignore_index=None, patch=20, augment=False)
    assert (big[0][1] == NO_LABEL).any()
    torch.manual_seed(0)
    augmented = VolumePatches(
        pairs,
        inputs=inputs,
        num_classes=3,
        ignore_index=None,
        patch=4,
        augment=True,
        rotation=20,
        scale=(0.9, 1.1),
    )
    with_foreground = np.mean([(augmented[k % 6][1] > 0).any().item() for k in range(300)])
    share = np.mean([(lab > 0).mean() for lab in augmented.labels])
    # 4-voxel patches rarely hold a ball by chance (about share*64 voxels' worth); a third are centred on one.
    assert with_foreground > 1 / 3 - 0.08
    assert share < 0.1


def test_unet3d_trains_a_step_and_predicts_a_volume_through_segscope_segment(ball_volumes, tmp_path):
    config = config_of(
        model="unet3d",
        model_options={"base_width": 4, "depth": 2, "deep_supervision": True},
        train_images=str(ball_volumes / "images"),
        train_labels=str(ball_volumes / "labels"),
        num_classes=3,
        holdout=2,
        normalise="percentile",
        crop=12,
        rotation=10.0,
        batch_size=2,
        epochs=1,
        loss="ce+dice",
        output=str(tmp_path / "run"),
    )
    result = train(config, progress=False)
    assert result.steps == 2 and np.isfinite(result.history[-1]["loss"])
    assert 0 <= result.best_score <= 1
    volume = read_volume(ball_volumes / "images" / "case_5.nii.gz")
    seg = segscope.segment(volume, str(result.checkpoint), flip=False)
    assert seg.ndim == 3 and seg.spacing == (2.0, 1.0, 1.0)
    assert seg.class_map().shape == (14, 18, 16)
    assert seg.provenance.details["model"] == "unet3d"


def test_unet3d_learns_the_balls(ball_volumes, tmp_path):
    """Overfitting four volumes: the held-out ones' foreground Dice rises well above chance."""
    config = config_of(
        model="unet3d",
        model_options={"base_width": 8, "depth": 2},
        train_images=str(ball_volumes / "images"),
        train_labels=str(ball_volumes / "labels"),
        num_classes=3,
        holdout=2,
        normalise="percentile",
        crop=16,
        batch_size=2,
        epochs=80,
        lr=5e-3,
        loss="ce+dice",
        val_every=20,
        output=str(tmp_path / "run"),
        colour=0.0,
    )
    result = train(config, progress=False)
    assert result.best_score > 0.8, result.history[-1]

    # A volume beyond memory runs in blocks, each with a halo of context: the same labels but for
    # voxels whose classes the blending at a block's edge tips.
    pytest.importorskip("zarr")
    from segscope.tiled import segment_volume_tiled

    one = read_volume(ball_volumes / "images" / "case_5.nii.gz").data
    big = np.tile(one, (2, 2, 2))
    write_volume(tmp_path / "big.zarr", big, spacing=(2.0, 1.0, 1.0))
    tiled = segment_volume_tiled(tmp_path / "big.zarr", str(result.checkpoint), tmp_path / "labels.zarr",
                                 block=14, overlap=8)
    whole = segscope.segment(Volume(big, (2.0, 1.0, 1.0)), str(result.checkpoint)).class_map()
    assert tiled.blocks == 2 * 3 * 3 and tiled.class_names == ("0", "1", "2")
    assert np.mean(tiled.read() == whole) > 0.98
