"""summary.json is encoded once and written twice: the second text adds the timings to the first."""

import json
import math

import numpy as np
import pytest

from totowalk.backtest.report.files import _encoded, with_timings

BODIES = [
    {"profile": "clean", "summary": {"AAA": {"sharpe": float("nan"), "x": [1, 2.5, None]}}, "empty": {}, "list": []},
    {"text": 'line\n  "timings": not a key', "nested": {"timings": {"a": 1}}},  # only a top-level key counts
    {"timings": {"prepare": 1.0}, "after": 2},  # a timings key already there is replaced in place
    {"values": np.arange(3), "number": np.float64(0.1)},  # numpy values through json_default
    {},
]


@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize("timings", [{"prepare": 0.25, "plots": 1e-7, "report": 3.0}, {}])
def test_the_timings_appended_to_the_encoded_body_are_the_whole_encoding(body, timings):
    want = json.dumps({**body, "timings": timings}, indent=2, default=_default(), allow_nan=True)
    assert with_timings(_encoded(body), timings) == want
    loaded = json.loads(with_timings(_encoded(body), timings))
    assert loaded["timings"] == timings
    if "timings" not in body:
        assert list(loaded)[-1] == "timings"


def _default():
    from totowalk.backtest.report.files import json_default

    return json_default


def test_nan_survives_as_json_does():
    text = with_timings(_encoded({"a": float("nan")}), {"t": 1.0})
    assert math.isnan(json.loads(text)["a"])
