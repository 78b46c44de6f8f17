"""What the page offers: every registered method, zoo model and prompted method, with the form
fields their parameters make.

Nothing here names a method: the registries say what exists, each function's signature and
numpydoc say what its options are, their types and defaults. A field's value comes back as text
and is converted by the same rules as the command line (:mod:`segscope.textvalues`).
"""

from __future__ import annotations

import inspect
import types
import typing
from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args, get_origin

import numpy as np

from ..registry import Parameter, keyword_parameters, list_methods

__all__ = ["Field", "Offer", "catalogue", "fields_of"]

LAYOUT = ("channel_axis", "spacing")
"""Options about the input array's layout, which the page fixes: its images are (H, W[, C])."""


@dataclass(frozen=True)
class Field:
    """One form field: ``kind`` is integer, number, checkbox, choice or text."""

    name: str
    kind: str
    default: str
    """The default as the text the field shows (and converts back to the default)."""
    doc: str
    annotation: str
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Offer:
    """Something the page can run: a method, a zoo model or a prompted method."""

    name: str
    group: str
    """``method``, ``zoo`` or ``prompted``."""
    task: str
    summary: str
    fields: tuple[Field, ...] = ()
    kinds: tuple[str, ...] = ()
    """Prompted methods: the prompt kinds they follow."""
    tiles: bool = False
    """Whether a large image goes through the tiled engine (the method declares its tiling)."""
    card: dict[str, Any] | None = None
    """Zoo models: classes, inputs and held-out figures from the card."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _as_text(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return ",".join(_as_text(v) for v in value)
    return str(value)


def _takes_text(annotation: Any) -> bool:
    """Whether a value of this type can be typed (arrays and callables cannot)."""
    origin, args = get_origin(annotation), get_args(annotation)
    if annotation is np.ndarray or origin is np.ndarray:
        return False
    if origin in (typing.Union, types.UnionType):
        return all(_takes_text(a) for a in args if a is not type(None))
    return not (inspect.isclass(annotation) and issubclass(annotation, np.ndarray))


def _field(p: Parameter) -> Field:
    origin, args = get_origin(p.type), get_args(p.type)
    shown = "" if p.default is inspect.Parameter.empty else _as_text(p.default)
    if p.type is bool:
        return Field(p.name, "checkbox", shown, p.doc, p.annotation)
    if origin in (typing.Union, types.UnionType) and set(args) == {bool, type(None)}:  # yes, no, the default
        return Field(p.name, "choice", shown, p.doc, p.annotation, ("none", "true", "false"))
    if origin is Literal:
        return Field(p.name, "choice", shown, p.doc, p.annotation, tuple(_as_text(a) for a in args))
    if p.type is int:
        return Field(p.name, "integer", shown, p.doc, p.annotation)
    if p.type is float:
        return Field(p.name, "number", shown, p.doc, p.annotation)
    return Field(p.name, "text", shown, p.doc, p.annotation)


def fields_of(parameters: tuple[Parameter, ...]) -> tuple[Field, ...]:
    """The form fields of a method's parameters (layout and array options left out)."""
    return tuple(_field(p) for p in parameters if p.name not in LAYOUT and _takes_text(p.type))


def _card_summary(card: Any) -> dict[str, Any]:
    return {
        "version": card.version,
        "architecture": card.architecture,
        "classes": list(card.class_names),
        "input": card.inputs.get("description", ""),
        "figures": [f"{f.metric} {f.value:.3f} on {f.data}" for f in card.figures],
        "speed": card.speed.get("description", ""),
        "volumes": card.inputs.get("spatial_dims", 2) == 3,
    }


def catalogue() -> list[Offer]:
    """Every method, zoo model (2-D ones: the page shows images) and prompted method (the zoo's
    click models among them)."""
    from .. import classical  # noqa: F401  (registers the classical methods)
    from ..prompting import list_prompted
    from ..resolve import prompted_models
    from ..zoo import zoo_cards

    clicks = prompted_models()
    offers = [Offer(m.name, "method", m.task, m.summary, fields_of(m.parameters), tiles=m.tiling is not None)
              for m in list_methods()]
    for name, card in sorted(zoo_cards().items()):
        summary = _card_summary(card)
        if not summary["volumes"] and name not in clicks:
            offers.append(Offer(name, "zoo", card.task, card.summary, card=summary, tiles=True))
    offers += [Offer(p.name, "prompted", "instance", p.summary, fields_of(keyword_parameters(p.function)),
                     kinds=p.kinds) for p in list_prompted()]
    for name, kinds in clicks.items():  # the zoo's click models: prompted methods with no options
        card = zoo_cards()[name]
        offers.append(Offer(name, "prompted", "instance", card.summary, (), kinds=kinds,
                            card=_card_summary(card)))
    return offers
