"""Sample aggregation against the legacy goldens (shared/golden/legacy_aggregation.json)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _golden import load_golden

from totowalk.aggregation import (
    AggregateSpec,
    aggregate_numpy,
    aggregate_with_spec,
    band_p60_minus_p40,
    parse_aggregate,
    percentiles_p40_p60,
)

GOLDEN = load_golden("legacy_aggregation.json")


def _cases(section):
    return GOLDEN[section]


def _samples(name):
    entry = GOLDEN["sample_arrays"][name]
    return np.asarray(entry["values"], dtype=entry["dtype"]).reshape(entry["shape"])


@pytest.mark.parametrize("case", _cases("aggregate_with_spec"), ids=lambda c: f"{c['samples']}|{c['spec']!r}")
def test_aggregate_with_spec_matches_golden(case):
    samples = _samples(case["samples"])
    expected = case["output"]
    if "raises" in expected:
        with pytest.raises(ValueError):
            aggregate_with_spec(samples, case["spec"])
        return
    got = aggregate_with_spec(samples, case["spec"])
    assert got.dtype == np.float64
    assert list(got.shape) == expected["shape"]
    np.testing.assert_allclose(got, expected["value"], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("case", _cases("band_p60_minus_p40"), ids=lambda c: c["samples"])
def test_band_matches_golden(case):
    samples = _samples(case["samples"])
    p40, p60 = percentiles_p40_p60(samples)
    band = band_p60_minus_p40(samples)
    assert band.dtype == np.float32 and p40.dtype == np.float32
    np.testing.assert_allclose([p40, p60, band], [case["p40"], case["p60"], case["band"]], rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("case", [c for c in _cases("compute_toto_forecast") if c["calls"]], ids=lambda c: c["case_id"])
def test_walk_forward_predictions_and_bands_from_recorded_samples(case):
    """Each recorded call's samples reduce to the recorded float32 prediction and band."""
    spec = case["inputs"]["toto_params"]["aggregate"]
    preds = [np.float32(aggregate_with_spec(np.asarray(c["samples"], np.float32), spec)[0]) for c in case["calls"]]
    bands = [band_p60_minus_p40(c["samples"]) for c in case["calls"]]
    np.testing.assert_allclose(preds, case["outputs"]["predictions"], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(bands, case["outputs"]["bands"], rtol=1e-6, atol=1e-9)


def test_parse_legacy_rules():
    assert parse_aggregate(None) == AggregateSpec("mean", "mean")
    assert parse_aggregate("  MEAN ").kind == "mean"
    assert parse_aggregate("trimmed_mean_10").params == (0.1,)
    assert parse_aggregate("trimmed_mean_0.1").params == (0.1,)
    assert parse_aggregate("quantile_35").params == (0.35,)
    assert parse_aggregate("quantile_1").params == (1.0,)
    # the unreachable quantile_plus_std branch: quantile of the last token
    assert parse_aggregate("quantile_plus_std_0.35_0.5") == AggregateSpec(
        "quantile_plus_std_0.35_0.5", "quantile", (0.5,)
    )
    assert parse_aggregate("quantile_plus_std_0.35_20").params == (0.2,)
    assert parse_aggregate("mean_quantile_mix_35_1.5").params == (0.35, 1.0)
    assert parse_aggregate("mean_plus_std_2").params == (2.0,)
    for bad in (
        "trimmed_mean_1",
        "trimmed_mean_50",
        "quantile_150",
        "p50",
        "std",
        "band",
        "expected",
        "trimmed_mean_x",
    ):
        with pytest.raises(ValueError, match="aggregation|Unknown"):
            parse_aggregate(bad)


def test_parse_extended_names():
    assert parse_aggregate("p50", extended=True) == AggregateSpec("p50", "quantile", (0.5,))
    assert parse_aggregate("P0", extended=True).params == (0.0,)
    assert parse_aggregate("p100", extended=True).params == (1.0,)
    assert parse_aggregate("std", extended=True).kind == "std"
    assert parse_aggregate("band", extended=True).kind == "band"
    assert parse_aggregate("expected", extended=True).kind == "expected"
    with pytest.raises(ValueError, match="p101"):
        parse_aggregate("p101", extended=True)


def test_aggregate_numpy_rows_equal_legacy_columns():
    rng = np.random.default_rng(0)
    samples = rng.normal(size=(5, 257))
    for spec in (
        "mean",
        "median",
        "p10",
        "trimmed_mean_10",
        "lower_trimmed_mean_25",
        "upper_trimmed_mean_0.3",
        "quantile_0.35",
        "mean_minus_std_0.5",
        "mean_quantile_mix_0.35_0.5",
    ):
        np.testing.assert_allclose(aggregate_numpy(samples, spec), aggregate_with_spec(samples.T, spec), rtol=1e-12)


def test_aggregate_numpy_extended_kinds():
    samples = np.array([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [3.0, 3.0, 3.0, 3.0, 3.0, 3.0]])
    np.testing.assert_allclose(aggregate_numpy(samples, "std"), [math.sqrt(35 / 12), 0.0])
    # linear quantile at h = q*(n-1): p40 -> 3.0, p60 -> 4.0
    np.testing.assert_allclose(aggregate_numpy(samples, "band"), [1.0, 0.0])
    np.testing.assert_allclose(aggregate_numpy(samples, "p20"), [2.0, 3.0])
    with pytest.raises(ValueError, match="mixture"):
        aggregate_numpy(samples, "expected")
    with pytest.raises(ValueError, match=r"\(N, S\)"):
        aggregate_numpy(samples[0], "mean")


def test_single_sample_raises_and_transpose_rule():
    with pytest.raises(ValueError, match="squeeze"):
        aggregate_with_spec(np.array([1.5]), "mean")
    square = np.arange(9.0).reshape(3, 3)
    np.testing.assert_allclose(aggregate_with_spec(square, "mean"), [3.0, 4.0, 5.0])
