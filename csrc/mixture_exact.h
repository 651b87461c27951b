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

// Exact scores of N rows of K components against observations y (N): the predictive distribution
// of row n is affine_loc[n] + affine_scale[n] * Y with Y the row's mixture (as above, df > 1).
// crps = E|X - y| - E|X - X'| / 2: the first term in closed form per component, the second
// (integral of F (1 - F)) by the trapezoid rule on x = c + d sinh(u), its step halved until two
// estimates agree to tol relative, both tails beyond the grid in closed form (one component: closed
// form). pit = F(y); log_score = -log f(y). Returns the first row that failed (a quadrature that
// did not converge, a continued fraction that did not, non-finite parameters), or -1.
int64_t mixture_scores(const double* weights, const double* df, const double* loc,
                       const double* scale, const double* affine_loc, const double* affine_scale,
                       const double* y, int64_t rows, int64_t components, double tol,
                       double* crps, double* pit, double* log_score, int threads);

}  // namespace totowalk
