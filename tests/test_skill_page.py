"""The forecast-evaluation page: its verdict sentences say what the numbers say, the reliability curve of
calibrated PITs is the diagonal, and the page is one offline HTML document holding the table, the
verdicts and one chart per figure, with user strings escaped and NaN shown as "n/a"."""

from __future__ import annotations

import html
import math
import re

import numpy as np
import pandas as pd
import pytest
from plotly.offline import get_plotlyjs

from totowalk.skill.page import (
    RELIABILITY_LEVELS,
    evaluation_page,
    format_value,
    observed_coverage,
    rolling_crps,
    verdict,
)

SYMBOL = "A&B<1>"  # every character html.escape changes
DAYS = 300
NAN = float("nan")


def _row(model: str, **values) -> dict:
    """One evaluation row: a plain, unremarkable model unless ``values`` say otherwise."""
    row = dict(
        model=model,
        symbol=SYMBOL,
        key="Close",
        horizon=1,
        days=DAYS,
        crps=0.01,
        crps_skill=0.0,
        log_score=3.1,
        mae=0.012,
        mase=1.0,
        coverage_50=0.5,
        coverage_80=0.8,
        coverage_95=0.95,
        pit_ks=0.03,
        pit_ks_p=0.5,
        hit_rate=0.5,
        hit_rate_p=1.0,
    )
    for baseline in ("random_walk", "garch_t", "ets"):
        row[f"dm_{baseline}"] = NAN
        row[f"dm_{baseline}_p"] = NAN
    row.update(values)
    return row


def _baselines(**crps) -> pd.DataFrame:
    return pd.DataFrame({"model": list(crps), "crps": list(crps.values())})


# -- verdict -----------------------------------------------------------------------------------


def test_the_verdict_reads_like_the_example():
    row = _row(
        "toto-mini",
        symbol="IBM",
        days=3016,
        crps=0.00812,
        coverage_80=0.761,
        pit_ks_p=0.002,
        hit_rate=0.512,
        hit_rate_p=0.19,
        dm_random_walk_p=0.04,
    )
    assert verdict(row, _baselines(random_walk=0.00812 / 0.987)) == (
        "toto-mini on IBM Close, horizon 1, 3,016 days: CRPS 0.00812, 1.3 % better than the random walk "
        "(DM p = 0.040); calibration: 80 % intervals covered 76.1 % of days, PIT KS p = 0.002 (miscalibrated "
        "at the 1 % level); direction right on 51.2 % of days (binomial p = 0.190: no evidence of direction skill)."
    )


def test_better_worse_and_no_evidence_follow_the_crps_and_the_dm_p_value():
    better = verdict(_row("m", crps=0.0099, dm_random_walk_p=0.04), _baselines(random_walk=0.01))
    assert "1.0 % better than the random walk (DM p = 0.040)" in better
    assert "no evidence of a difference" not in better

    worse = verdict(_row("m", crps=0.0102, dm_random_walk_p=0.3), _baselines(random_walk=0.01))
    assert "2.0 % worse than the random walk (DM p = 0.300: no evidence of a difference)" in worse

    tiny = verdict(_row("m", crps=0.005, dm_random_walk_p=1e-6), _baselines(random_walk=0.01))
    assert "50.0 % better than the random walk (DM p < 0.001)" in tiny

    both = verdict(
        _row("m", crps=0.0099, dm_random_walk_p=0.01, dm_garch_t_p=0.5),
        _baselines(garch_t=0.0098, random_walk=0.01),  # the random walk is named first whatever the row order
    )
    assert "better than the random walk (DM p = 0.010), 1.0 % worse than GARCH-t (DM p = 0.500: no evidence" in both


def test_calibrated_and_miscalibrated_follow_the_pit_ks_p_value_at_one_percent():
    calibrated = verdict(_row("m", pit_ks_p=0.02), _baselines(random_walk=0.01))
    assert "PIT KS p = 0.020 (no evidence of miscalibration at the 1 % level)" in calibrated
    assert "miscalibrated" not in calibrated
    miscalibrated = verdict(_row("m", pit_ks_p=0.0005), _baselines(random_walk=0.01))
    assert "PIT KS p < 0.001 (miscalibrated at the 1 % level)" in miscalibrated


def test_direction_words_follow_the_hit_rate_and_its_p_value():
    assert "(binomial p = 0.010: better than chance)" in verdict(_row("m", hit_rate=0.55, hit_rate_p=0.01), None)
    assert "(binomial p = 0.010: worse than chance)" in verdict(_row("m", hit_rate=0.45, hit_rate_p=0.01), None)


def test_a_verdict_on_missing_numbers_says_n_a_and_claims_nothing():
    text = verdict(
        _row("m", crps=NAN, coverage_80=NAN, pit_ks_p=NAN, hit_rate=NAN, hit_rate_p=NAN), _baselines(random_walk=0.01)
    )
    assert "nan" not in text.lower().replace("n/a", "")
    assert "CRPS n/a, no CRPS comparison with the random walk (n/a)" in text
    assert "covered n/a of days, PIT KS p = n/a;" in text
    assert "calibrated" not in text and "chance" not in text and "evidence" not in text
    assert verdict(_row("m"), _baselines()).count("no baseline to compare with") == 1


