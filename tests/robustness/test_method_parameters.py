"""Any value for any parameter of any registered method (hypothesis): a result, or a ValueError /
TypeError that names the parameter; never another exception, a hang or an unbounded allocation.

The strategies come from each parameter's annotation, so a method registered tomorrow is covered
without a line here. Arrays (markers, seeds, masks) are left to their own tests.
"""

from __future__ import annotations

import math
import os
import resource
import signal
import types
import typing

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import segscope

NASTY_INTS = [0, -1, 1, 2, 3, 7, 255, 2**31, 10**12, -(10**9)]
NASTY_FLOATS = [0.0, -1.0, 0.5, 1.0, 1e-12, 1e308, -1e308, math.nan, math.inf, -math.inf]
NASTY_STRINGS = ["", "x", "auto", "mean", "colour", "light", "canny", "enclosed", "0.5"]


def values_for(annotation: object) -> st.SearchStrategy[object]:
    """Ordinary and hostile values of the types an annotation admits."""
    if annotation is bool:
        return st.booleans()
    if annotation is int:
        return st.sampled_from(NASTY_INTS) | st.integers(-3, 40)
    if annotation is float:
        return st.sampled_from(NASTY_FLOATS) | st.floats(-5, 100, allow_nan=False)
    if annotation is str:
        return st.sampled_from(NASTY_STRINGS)
    if annotation is type(None):
        return st.none()
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = [values_for(a) for a in typing.get_args(annotation)]
        return st.one_of([o for o in options if o is not None])
    if origin is tuple:
        return st.tuples(*(values_for(a) for a in typing.get_args(annotation)))
    return st.nothing()  # arrays: not drawn here


METHODS = {m.name: m for m in segscope.methods()}
# 40 draws per method in make test; make fuzz draws SEGSCOPE_FUZZ_EXAMPLES / 10.
EXAMPLES = max(40, int(os.environ.get("SEGSCOPE_FUZZ_EXAMPLES", "0")) // 10)
IMAGES = {
    "grey": np.random.default_rng(0).integers(0, 256, (24, 32)).astype(np.uint8),
    "colour": np.random.default_rng(1).integers(0, 256, (24, 32, 3)).astype(np.uint8),
}


class _TooSlow(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise _TooSlow()


@pytest.mark.parametrize("name", sorted(METHODS))
def test_any_parameter_value_gives_a_result_or_a_clear_error(name):
    info = METHODS[name]
    drawable = {p.name: values_for(p.type) for p in info.parameters
                if p.name != "channel_axis" and not values_for(p.type).is_empty}

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(st.fixed_dictionaries({}, optional=drawable), st.sampled_from(sorted(IMAGES)))
    def check(params, image_name):
        image = IMAGES[image_name]
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        previous = signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(20)
        try:
            result = segscope.segment(image, name, **params)
        except (ValueError, TypeError) as error:
            message = str(error)
            assert message, f"{name}{params}: an empty message"
        except _TooSlow:
            pytest.fail(f"{name}{params}: over 20 s")
        else:
            assert isinstance(result, segscope.Segmentation)
            # A spacing makes a 3-D array a (Z, Y, X) volume (a method that takes volumes declares it).
            volume = params.get("spacing") is not None
            assert result.labels.shape == (image.shape[:3] if volume else image.shape[:2])
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)
        grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
        assert grown < 500, f"{name}{params}: the process grew by {grown:.0f} MiB"

    check()
