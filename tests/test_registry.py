from __future__ import annotations

import numpy as np
import pytest

import segscope
from segscope.registry import bind_parameters, get_method, parse_numpydoc, register_method


def test_methods_lists_parameters_from_signatures():
    infos = {m.name: m for m in segscope.methods()}
    assert {"otsu", "watershed"} <= set(infos)
    otsu = infos["otsu"]
    assert otsu.task == "semantic"
    assert otsu.summary.startswith("Two classes")
    nbins = otsu.parameter("nbins")
    assert (nbins.annotation, nbins.default) == ("int", 256)
    assert "Histogram bins" in nbins.doc


def test_unknown_method_lists_valid_ones():
    with pytest.raises(ValueError, match=r"unknown method 'otsuu'.*otsu.*watershed"):
        segscope.segment(np.zeros((3, 3), np.uint8), "otsuu")


def test_unknown_parameter_lists_valid_ones():
    with pytest.raises(TypeError, match=r"no parameter 'bins'.*nbins: int"):
        segscope.segment(np.zeros((3, 3), np.uint8), "otsu", bins=3)


def test_text_parameters_are_converted():
    info = get_method("watershed")
    bound = bind_parameters(info, {"h": "0.1", "min_distance": "3", "channel_axis": "none"},
                            from_text=True)
    assert bound["h"] == 0.1 and bound["min_distance"] == 3 and bound["channel_axis"] is None
    with pytest.raises(ValueError, match=r"min_distance.*expects int"):
        bind_parameters(info, {"min_distance": "three"}, from_text=True)


def test_registration_checks_the_signature():
    with pytest.raises(TypeError, match="only positional"):
        register_method("bad_positional", task="regions")(lambda image, k: None)

    def no_hint(image, *, k=1):  # type: ignore[no-untyped-def]
        return None

    with pytest.raises(TypeError, match="no type annotation"):
        register_method("bad_hint", task="regions")(no_hint)
    with pytest.raises(ValueError, match="already registered"):
        register_method("otsu", task="semantic")(segscope.classical.otsu)


def test_numpydoc_parser():
    summary, params = parse_numpydoc(
        """Do a thing.

        More words.

        Parameters
        ----------
        a, b : int
            The first
            and second.
        c : float

        Returns
        -------
        x
        """
    )
    assert summary == "Do a thing."
    assert params == {"a": "The first and second.", "b": "", "c": ""}


def test_provenance_records_everything():
    image = np.array([[0, 0, 200], [0, 200, 200]], np.uint8)
    seg = segscope.segment(image, "otsu", nbins=64)
    prov = seg.provenance
    assert prov.method == "otsu" and prov.parameters == {"nbins": 64, "channel_axis": None, "spacing": None}
    assert prov.details["threshold"] == pytest.approx(100, abs=100)
    assert prov.seconds >= 0 and prov.version == segscope.__version__
