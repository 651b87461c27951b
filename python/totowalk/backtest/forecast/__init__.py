"""Stage 2: every forecast the run needs, each once.

The plan lists the distinct walk-forward contexts of all symbols, simulations, keys and steps; a
forecaster (the batched Toto engine, Kronos, or any function) computes them locally or on Ray
workers; the resume journal stores each batch as it arrives; the walk-forward arrays hand the
results and the aligned outcomes to the profiles as (symbol, simulation) rows.
"""
