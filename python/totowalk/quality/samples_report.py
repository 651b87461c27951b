"""The sample-count study as text, files and a plot: samples.csv, samples.json, samples.png."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..backtest.forecast.store import json_default
from ..provenance import versions

__all__ = ["format_study", "plot_study", "write_study"]

_MAIN_COLUMNS = ("num_samples", "flip_rate", "abs_error_std", "mae", "mae_change_pct", "sample_seconds")


def format_study(study) -> str:
    """Two tables: the forecast figures per S, then each strategy's mean-return spread over seeds."""
    s, exact = study.settings, study.exact
    table = study.table
    spreads = table[[c for c in table.columns if c.endswith("_return_sd")]]
    spreads = spreads.rename(columns=lambda c: c[: -len("_return_sd")])
    spreads.index = [f"sd, S={n}" for n in table["num_samples"]]
    returns = pd.concat([pd.DataFrame([exact["returns"]], index=["exact"]), spreads])
    lines = [
        f"sample-count study: {', '.join(s['symbols'])}; {s['num_simulations']} simulations per symbol, "
        f"{s['profile']} profile, aggregate {s['aggregate']}; {exact['contexts']:,} unique contexts; "
        f"seeds {', '.join(map(str, s['seeds']))}",
        f"exact estimator: MAE {exact['mae']:.6f}; its backtest (forwards, statistics, strategies) took "
        f"{exact['backtest_seconds']:.2f} s, the exact {s['aggregate']} and band of every unique context "
        f"{exact['exact_seconds']:.3f} s; sample_seconds: drawing and reducing them (fastest seed)",
        "",
        table[list(_MAIN_COLUMNS)].to_string(index=False, float_format=lambda v: f"{v:.6g}"),
        "",
        "mean return per strategy with the exact estimator, then its standard deviation over seeds per S",
        returns.to_string(float_format=lambda v: f"{v: .6f}"),
    ]
    return "\n".join(lines)


def write_study(study, out_dir, extra: dict | None = None) -> list[Path]:
    """samples.csv (one row per S), samples.json (settings, exact run, per-S and per-seed rows) and
    samples.png in ``out_dir`` (created; these three files are overwritten)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "samples.csv", out / "samples.json", out / "samples.png"]
    study.table.to_csv(paths[0], index=False)
    body = {
        "settings": study.settings,
        "exact": study.exact,
        "table": study.table.to_dict(orient="records"),
        "per_seed": study.per_seed.to_dict(orient="records"),
        "versions": versions(),
        **(extra or {}),
    }
    paths[1].write_text(json.dumps(body, indent=2, default=json_default, allow_nan=True))
    plot_study(study, paths[2])
    return paths


def plot_study(study, path) -> Path:
    """Left: mean |error| in predictive stds vs S on log-log axes, with c / sqrt(S) through the
    smallest S; right: the share of flipped signal signs vs S."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    t = study.table
    s = t["num_samples"].to_numpy(dtype=np.float64)
    err = t["abs_error_std"].to_numpy()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.loglog(s, err, marker="o", label=f"|{study.settings['aggregate']} - exact| / predictive std")
    left.loglog(s, err[0] * np.sqrt(s[0] / s), ls="--", color="grey", label=r"$\propto 1/\sqrt{S}$")
    left.set_xlabel("samples S")
    left.set_ylabel("mean |error| (predictive std)")
    left.legend(fontsize=8)
    right.semilogx(s, 100.0 * t["flip_rate"].to_numpy(), marker="o")
    right.set_ylim(bottom=0)
    right.set_xlabel("samples S")
    right.set_ylabel("signal signs flipped vs exact (%)")
    for ax in (left, right):
        ax.set_xticks(s, [str(int(v)) for v in s], fontsize=7)
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())  # only the grid's S values
        ax.grid(alpha=0.3, which="both")
    settings = study.settings
    fig.suptitle(
        f"sampled vs exact estimator: {', '.join(settings['symbols'])}, {settings['num_simulations']} "
        f"simulations, {settings['profile']} profile, {len(settings['seeds'])} seeds",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