# -- numbers and curves ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, kind, text",
    [
        (0.0081234567, "sig5", "0.0081235"),
        (0.761, "pct", "76.1 %"),
        (0.013, "signed_pct", "+1.3 %"),
        (-0.02, "signed_pct", "-2.0 %"),
        (0.0004, "p", "<0.001"),
        (0.19, "p", "0.190"),
        (3016, "int", "3,016"),
        (-2.04567, "num", "-2.046"),
        (NAN, "sig5", "n/a"),
        (None, "p", "n/a"),
        (NAN, "text", "n/a"),
        ("ets", "text", "ets"),
    ],
)
def test_table_formats(value, kind, text):
    assert format_value(value, kind) == text


def test_uniform_pit_values_cover_exactly_their_nominal_level():
    n = 1000
    pit = np.random.default_rng(1).permutation((np.arange(n) + 0.5) / n)  # exactly uniform, in no order
    observed = observed_coverage(np.append(pit, NAN), RELIABILITY_LEVELS)  # a NaN PIT is left out
    assert np.all(np.abs(observed - np.array(RELIABILITY_LEVELS)) <= 1.0 / n)
    assert np.isnan(observed_coverage([NAN], [0.5])).all()


def test_rolling_crps_is_the_mean_of_the_last_sixty_days():
    dates = pd.date_range("2021-01-01", periods=100).strftime("%Y-%m-%d")  # string dates, as a CSV gives them
    crps = np.arange(100.0)
    mean = rolling_crps(pd.DataFrame({"date": dates[::-1], "model": "m", "crps": crps[::-1]}), "m")
    assert len(mean) == 41 and mean.iloc[0] == crps[:60].mean() and mean.index[0] == pd.Timestamp(dates[59])


# -- the page ----------------------------------------------------------------------------------


def _scores() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    dates = pd.bdate_range("2020-01-01", periods=DAYS)
    pits = {"toto-mini": rng.uniform(size=DAYS), "random_walk": rng.beta(0.5, 0.5, size=DAYS)}  # the second U-shaped
    return pd.concat(
        [
            pd.DataFrame(
                dict(
                    date=dates,
                    symbol=SYMBOL,
                    key="Close",
                    horizon=1,
                    model=model,
                    actual=rng.normal(0.0, 0.01, DAYS),
                    point=0.0,
                    crps=rng.gamma(2.0, 0.004, DAYS),
                    pit=pit,
                )
            )
            for model, pit in pits.items()
        ],
        ignore_index=True,
    )


EVALUATION = pd.DataFrame(
    [
        _row(
            "toto-mini",
            crps=0.0081234567,
            crps_skill=1 - 0.0081234567 / 0.0083,
            coverage_80=0.761,
            pit_ks_p=0.0004,
            hit_rate=0.512,
            hit_rate_p=0.19,
            dm_random_walk=-2.04567,
            dm_random_walk_p=0.04,
        ),
        _row("random_walk", crps=0.0083, log_score=NAN, pit_ks_p=0.2),  # an empirical distribution: no density
    ]
)
SETTINGS = dict(
    models=["toto-mini", "random_walk"],
    data="synthetic <prices>",
    symbols=[SYMBOL],
    keys=["Close"],
    days=DAYS,
    precision="fp32",
    commit="abc123",
    created="2024-01-01T00:00:00",
    seed=None,
)


@pytest.fixture(scope="module")
def page() -> str:
    return evaluation_page(EVALUATION, _scores(), SETTINGS)


def test_the_page_is_one_document_with_plotly_inlined_once(page):
    assert page.startswith("<!DOCTYPE html>") and page.count("<!DOCTYPE html>") == 1
    assert page.count("<html") == 1 and page.rstrip().endswith("</html>")
    assert page.count(get_plotlyjs()) == 1 and page.count('<script type="text/javascript">' + get_plotlyjs()) == 1
    assert "cdn.plot.ly" not in page.replace(get_plotlyjs(), "")
    assert page.index("<h1>totowalk forecast evaluation</h1>") < page.index('class="settings"')


def test_one_chart_per_figure(page):
    assert page.count('class="plotly-graph-div"') == 3
    for chart in ("pit-0", "reliability-0", "crps-0"):
        assert page.count(f'data-chart="{chart}"') == 1


def test_the_page_holds_the_settings_the_verdicts_and_the_table(page):
    for key in SETTINGS:
        assert f"<th>{key}</th>" in page
    assert "<td>synthetic &lt;prices&gt;</td>" in page and "<td>toto-mini, random_walk</td>" in page
    sentence = verdict(EVALUATION.iloc[0], EVALUATION[EVALUATION["model"] == "random_walk"])
    assert f'<p class="verdict">{html.escape(sentence)}</p>' in page
    assert page.count('<p class="verdict">') == 1  # none for the baseline
    assert "(miscalibrated at the 1 % level)" in sentence and "2.1 % better than the random walk" in sentence
    for text in ("0.0081235", "+2.1 %", "76.1 %", "&lt;0.001", "0.190", "-2.046", "0.040", "51.2 %"):
        assert f">{text}</td>" in page
    assert '<tr class="baseline">' in page
    assert page.index("Verdicts") < page.index('class="evaluation"') < page.index("plotly-graph-div")
    assert page.index("plotly-graph-div") < page.index("About the scores")


def test_user_strings_are_escaped_and_nan_reads_n_a(page):
    body = page.replace(get_plotlyjs(), "")
    assert SYMBOL not in body and "A&amp;B&lt;1&gt;" in body
    assert not re.search(r"\bnan\b", body, flags=re.IGNORECASE)
    assert '<td data-column="log_score">n/a</td>' in body  # the random walk's log score
    assert "<th>seed</th><td>n/a</td>" in body
    assert math.isnan(EVALUATION.loc[1, "log_score"])
