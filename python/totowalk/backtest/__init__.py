"""Walk-forward backtests: simulation windows, the run-wide forecast plan, strategies, reports.

``backtest(...)`` and ``BacktestResult`` are the public entry points (see ``api.py``).
"""

from .run import BacktestResult, backtest

__all__ = ["BacktestResult", "backtest"]
