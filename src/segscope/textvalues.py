"""Values typed on a command line (``-p h=0.2``, ``--option base_width=32``), converted by the type
annotation of the parameter they are for: the one text-to-value conversion of segscope.

The annotation drives it (``typing.get_origin`` / ``get_args``): ``int``, ``float``, ``bool``
(true/false/yes/no/on/off/1/0), ``str``, ``None`` (none/null) in an optional, ``Literal`` choices,
unions (tried in a fixed order: bool, int, float, then the rest, str last) and tuples or lists as
comma-separated values. A parameter without an annotation takes the first of int, float, bool,
None that reads the text, else the text itself.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, Union, get_args, get_origin

__all__ = ["convert_all", "value_from_text"]

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")
_NONE = ("none", "null")
_EMPTY = inspect.Parameter.empty


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError("expected true or false")


def _union_order(arg: Any) -> int:
    return {bool: 0, int: 1, float: 2, str: 9}.get(arg, 5)


def value_from_text(text: str, annotation: Any) -> Any:
    """The value ``text`` stands for, as a parameter annotated ``annotation`` takes it.

    Raises ValueError when the text cannot be that type.

    Examples
    --------
    >>> value_from_text("0.5", float | None), value_from_text("none", float | None)
    (0.5, None)
    >>> value_from_text("3,4", tuple[int, ...]), value_from_text("auto", str | float)
    ((3, 4), 'auto')
    """
    if annotation in (_EMPTY, Any, object):
        return _guess(text)
    if isinstance(annotation, str):
        raise ValueError(f"annotation {annotation!r} is not evaluated; use typing.get_type_hints")
    origin, args = get_origin(annotation), get_args(annotation)
    lowered = text.strip().lower()
    if origin in (Union, types.UnionType):
        if lowered in _NONE and type(None) in args:
            return None
        for arg in sorted((a for a in args if a is not type(None)), key=_union_order):
            try:
                return value_from_text(text, arg)
            except ValueError:
                continue
        raise ValueError(f"expected {_describe(annotation)}")
    if origin is Literal:
        for choice in args:
            if str(choice) == text.strip():
                return choice
        raise ValueError(f"expected one of {', '.join(map(str, args))}")
    if annotation is type(None):
        if lowered in _NONE:
            return None
        raise ValueError("expected none")
    if annotation is bool:
        return _bool(text)
    if annotation is int:
        return int(text)
    if annotation is float:
        return float(text)
    if annotation is str:
        return text
    if origin in (tuple, list, Sequence) or annotation in (tuple, list):
        parts = [p.strip() for p in text.split(",") if p.strip()]
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(parts) != len(args):
                raise ValueError(f"expected {len(args)} comma-separated values, got {len(parts)}")
            values = [value_from_text(p, a) for p, a in zip(parts, args, strict=True)]
        else:
            inner = args[0] if args else _EMPTY
            values = [value_from_text(p, inner) for p in parts]
        return list(values) if origin is list else tuple(values)
    raise ValueError(f"a {_describe(annotation)} cannot be given as text")


def _guess(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in _NONE:
        return None
    return text


def _describe(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "").replace("numpy.ndarray", "ndarray")


def convert_all(values: Mapping[str, str], function: Callable[..., Any], *, what: str) -> dict[str, Any]:
    """Convert every ``key=text`` for ``function``'s keyword parameters, by their annotations.

    A key that is not one of its parameters is an error naming the valid ones, unless the
    function takes ``**kwargs`` (its options are then guessed from the text). ``what`` names the
    function in messages.
    """
    signature = inspect.signature(function)
    try:
        hints = typing.get_type_hints(function)
    except (NameError, TypeError):
        hints = {}
    params = {n: p for n, p in signature.parameters.items()
              if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    open_ended = any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values())
    out: dict[str, Any] = {}
    for key, text in values.items():
        if key not in params and not open_ended:
            raise TypeError(f"{what} has no option {key!r}; it takes {sorted(params) or 'none'}")
        annotation = hints.get(key, _EMPTY)
        try:
            out[key] = value_from_text(text, annotation)
        except ValueError as exc:
            raise ValueError(f"{what}: option {key!r} expects {_describe(annotation)}, got {text!r} ({exc})"
                             ) from None
    return out
