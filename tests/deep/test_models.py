"""Every registered model: shapes for any input size and channel count, a training step, weights."""

from __future__ import annotations

import pytest
import torch

from segscope.models import SegmentationModel, get_model, get_model_info, list_models

SMALL = {  # small widths keep the suite fast; the architecture is the same
    "unet": {"base_width": 8, "depth": 3},
    "fcn": {},
    "deeplabv3plus": {},
    "segformer": {"variant": "b0"},
    "vit": {"dim": 64, "depth": 2, "heads": 4},
    "swiftnet": {"width": 0.25, "decoder_width": 16},
}


def test_registry_lists_every_family():
    assert set(list_models()) >= {"fcn", "unet", "deeplabv3plus", "segformer", "vit", "swiftnet"}
    # Every registered network that returns logits of images is exercised below (volumes' networks
    # in test_volumes3d.py).
    semantic = [n for n in list_models() if get_model_info(n).task == "semantic"]
    assert {n for n in semantic if get_model(n, num_classes=2).spatial_dims == 2} <= set(SMALL)
    with pytest.raises(ValueError, match="unknown model 'nope'; available"):
        get_model("nope", num_classes=2)
    with pytest.raises(TypeError, match="unet"):
        get_model("unet", num_classes=2, colour=True)


@pytest.mark.parametrize("name", sorted(SMALL))
@pytest.mark.parametrize(
    ("channels", "classes", "size"), [(3, 5, (64, 96)), (1, 2, (70, 45)), (4, 3, (128, 128))]
)
def test_forward_shape_for_any_size_and_channels(name, channels, classes, size):
    torch.manual_seed(0)
    model = get_model(name, num_classes=classes, in_channels=channels, **SMALL[name])
    assert isinstance(model, SegmentationModel)
    x = torch.randn(2, channels, *size)
    train_out = model.train()(x)
    eval_out = model.eval()(x)
    # The same type and shape in both modes: logits at the input's size, never padded.
    assert type(train_out) is type(eval_out) is torch.Tensor
    assert train_out.shape == eval_out.shape == (2, classes, *size)
    with pytest.raises(ValueError, match=f"expected inputs of shape \\(N, {channels}, H, W\\)"):
        model(torch.randn(1, channels + 1, 32, 32))


@pytest.mark.parametrize("name", sorted(SMALL))
def test_one_training_step_gives_a_finite_loss_and_gradients(name):
    torch.manual_seed(0)
    model = get_model(name, num_classes=3, in_channels=3, **SMALL[name]).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(2, 3, 64, 64)
    y = torch.randint(0, 3, (2, 64, 64))
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_deeplab_output_stride_8_dilates_two_stages():
    model = get_model("deeplabv3plus", num_classes=2, output_stride=8)
    dilations = {m.dilation for m in model.backbone.layer4.modules() if isinstance(m, torch.nn.Conv2d)}
    assert (4, 4) in dilations
    assert model(torch.randn(1, 3, 72, 72)).shape == (1, 2, 72, 72)
    with pytest.raises(ValueError, match="output_stride"):
        get_model("deeplabv3plus", num_classes=2, output_stride=32)


def test_backbone_weights_load_from_a_local_file(tmp_path):
    import torchvision

    reference = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), path)
    model = get_model("fcn", num_classes=2, weights_backbone=str(path))
    assert torch.equal(model.backbone.layer1[0].conv1.weight, reference.layer1[0].conv1.weight)
    grey = get_model("fcn", num_classes=2, in_channels=1, weights_backbone=str(path))
    # A grey first layer starts from the mean of the RGB filters, scaled to the same response.
    expected = reference.conv1.weight.mean(1, keepdim=True) * 3
    assert torch.allclose(grey.backbone.conv1.weight, expected)
    with pytest.raises(ValueError, match="neither an existing file"):
        get_model("fcn", num_classes=2, weights_backbone=str(tmp_path / "missing.pth"))


def test_swiftnet_encoder_at_full_width_is_resnet18():
    """At width 1 the encoder has exactly torchvision's ResNet-18 layers (less its classifier)."""
    import torchvision

    model = get_model("swiftnet", num_classes=3, width=1.0)
    ours = sum(p.numel() for part in (model.stem, model.stages) for p in part.parameters())
    reference = torchvision.models.resnet18(weights=None)
    theirs = sum(p.numel() for name, p in reference.named_parameters() if not name.startswith("fc."))
    assert ours == theirs
    half = get_model("swiftnet", num_classes=3, width=0.5)
    assert [stage[0].conv1[0].out_channels for stage in half.stages] == [32, 64, 128, 256]
    with pytest.raises(ValueError, match="width must be between"):
        get_model("swiftnet", num_classes=3, width=0.0)


def test_unet_max_width_caps_the_deep_stages_only():
    capped = get_model("unet", num_classes=2, in_channels=1, depth=5, base_width=8, max_width=32)
    assert [block[0].out_channels for block in capped.down] == [8, 16, 32, 32, 32, 32]
    assert capped(torch.randn(1, 1, 64, 64)).shape == (1, 2, 64, 64)
    # Without a cap, or with one above the widest stage, the widths double at every step as before.
    for options in ({}, {"max_width": 256}):
        model = get_model("unet", num_classes=2, depth=5, base_width=8, **options)
        assert [block[0].out_channels for block in model.down] == [8, 16, 32, 64, 128, 256]
    with pytest.raises(ValueError, match="max_width must be at least base_width"):
        get_model("unet", num_classes=2, base_width=16, max_width=8)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_the_memory_format_gives_the_same_logits(name):
    torch.manual_seed(0)
    model = get_model(name, num_classes=3, **SMALL[name]).eval()
    x = torch.randn(1, 3, 64, 80)
    with torch.inference_mode():
        plain = model(x)
        laid = model.to(memory_format=model.memory_format)(x)
    assert model.memory_format == torch.channels_last
    assert torch.allclose(plain, laid, atol=1e-4)


@pytest.mark.parametrize("name", [*sorted(SMALL), "stardist"])
def test_folding_batch_norms_into_convolutions_keeps_the_outputs(name):
    import copy

    from segscope.models import fuse_batch_norms

    torch.manual_seed(0)
    options = {"in_channels": 3, "grid": 2} if name == "stardist" else {"num_classes": 3, **SMALL[name]}
    model = get_model(name, **options)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():  # statistics and affine parameters far from the identity
        for norm in norms:
            norm.weight.uniform_(0.5, 2)
            norm.bias.uniform_(-1, 1)
        model.train()(torch.randn(2, 3, 64, 64) * 3 + 1)
    model.eval()
    fused = fuse_batch_norms(copy.deepcopy(model))
    left = [m for m in fused.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    x = torch.randn(1, 3, 64, 80)
    with torch.inference_mode():
        plain, folded = model(x), fused(x)
    if isinstance(plain, tuple):  # StarDist's two maps
        torch.testing.assert_close(tuple(folded), tuple(plain), atol=1e-4, rtol=1e-4)
    else:
        torch.testing.assert_close(folded, plain, atol=1e-4, rtol=1e-4)
    if name in ("unet", "stardist"):  # every one of theirs follows a convolution
        assert norms and not left
    with pytest.raises(ValueError, match="evaluation mode"):
        fuse_batch_norms(model.train())
