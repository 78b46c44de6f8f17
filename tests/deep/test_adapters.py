"""A model family brings its own task adapter; the loop and the CLI know none by name."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from _configs import config_of

import segscope
from segscope.models import base as model_base
from segscope.models.base import SegmentationModel, register_model
from segscope.train import adapters, train
from segscope.train.adapters import Prepared, SemanticAdapter, register_adapter
from segscope.trainconfig import TrainConfig


@pytest.fixture
def toy_family(monkeypatch):
    """A network and its adapter, registered as a user's own module would, removed afterwards."""
    monkeypatch.setattr(model_base, "_MODELS", dict(model_base._MODELS))
    monkeypatch.setattr(adapters, "_ADAPTERS", dict(adapters._ADAPTERS))
    calls: list[str] = []

    class Pixelwise(SegmentationModel):
        size_divisor = 1

        def __init__(self, *, num_classes: int, in_channels: int = 3, hidden: int = 4) -> None:
            super().__init__(num_classes=num_classes, in_channels=in_channels)
            self.net = torch.nn.Sequential(torch.nn.Conv2d(in_channels, hidden, 1), torch.nn.ReLU(),
                                           torch.nn.Conv2d(hidden, num_classes, 1))

        def forward_padded(self, images):
            return self.net(images)

    @register_model("toy_pixelwise", adapter="toy_l1")
    def toy_pixelwise(*, num_classes: int, in_channels: int = 3, hidden: int = 4) -> Pixelwise:
        """A 1x1 convolution network."""
        return Pixelwise(num_classes=num_classes, in_channels=in_channels, hidden=hidden)

    @register_adapter("toy_l1")
    class L1Adapter:
        """The semantic data and validation, with an L1 loss on the class probabilities."""

        def prepare(self, config: TrainConfig, device: torch.device) -> Prepared:
            prepared = SemanticAdapter().prepare(config, device)
            model, n = prepared.model, int(config.data.num_classes)

            def batch_loss(batch):
                calls.append("loss")
                x, y = batch
                probs = model(x.to(device)).softmax(1)
                valid = (y >= 0) & (y < n)
                target = torch.nn.functional.one_hot(y.clamp(0, n - 1), n).permute(0, 3, 1, 2).float()
                return ((probs - target).abs().sum(1) * valid).sum() / valid.sum().clamp(min=1)

            return dataclasses.replace(prepared, batch_loss=batch_loss)

    return calls


def test_a_model_family_of_ones_own_trains_and_predicts_through_the_same_loop(toy_family, toy_dataset,
                                                                               tmp_path):
    config = config_of(model="toy_pixelwise", model_options={"hidden": 3},
                       train_images=str(toy_dataset / "train" / "images"),
                       train_labels=str(toy_dataset / "train" / "labels"), holdout=2,
                       output=str(tmp_path / "run"), num_classes=2, ignore_index=255, crop=32, epochs=1,
                       batch_size=4)
    result = train(config, progress=False)
    assert result.steps >= 1 and toy_family.count("loss") == result.steps
    assert result.metric == "val_miou" and 0 <= result.best_score <= 1
    image = segscope.imread(toy_dataset / "val" / "images" / "img0.png")
    seg = segscope.segment(image, result.checkpoint)
    assert seg.kind == "semantic" and seg.shape == image.shape[:2]
    assert seg.provenance.details["model"] == "toy_pixelwise"


def test_the_train_command_sets_every_configuration_field_from_its_declared_flag(tmp_path):
    from segscope.cli.deep import config_from_args
    from segscope.cli.main import build_parser

    names = tmp_path / "names.txt"
    names.write_text("membrane\ncell\n")
    args = build_parser().parse_args([
        "train", "--model", "unet", "--option", "base_width=16", "--images", "img", "--labels", "lab",
        "--classes", str(names), "--label-map", "255:1", "--scale", "0.8,1.25", "--no-hflip", "--vflip",
        "--class-weights", "auto", "--lr", "0.01", "--minutes", "2.5", "--patience", "3", "-o", "out"])
    config = config_from_args(args)
    config.validate()
    assert config.model.options == {"base_width": 16}  # converted by the builder's annotation
    assert config.data.class_names == ["membrane", "cell"] and config.data.num_classes == 2
    assert config.data.label_map == {255: 1} and config.data.scale == (0.8, 1.25)
    assert (config.data.hflip, config.data.vflip) == (False, True)
    assert (config.optim.class_weights, config.optim.lr) == ("auto", 0.01)
    assert (config.schedule.max_minutes, config.schedule.patience, config.output) == (2.5, 3, "out")
    assert config.optim.batch_size == 8  # not given: the configuration's own default
    # Every field with a flag is reachable from the command line.
    text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    for part in (TrainConfig, *TrainConfig.PARTS.values()):
        for f in dataclasses.fields(part):
            if "flag" in f.metadata:
                assert f.metadata["flag"] in text, f.name
    with pytest.raises(ValueError, match="--scale"):
        config_from_args(build_parser().parse_args(["train", "--model", "unet", "--images", "i", "--labels",
                                                    "l", "--scale", "big", "-o", "o"]))
    assert TrainConfig.from_dict(config.to_dict()) == config  # the checkpoint's recipe reads back


def test_unknown_configuration_keys_are_named():
    with pytest.raises(ValueError, match="optim configuration has no \\['learning_rate'\\]"):
        TrainConfig.from_dict({"model": {"name": "unet"}, "data": {"train_images": "", "train_labels": ""},
                               "output": "", "optim": {"learning_rate": 1}})
    plain = TrainConfig.from_dict({"model": {"name": "unet"}, "output": "",
                                   "data": {"train_images": "", "train_labels": ""}})
    assert np.isclose(plain.optim.lr, 1e-3)
