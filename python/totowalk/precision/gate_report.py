"""The quality gate's result as Markdown: every figure beside its threshold and its noise floor
(the exact CRPS row has no noise floor: the sampled runs predict the same mixtures)."""

from __future__ import annotations

__all__ = ["crps_in_words", "format_report"]

_ROWS = (  # (figure, label, format); the PASS checks are the ones in result["checks"]
    ("z_mean_mean", "z-shift of the mean: mean over contexts", "{:.3e}"),
    ("z_mean_max", "z-shift of the mean: max", "{:.3e}"),
    ("z_aggregate_mean", "z-shift of the aggregate: mean", "{:.3e}"),
    ("z_aggregate_max", "z-shift of the aggregate: max", "{:.3e}"),
    ("flip_rate", "signal sign flips (rate)", "{:.2%}"),
    ("mae_change_pct", "MAE change (%)", "{:+.4f}"),
)


def _limit(figure: str, t: dict) -> str:
    if figure in ("z_mean_mean", "z_aggregate_mean"):
        return f"<= {t['z_shift_mean']:g}"
    if figure == "flip_rate":
        return f"<= {t['flip_rate']:.0%}"
    if figure == "mae_change_pct":
        return f"abs <= {t['mae_change_pct']:g}"
    return "(reported)"


def crps_in_words(p: dict) -> str:
    """The CRPS figures of a precision: ``mean CRPS 0.008123 -> 0.008125 (+0.02 %, z = 0.40)``."""
    return (
        f"mean CRPS {p['crps_fp32']:.6g} -> {p['crps_reduced']:.6g} "
        f"({p['crps_change_pct']:+.3g} %, z = {p['crps_z']:.2f})"
    )


def _crps_rows(p: dict, t: dict, checks: dict) -> list[str]:
    if "crps_z" not in p:  # a result stored before the CRPS row
        return []
    label = f"CRPS change / its Newey-West SE ({p['crps_forecasts']} forecasts with a known next value)"
    limit = f"z <= {t.get('max_crps_z', 3.0):g} or change <= {t.get('min_crps_change_pct', 0.1):g} %"
    return [f"| {label} | {crps_in_words(p)} | {limit} | {_yes(checks.get('crps_z'))} | - | - | - |"]


def _yes(flag) -> str:
    return "-" if flag is None else ("yes" if flag else "NO")


def format_report(result: dict) -> str:
    """Markdown: verdict, the figures (exact, noise floor, sampled), then per-strategy changes."""
    m, t, s = result["metrics"], result["thresholds"], result["settings"]
    p, floor, sampled, vs = m["precision"], m["noise_floor"], m["sampled"], m["sampled_vs_floor"]
    verdict = "PASS" if result["passed"] else "FAIL"
    quarter = f"<= {vs['fraction']:g} x floor"
    lines = [
        (
            f"quality gate: {result['label']} vs fp32 on {result['model']} ({m['contexts']} next-step contexts, "
            f"aggregate {s['aggregate']}, device {result['device']}): **{verdict}**"
        ),
        "",
        (
            f"z-shift = |E_P - E_32| / sigma_32 per context, sigma_32 the fp32 predictive std (exact). "
            f"The fp32 signal sits a median {m['signal_z_median']:.3f} sigma_32 from zero. Noise floor: fp32 vs fp32, "
            f"sampled, S={s['num_samples']}, seeds {s['seed']} and {s['floor_seed']}; sampled: the precision vs fp32 "
            f"at that S, seed {s['seed']}."
        ),
        "",
        f"| figure | precision (exact) | threshold | ok | noise floor | precision (sampled) | sampled {quarter} |",
        "|---|---|---|---|---|---|---|",
    ]
    for figure, label, fmt in _ROWS:
        lines.append(
            f"| {label} | {fmt.format(p[figure])} | {_limit(figure, t)} | {_yes(result['checks'].get(figure))} "
            f"| {fmt.format(floor[figure])} | {fmt.format(sampled[figure])} "
            f"| {_yes(vs['figures'].get(figure))} |"
        )
    lines += _crps_rows(p, t, result["checks"])
    lines += [
        f"| MAE (fp32 {p['mae_ref']:.6g}) | {p['mae']:.6g} | | | {floor['mae']:.6g} | {sampled['mae']:.6g} | |",
        "",
        f"| strategy | mean return fp32 | change (exact) | Sharpe change (exact) | noise floor | change (sampled) | {quarter} |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in p["strategies"].items():
        lines.append(
            f"| {name} | {row['mean_return_ref']:.6g} | {row['return_change']:+.3e} | "
            f"{row['sharpe_change']:+.3e} | {floor['strategies'][name]['return_change']:+.3e} | "
            f"{sampled['strategies'][name]['return_change']:+.3e} | {_yes(vs['strategies'].get(name))} |"
        )
    lines += ["", f"sampled deviations all {quarter}: {'yes' if vs['all_below'] else 'no'} (reported, not judged)"]
    if result.get("path"):
        lines += ["", f"result: {result['path']}"]
    return "\n".join(lines)
