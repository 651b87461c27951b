"""Scores of forecast distributions: exact proper scores, calibration and significance tests."""
