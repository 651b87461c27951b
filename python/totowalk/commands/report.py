"""``totowalk report RUN_DIR``: rebuild a run folder's report.html from its saved files."""

from __future__ import annotations

from ..options import existing_dir

__all__ = ["register"]


def register(subparsers):
    p = subparsers.add_parser("report", help="rebuild report.html of a backtest run folder from its saved files")
    p.add_argument("run_dir", metavar="RUN_DIR", type=existing_dir, help="folder written by `totowalk backtest --out`")
    p.set_defaults(func=_run)
    return p


def _run(args) -> int:
    from ..backtest.forecast.folder_lock import run_folder_lock
    from ..backtest.report.html import write_html_report

    with run_folder_lock(args.run_dir):  # not while a run writes the files it reads
        path = write_html_report(args.run_dir)
    print(f"wrote {path}")
    return 0
