"""Stage 1 of a backtest: the user's prices as validated frames, the simulation windows over them
and the run's settings (fees, spread, asset class), every default stated."""
