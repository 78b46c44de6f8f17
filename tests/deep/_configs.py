"""Training configurations as the deep tests write them: one flat list of fields."""

from __future__ import annotations

import dataclasses

from segscope.trainconfig import TrainConfig


def config_of(**flat) -> TrainConfig:
    """A nested TrainConfig from one flat list of fields (each goes to the part that has it), as
    the tests write them; ``model`` names the network and ``model_options`` its options."""
    nested: dict = {"model": {"name": flat.pop("model"), "options": flat.pop("model_options", {})}}
    for key, value in flat.items():
        part = next((name for name, cls in TrainConfig.PARTS.items()
                     if key in {f.name for f in dataclasses.fields(cls)}), None)
        if part is None:
            nested[key] = value
        else:
            nested.setdefault(part, {})[key] = value
    return TrainConfig.from_dict(nested)
