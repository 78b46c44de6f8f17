"""Values typed on the command line become what the parameter's annotation says."""

from __future__ import annotations

from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from segscope.textvalues import convert_all, value_from_text


@given(st.integers())
def test_integers_round_trip(value):
    assert value_from_text(str(value), int) == value
    assert value_from_text(str(value), int | None) == value


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_floats_round_trip(value):
    assert value_from_text(repr(value), float) == value
    assert value_from_text(repr(value), float | None) == value


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=4))
def test_tuples_are_comma_separated(values):
    assert value_from_text(",".join(map(repr, values)), tuple[float, ...]) == tuple(values)


@pytest.mark.parametrize(("text", "annotation", "expected"), [
    ("yes", bool, True), ("Off", bool, False), ("none", int | None, None), ("null", float | None, None),
    ("auto", str | float, "auto"), ("0.5", str | float, 0.5), ("3", int | float, 3),
    ("dark", Literal["auto", "bright", "dark"], "dark"), ("1,2", tuple[float, float], (1.0, 2.0)),
    ("7", object, 7), ("x", object, "x"), ("true", object, True),
])
def test_known_answers(text, annotation, expected):
    value = value_from_text(text, annotation)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(("text", "annotation"), [
    ("three", int), ("maybe", bool), ("left", Literal["auto", "dark"]), ("1,2,3", tuple[float, float]),
    ("none", int),
])
def test_wrong_text_is_refused(text, annotation):
    with pytest.raises(ValueError):
        value_from_text(text, annotation)


def test_options_of_a_function_are_converted_and_checked_by_name():
    def builder(*, num_classes: int, base_width: int = 32, dropout: float | None = None) -> None: ...

    assert convert_all({"base_width": "16", "dropout": "none"}, builder, what="unet") == \
        {"base_width": 16, "dropout": None}
    with pytest.raises(TypeError, match="unet has no option 'width'; it takes"):
        convert_all({"width": "3"}, builder, what="unet")
    with pytest.raises(ValueError, match="option 'base_width' expects int"):
        convert_all({"base_width": "wide"}, builder, what="unet")
