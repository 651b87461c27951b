"""Stage 3: what a row of forecasts earns, under one of two profiles.

``legacy`` reproduces the classic loop bit for bit, defects included (docs/LEGACY_SEMANTICS.md);
``clean`` fixes them (§11). Both evaluate all (symbol, simulation) rows at once.
"""
