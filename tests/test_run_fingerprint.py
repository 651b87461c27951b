"""A stored run's fingerprint covers everything that changes its numbers; resume names the difference.

Issue 21, case 1 (a run resumed with another precision was mislabelled; an int8 checkpoint loaded
with the default precision recorded "fp32") and case 10 (the quality-gate warning belongs in the
report and summary.json, not on stderr as a Python warning).
"""

import json
from types import SimpleNamespace

import numpy as np
import pytest
from test_backtest_api import prices

import totowalk as tw
from totowalk.backtest import backtest
from totowalk.backtest.forecast.store import RunStoreError
from totowalk.cli import main
from totowalk.model.identity import model_identity
from totowalk.precision import UngatedPrecisionWarning, convert_precision, gate, save_quantized

DATA = {"AAA": prices(70, 3)}


class StubEngine:
    """Engine-shaped forecaster (mean of the last 5 values) carrying the attributes a run records."""

    def __init__(self, model, num_samples=16, seed=0, estimator="sampled"):
        self.model, self.num_samples, self.seed, self.estimator = model, num_samples, seed, estimator

    def forecast(self, contexts, prediction_length=1, aggregate=("mean",), **_):
        point = np.array([[np.mean(c[-5:])] for c in contexts], dtype=np.float32)
        return SimpleNamespace(stats={name: point for name in aggregate})


def tiny(seed=0):
    return tw.build_model(tw.TotoConfig.preset("toto-tiny"), seed=seed)


BASE_MODEL = tiny(0)
BASE = dict(engine=StubEngine(BASE_MODEL), num_simulations=3, max_batch=16)

CHANGES = {
    "forecaster.num_samples": dict(engine=StubEngine(BASE_MODEL, num_samples=32)),
    "forecaster.seed": dict(engine=StubEngine(BASE_MODEL, seed=1)),
    "forecaster.estimator": dict(engine=StubEngine(BASE_MODEL, estimator="exact")),
    "forecaster.weights_sha256": dict(engine=StubEngine(tiny(1))),
    "forecaster.precision": dict(engine=StubEngine(convert_precision(tiny(0), "bf16"))),
    "forecaster.aggregate": dict(aggregate="mean"),
    "fee.AAA": dict(fee=0.001),
    "spread": dict(spread=1.01),
    "profile": dict(profile="legacy"),
    "fill_model": dict(fill_model="adverse"),
}


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_resume_refuses_each_setting_that_changes_numbers_by_name(tmp_path, name):
    out = tmp_path / "run"
    backtest(DATA, out_dir=out, **BASE)
    changed = {**BASE, **CHANGES[name]}
    with pytest.raises(RunStoreError, match=rf"holds a different run \(.*{name} was "):
        backtest(DATA, out_dir=out, resume=True, **changed)
    backtest(DATA, out_dir=out, resume=True, **BASE)  # the same settings still resume


def test_resume_refuses_other_prices_naming_the_symbol(tmp_path):
    out = tmp_path / "run"
    data = {"AAA": DATA["AAA"], "BBB": prices(70, 4)}
    backtest(data, out_dir=out, **BASE)
    with pytest.raises(RunStoreError, match=r"different run \(price data of symbol 'BBB'\)"):
        backtest({"AAA": data["AAA"], "BBB": data["BBB"] * 1.001}, out_dir=out, resume=True, **BASE)


@pytest.fixture()
def fresh_gate(tmp_path, monkeypatch):
    """No stored gate results and no earlier warning in this process."""
    monkeypatch.setenv("TOTOWALK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(gate, "_WARNED", set())


def test_int8_checkpoint_loaded_with_default_precision_is_int8(tmp_path, fresh_gate):
    folder = save_quantized(tiny(0), tmp_path / "tiny-int8")
    with pytest.warns(UngatedPrecisionWarning, match="precision 'int8'"):
        model = tw.load_model(folder)  # precision="fp32" asked; the weights are int8's
    identity = model_identity(model)
    assert identity["precision"] == "int8" and "dequantized" in identity["precision_detail"]
    assert model_identity(tiny(0))["precision"] == "fp32"
    assert identity["weights_sha256"] != model_identity(tiny(0))["weights_sha256"]


SLICE = [
    "backtest",
    "--dataset",
    "us-stocks-daily",
    "--symbol",
    "IBM",
    "--end",
    "2000-09-30",
    "--sims",
    "2",
    "--no-progress",
]  # the default clean profile: exact statistics, no samples


def test_cli_resume_with_another_precision_is_refused_by_name(tmp_path, fresh_gate, capsys):
    out = tmp_path / "run"
    assert main([*SLICE, "--out", str(out)]) == 0
    capsys.readouterr()
    assert main([*SLICE, "--out", str(out), "--resume", "--precision", "int8"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert 'forecaster.precision was "fp32", now "int8"' in err


def test_cli_records_the_precision_the_weights_have_and_reports_the_gate(tmp_path, fresh_gate, capsys):
    folder = tmp_path / "mini-int8"
    assert main(["quantize", "toto-mini", str(folder)]) == 0
    out = tmp_path / "run"
    assert main([*SLICE, "--model", str(folder), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "WARNING: precision 'int8' has no quality-gate result" in captured.out  # in the report
    assert "UserWarning" not in captured.err and "warnings.warn" not in captured.err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"]["precision"] == "int8" and summary["model"]["requested_precision"] == "fp32"
    assert summary["settings"]["forecaster"]["precision"] == "int8"
    assert any("quality-gate" in w for w in summary["warnings"])


def _index_cases():
    import pandas as pd

    rng = np.random.default_rng(11)
    seconds = np.sort(rng.integers(0, 2_000_000_000, 300)).astype("datetime64[s]")
    yield pd.DatetimeIndex(seconds)  # whole seconds, any time of day
    yield pd.date_range("2001-01-01", periods=50, freq="B")  # midnights
    for unit in ("s", "ms", "us", "ns"):
        yield pd.DatetimeIndex(seconds[:20]).as_unit(unit)
    yield pd.DatetimeIndex(seconds[:20]) + pd.Timedelta(milliseconds=250)  # fractions: str shows them
    yield pd.date_range("2020-03-01", periods=10, freq="D", tz="America/New_York")  # an offset in the text
    yield pd.DatetimeIndex(["2020-01-01", None, "2020-01-03"])  # NaT
    yield pd.DatetimeIndex(np.array(["0999-12-31", "1000-01-01"], dtype="datetime64[s]"))  # a 3-digit year
    yield pd.DatetimeIndex([])
    yield pd.RangeIndex(7)
    yield pd.Index(["a", "b,c"])


@pytest.mark.parametrize("index", list(_index_cases()), ids=lambda i: f"{type(i).__name__}{len(i)}")
def test_the_digest_writes_each_index_label_as_str_does(index):
    from totowalk.backtest.forecast.store import index_text

    assert index_text(index) == ",".join(map(str, index))  # stored digests stay valid
