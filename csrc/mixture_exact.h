// Exact summaries of Student-T mixtures (no sampling): mean, standard deviation, quantiles and
// centred partial expectations per row, in float64. The Python layer composes every aggregate
// (trimmed means, band, ...) from these; python/totowalk/kernels/mixture_exact.py holds the same
// algorithm in torch for other devices, and the tests hold both to scipy.
#pragma once

#include <cstdint>

namespace totowalk {

// N rows of K components, C-contiguous (N, K) float64: weights (>= 0, positive sum; normalised
// here), df (> 1; the variance needs > 2), loc, scale (> 0). levels: J quantile levels in (0, 1).
// Outputs: mean (N), stddev (N), quantile (N, J), partial (N, J) where
// partial[n, j] = E[(Y - mean) 1{Y <= quantile[n, j]}]. Each quantile is solved to
// |F(x) - q| <= tol by a bracketed, safeguarded Newton iteration, then polished by one more
// Newton step. Returns the first row whose computation failed (a continued fraction that did not
// converge, or non-finite parameters), or -1.
int64_t mixture_summary(const double* weights, const double* df, const double* loc,
                        const double* scale, int64_t rows, int64_t components,
                        const double* levels, int64_t num_levels, double tol, double* mean,
                        double* stddev, double* quantile, double* partial, int threads);

}  // namespace totowalk
