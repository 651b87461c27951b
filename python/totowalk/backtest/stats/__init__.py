"""Stage 4: statistics of the daily walk-forward series, pure functions of returns: the daily
table itself, Sharpe and the other measures, their significance and bootstrap intervals."""
