"""Studies that run whole backtests to judge a configuration: the precision quality gate's runs
and the Monte Carlo sample-count study."""
