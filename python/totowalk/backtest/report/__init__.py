"""Stage 5: what a person reads: the text report, the result files and plots, report.html."""
