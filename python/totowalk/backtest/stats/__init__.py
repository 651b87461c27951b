"""Stage 4: statistics of the daily walk-forward series, pure functions of returns: the daily
table itself, Sharpe and the other measures, their significance and bootstrap intervals; and the
calibration of the forecasts (their exact PIT and CRPS summarised per key)."""
