"""The method registry, read from the methods' own signatures and numpydoc docstrings.

A method is a plain function ``f(image, *, option=default, ...) -> Segmentation``. Registering it
records its name and task; its parameters, types, defaults and documentation come from the function
itself, so there is no second configuration system to keep in step.
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .result import KINDS, Segmentation
from .textvalues import value_from_text
from .tiling import Tiling

__all__ = [
    "MethodInfo",
    "Parameter",
    "bind_parameters",
    "get_method",
    "list_methods",
    "register_method",
]

_EMPTY = inspect.Parameter.empty


@dataclass(frozen=True)
class Parameter:
    """One keyword-only option of a method."""

    name: str
    annotation: str
    """The type, as text (for listings)."""
    default: Any
    doc: str
    type: Any = Any
    """The type itself: what a value typed on the command line is converted to."""

    @property
    def required(self) -> bool:
        return self.default is _EMPTY


@dataclass(frozen=True)
class MethodInfo:
    """A registered method: name, task, one-line summary, parameters, and the function."""

    name: str
    task: str
    summary: str
    parameters: tuple[Parameter, ...]
    function: Callable[..., Segmentation]
    tiling: Tiling | None = None
    """How the method is cut into tiles (:mod:`segscope.tiling`); None: it is not tiled."""

    @property
    def takes_volumes(self) -> bool:
        """Whether the method segments volumes: it declares a ``spacing`` keyword (the voxel
        size), which makes its 3-D input a (Z, Y, X) volume."""
        return any(p.name == "spacing" for p in self.parameters)

    def parameter(self, name: str) -> Parameter:
        for p in self.parameters:
            if p.name == name:
                return p
        raise KeyError(name)


_REGISTRY: dict[str, MethodInfo] = {}


def parse_numpydoc(doc: str) -> tuple[str, dict[str, str]]:
    """The summary line and a {parameter: description} map from a numpydoc docstring."""
    doc = inspect.cleandoc(doc or "")
    summary = doc.split("\n\n", 1)[0].replace("\n", " ").strip()
    params: dict[str, str] = {}
    match = re.search(r"^Parameters\n-+\n(.*?)(?=^\S[^\n]*\n-+\n|\Z)", doc, re.S | re.M)
    if match:
        current: str | None = None
        for line in match.group(1).splitlines():
            if line and not line.startswith(" "):
                current = line.split(":", 1)[0].strip()
                for name in current.split(","):
                    params[name.strip()] = ""
                current = current.split(",")[0].strip()
            elif current is not None and line.strip():
                params[current] = (params[current] + " " + line.strip()).strip()
    return summary, params


def register_method(name: str, *, task: str, tiling: Tiling | None = None
                    ) -> Callable[[Callable[..., Segmentation]], Callable[..., Segmentation]]:
    """Register ``function`` as method ``name`` producing ``task`` results.

    The function must take the image as its only positional parameter and every option as a
    keyword-only parameter with a type annotation; this is checked here, at import time.
    ``tiling`` declares how the method runs on images beyond memory (:mod:`segscope.tiling`).
    """
    if tiling is not None and not isinstance(tiling, Tiling):
        raise TypeError(f"method {name!r}: tiling must be a segscope.tiling strategy, got {tiling!r}")
    if task not in KINDS:
        raise ValueError(f"task must be one of {KINDS}, got {task!r}")

    def decorator(function: Callable[..., Segmentation]) -> Callable[..., Segmentation]:
        if name in _REGISTRY:
            raise ValueError(f"method {name!r} is already registered")
        signature = inspect.signature(function)
        hints = typing.get_type_hints(function)
        positional = [p for p in signature.parameters.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if len(positional) != 1:
            raise TypeError(f"method {name!r}: the image must be the only positional parameter")
        for p in signature.parameters.values():
            if p.kind == p.KEYWORD_ONLY and p.name not in hints:
                raise TypeError(f"method {name!r}: parameter {p.name!r} has no type annotation")
        summary = parse_numpydoc(function.__doc__ or "")[0]
        _REGISTRY[name] = MethodInfo(name, task, summary, keyword_parameters(function), function, tiling)
        return function

    return decorator


def keyword_parameters(function: Callable[..., Any]) -> tuple[Parameter, ...]:
    """A function's keyword-only options: names, types (``Any`` where not annotated), defaults
    and their numpydoc descriptions."""
    hints = typing.get_type_hints(function)
    docs = parse_numpydoc(function.__doc__ or "")[1]
    return tuple(
        Parameter(p.name, _annotation_text(hints.get(p.name, Any)), p.default, docs.get(p.name, ""),
                  hints.get(p.name, Any))
        for p in inspect.signature(function).parameters.values() if p.kind == p.KEYWORD_ONLY)


def _annotation_text(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "").replace("numpy.ndarray", "ndarray")


def list_methods() -> list[MethodInfo]:
    """Every registered method, sorted by name."""
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def get_method(name: str) -> MethodInfo:
    """The registered method ``name``; a ValueError lists the valid names otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        valid = ", ".join(sorted(_REGISTRY))
        raise ValueError(f"unknown method {name!r}; valid methods: {valid}") from None


def bind_parameters(
    info: MethodInfo, params: Mapping[str, Any], *, from_text: bool = False
) -> dict[str, Any]:
    """Check ``params`` against the method's signature and fill in the defaults.

    With ``from_text``, string values (from the command line) are converted to the annotated type
    by :func:`segscope.textvalues.value_from_text`.
    """
    valid = {p.name: p for p in info.parameters}
    unknown = sorted(set(params) - set(valid))
    if unknown:
        listing = ", ".join(f"{p.name}: {p.annotation}" for p in info.parameters) or "none"
        raise TypeError(
            f"method {info.name!r} has no parameter {', '.join(map(repr, unknown))}; "
            f"valid parameters: {listing}"
        )
    bound: dict[str, Any] = {}
    for p in info.parameters:
        if p.name in params:
            value = params[p.name]
            if from_text and isinstance(value, str):
                try:
                    value = value_from_text(value, p.type)
                except ValueError as exc:
                    raise ValueError(f"parameter {p.name!r} expects {p.annotation}, got {value!r} ({exc})"
                                     ) from None
            bound[p.name] = value
        elif p.required:
            raise TypeError(f"method {info.name!r} needs parameter {p.name!r} ({p.annotation})")
        else:
            bound[p.name] = p.default
    return bound
