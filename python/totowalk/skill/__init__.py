"""Forecast skill: baselines, walk-forward evaluation against them, and its report."""
