// Exact Student-T mixture summaries; see mixture_exact.h. The Student-T CDF is
// F(t) = 1/2 + sign(t)/2 * I_y(1/2, nu/2), y = t^2 / (nu + t^2), with the regularized incomplete
// beta I from its classical continued fraction (modified Lentz), evaluated on the side of the
// symmetry I_x(a, b) = 1 - I_{1-x}(b, a) where it converges fast.
#include "mixture_exact.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>
#include <thread>
#include <vector>

#include "parallel.h"

namespace totowalk {
namespace {

constexpr double kEps = DBL_EPSILON;
constexpr double kTiny = 1e-300;
constexpr int kMaxTerms = 5000;
constexpr int kMaxNewton = 400;
constexpr double kLogSqrtPi = 0.57236494292470008707;  // log Gamma(1/2)
constexpr double kSeriesFrom = 200.0;
const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

// log B(a, 1/2); above kSeriesFrom from the asymptotic series of log Gamma(a + 1/2) - log Gamma(a),
// where lgamma differences would lose about a * 1e-16 absolute.
double log_beta_half(double a) {
  if (a < kSeriesFrom) return kLogSqrtPi + std::lgamma(a) - std::lgamma(a + 0.5);
  const double inv = 1.0 / a, inv2 = inv * inv;
  const double ratio = 0.5 * std::log(a) -
      inv * (0.125 - inv2 * (1.0 / 192.0 + inv2 * (1.0 / 640.0 - inv2 * (17.0 / 14336.0))));
  return kLogSqrtPi - ratio;
}

double guard(double v) { return std::abs(v) < kTiny ? kTiny : v; }

// Continued-fraction factor of I_x(a, b) (the classical fraction 1/(1 + d1/(1 + d2/(1 + ...)))),
// NaN when it does not converge. Evaluated by its fundamental recurrences with every term scaled by
// its coefficient's denominator: no division until the end, where Lentz's form divides six times a
// term (most calls here take three or four terms, so the divisions were most of the cost).
double beta_fraction(double x, double a, double b) {
  const double qab = a + b, qap = a + 1.0, qam = a - 1.0;
  // convergents A/B of 0 + 1/(1 + ...): (A, B) of the last two, scaled alike
  double a_prev = 0.0, b_prev = 1.0, a_last = 1.0, b_last = 1.0;
  auto append = [&](double numerator, double denominator) {  // the next term d = numerator / denominator
    const double a_next = denominator * a_last + numerator * a_prev;
    const double b_next = denominator * b_last + numerator * b_prev;
    a_prev = a_last * denominator;
    b_prev = b_last * denominator;
    a_last = a_next;
    b_last = b_next;
  };
  append(-qab * x, qap);
  for (int m = 1; m <= kMaxTerms; ++m) {
    const double m2 = 2.0 * m;
    append(m * (b - m) * x, (qam + m2) * (a + m2));
    const double a_pair = a_prev, b_pair = b_prev;  // the convergent before this odd term
    append(-(a + m) * (qab + m) * x, (a + m2) * (qap + m2));
    // |A/B - A'/B'| <= eps |A/B|, multiplied through by |B B'|
    if (std::abs(a_last * b_pair - a_pair * b_last) <= kEps * std::abs(a_last * b_pair)) return a_last / b_last;
    const double size = std::abs(b_last);
    if (size > 1e100 || size < 1e-100) {  // keep the recurrences in range
      const double s = 1.0 / size;
      a_last *= s, b_last *= s, a_prev *= s, b_prev *= s;
    }
  }
  return kNaN;
}

struct Component {
  double weight, df, loc, scale, log_beta;  // log_beta = log B(df/2, 1/2)
  double inv_beta = std::exp(-log_beta);   // 1 / B(df/2, 1/2)
};

// Standard Student-T CDF and density at t.
void t_cdf_pdf(double t, const Component& c, double* cdf, double* pdf) {
  const double a = 0.5 * c.df, t2 = t * t;
  const double log_x = -std::log1p(t2 / c.df);  // x = df / (df + t^2)
  *pdf = std::exp((0.5 * (c.df + 1.0)) * log_x - 0.5 * std::log(c.df) - c.log_beta);
  if (t2 == 0.0) {
    *cdf = 0.5;
    return;
  }
  const double log_y = 2.0 * std::log(std::abs(t)) - std::log(c.df + t2);
  const double y = std::exp(log_y);
  const double front = std::exp(0.5 * log_y + a * log_x - c.log_beta);
  double tail;  // P(T > |t|)
  if (y < 1.5 / (a + 2.5)) {
    tail = 0.5 * (1.0 - front * beta_fraction(y, 0.5, a) / 0.5);
  } else {
    tail = 0.5 * front * beta_fraction(std::exp(log_x), a, 0.5) / a;
  }
  *cdf = t > 0 ? 1.0 - tail : tail;
}

// Standard Student-T CDF at t alone (the quadrature's integrand): one log, one exp and one division
// beside the fraction, where t_cdf_pdf also takes the density in log space.
double t_cdf(double t, const Component& c) {
  const double t2 = t * t;
  if (t2 == 0.0) return 0.5;
  if (std::isinf(t2)) return t > 0 ? 1.0 : 0.0;
  const double a = 0.5 * c.df, inv = 1.0 / (c.df + t2);
  const double x = c.df * inv, y = t2 * inv;  // x + y = 1
  const double front = std::sqrt(y) * std::exp(a * std::log(x)) * c.inv_beta;  // y^(1/2) x^a / B
  const double tail = y < 1.5 / (a + 2.5) ? 0.5 - front * beta_fraction(y, 0.5, a)
                                           : 0.5 * front * beta_fraction(x, a, 0.5) / a;  // P(T > |t|)
  return t > 0 ? 1.0 - tail : tail;
}

struct Point {
  double cdf, pdf, slope, partial;  // mixture F(y), f(y), f'(y), E[(Y - mean) 1{Y <= y}]
};

Point evaluate(const std::vector<Component>& comps, double mean, double y) {
  Point p{0.0, 0.0, 0.0, 0.0};
  for (const auto& c : comps) {
    const double t = (y - c.loc) / c.scale;
    double f_cdf, f_pdf;
    t_cdf_pdf(t, c, &f_cdf, &f_pdf);
    p.cdf += c.weight * f_cdf;
    p.pdf += c.weight * f_pdf / c.scale;
    // d/dt pdf(t) = -(df + 1) t / (df + t^2) pdf(t)
    p.slope -= c.weight * (c.df + 1.0) * t / (c.df + t * t) * f_pdf / (c.scale * c.scale);
    // E[T; T <= t] = -(df + t^2) / (df - 1) * pdf(t)
    p.partial += c.weight * ((c.loc - mean) * f_cdf - c.scale * (c.df + t * t) / (c.df - 1.0) * f_pdf);
  }
  return p;
}

// Normal quantile, Abramowitz & Stegun 26.2.23 (|error| < 4.5e-4): only a starting point.
double normal_quantile_guess(double q) {
  const double p = q < 0.5 ? q : 1.0 - q;
  const double t = std::sqrt(-2.0 * std::log(p));
  const double z = t - (2.515517 + t * (0.802853 + t * 0.010328)) /
                           (1.0 + t * (1.432788 + t * (0.189269 + t * 0.001308)));
  return q < 0.5 ? -z : z;
}

// E|T| = 2 sqrt(df) / ((df - 1) B(df/2, 1/2)); P(T <= -c) <= E|T| / (2c) brackets every quantile.
double mean_abs(const Component& c) {
  return 2.0 * std::sqrt(c.df) / ((c.df - 1.0) * std::exp(c.log_beta));
}

bool solve_quantile(const std::vector<Component>& comps, double mean, double stddev, double q,
                    double tol, double* out_quantile, double* out_partial) {
  const double side = std::min(q, 1.0 - q);
  double lo = kInf, hi = -kInf;
  for (const auto& c : comps) {
    const double reach = c.scale * mean_abs(c) / (2.0 * side);
    lo = std::min(lo, c.loc - reach);
    hi = std::max(hi, c.loc + reach);
  }
  if (!std::isfinite(lo) || !std::isfinite(hi)) return false;
  double y = std::isfinite(stddev) ? mean + stddev * normal_quantile_guess(q) : 0.5 * (lo + hi);
  if (!(y > lo && y < hi)) y = 0.5 * (lo + hi);
  for (int it = 0; it < kMaxNewton; ++it) {
    const Point p = evaluate(comps, mean, y);
    if (!std::isfinite(p.cdf)) return false;
    const double residual = p.cdf - q;
    const bool converged = std::abs(residual) <= tol;
    const bool exhausted = hi - lo <= 4.0 * kEps * std::max(std::abs(lo), std::abs(hi));
    if (converged || exhausted) {
      // One more Newton step (no new evaluation): quadratic in the residual.
      double step = p.pdf > 0.0 ? -residual / p.pdf : 0.0;
      if (!(y + step >= lo && y + step <= hi)) step = 0.0;
      *out_quantile = y + step;
      *out_partial = p.partial + (y - mean) * p.pdf * step;  // d partial / dy = (y - mean) f(y)
      return true;
    }
    if (residual < 0.0) lo = y; else hi = y;
    // Halley's step (cubic convergence; f' is nearly free here), Newton's where its correction
    // factor is far from 1.
    const double newton = p.pdf > 0.0 ? residual / p.pdf : kNaN;
    const double factor = 1.0 - 0.5 * newton * p.slope / p.pdf;
    const double next = y - (factor > 0.5 && factor < 2.0 ? newton / factor : newton);
    y = (next > lo && next < hi) ? next : 0.5 * (lo + hi);
  }
  return false;
}

bool summarise_row(const double* w, const double* df, const double* loc, const double* scale,
                   int64_t k_count, const double* levels, int64_t num_levels, double tol,
                   std::vector<Component>& comps, double* mean_out, double* std_out,
                   double* quantile_out, double* partial_out) {
  double total = 0.0;
  for (int64_t k = 0; k < k_count; ++k) total += w[k];
  if (!(total > 0.0) || !std::isfinite(total)) return false;
  comps.clear();
  double mean = 0.0;
  for (int64_t k = 0; k < k_count; ++k) {
    if (!(std::isfinite(df[k]) && df[k] > 1.0 && std::isfinite(loc[k]) && scale[k] > 0.0 &&
          std::isfinite(scale[k]) && w[k] >= 0.0)) {
      return false;
    }
    if (w[k] == 0.0) continue;  // contributes nothing; also keeps it out of the bracket
    comps.push_back({w[k] / total, df[k], loc[k], scale[k], log_beta_half(0.5 * df[k])});
    mean += comps.back().weight * loc[k];
  }
  double variance = 0.0;
  for (const auto& c : comps) {
    const double spread = c.df > 2.0 ? c.scale * c.scale * c.df / (c.df - 2.0) : kInf;
    variance += c.weight * (spread + (c.loc - mean) * (c.loc - mean));
  }
  *mean_out = mean;
  *std_out = std::sqrt(variance);
  for (int64_t j = 0; j < num_levels; ++j) {
    if (!solve_quantile(comps, mean, *std_out, levels[j], tol, quantile_out + j, partial_out + j)) {
      return false;
    }
  }
  return true;
}

// ---------------------------------------------------------------------------- scores
constexpr double kFirstStep = 0.25;         // in u; halved until converged
constexpr double kFinestStep = 1.0 / 4096;  // reached only by a narrow component far from the rest
constexpr double kTailMass = 1e-6;          // bound on 1 - F at the grid's ends

// E[(X_k - r)^+] summed with weights: the integral of 1 - F from r to infinity.
double upper_tail(const std::vector<Component>& comps, double r, bool mirrored) {
  double sum = 0.0;
  for (const auto& c : comps) {
    const double z = mirrored ? (c.loc + r) / c.scale : (r - c.loc) / c.scale;  // mirrored: -X
    double f_cdf, f_pdf;
    t_cdf_pdf(z, c, &f_cdf, &f_pdf);
    sum += c.weight * c.scale * (f_pdf * (c.df + z * z) / (c.df - 1.0) - z * (1.0 - f_cdf));
  }
  return sum;
}

double mixture_cdf(const std::vector<Component>& comps, double x) {
  double cdf = 0.0;
  for (const auto& c : comps) cdf += c.weight * t_cdf((x - c.loc) / c.scale, c);
  return cdf;
}

// E|X - X'| / 2 of one Student-T: 2 s sqrt(df) B(1/2, df - 1/2) / ((df - 1) B(1/2, df/2)^2).
double single_half_gini(const Component& c) {
  const double log_ratio = kLogSqrtPi + std::lgamma(c.df - 0.5) - std::lgamma(c.df) - 2.0 * c.log_beta;
  return 2.0 * c.scale * std::sqrt(c.df) / (c.df - 1.0) * std::exp(log_ratio);
}

// integral of F (1 - F) dx; NaN when the step reaches kFinestStep before converging.
double half_gini(const std::vector<Component>& comps, double tol) {
  if (comps.size() == 1) return single_half_gini(comps[0]);
  double centre = 0.0, narrowest = kInf;
  for (const auto& c : comps) {
    centre += c.weight * c.loc;
    narrowest = std::min(narrowest, c.scale);
  }
  double reach = 0.0;  // beyond it every component keeps under kTailMass (Markov / Chebyshev)
  for (const auto& c : comps) {
    double t = mean_abs(c) / kTailMass;
    if (c.df > 2.0) t = std::min(t, std::sqrt(c.df / (c.df - 2.0) / kTailMass));
    reach = std::max(reach, std::abs(c.loc - centre) + c.scale * t);
  }
  const double limit = std::asinh(reach / narrowest);
  auto integrand = [&](double u) {
    const double cdf = mixture_cdf(comps, centre + narrowest * std::sinh(u));
    return cdf * (1.0 - cdf) * narrowest * std::cosh(u);
  };
  int64_t n = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(limit / kFirstStep)));
  double step = limit / static_cast<double>(n);
  double total = 0.5 * (integrand(-limit) + integrand(limit));
  for (int64_t i = -n + 1; i < n; ++i) total += integrand(static_cast<double>(i) * step);
  total *= step;
  const double edge = narrowest * std::sinh(limit);
  const double tails = upper_tail(comps, centre + edge, false) + upper_tail(comps, -(centre - edge), true);
  double previous = total + tails;
  while (step > kFinestStep) {
    n *= 2;
    step *= 0.5;
    double added = 0.0;
    for (int64_t i = -n + 1; i < n; i += 2) added += integrand(static_cast<double>(i) * step);
    total = 0.5 * total + step * added;
    const double value = total + tails;
    if (std::abs(value - previous) <= tol * std::abs(value)) return value;
    previous = value;
  }
  return kNaN;
}

bool score_row(const double* w, const double* df, const double* loc, const double* scale,
               double a, double b, double y, int64_t k, double tol, std::vector<Component>& comps,
               double* crps, double* pit, double* log_score) {
  comps.clear();
  double total = 0.0;
  for (int64_t j = 0; j < k; ++j) total += w[j];
  if (!(total > 0.0) || !std::isfinite(total) || !(b > 0.0) || !std::isfinite(a) || !std::isfinite(y)) return false;
  for (int64_t j = 0; j < k; ++j) {
    if (w[j] <= 0.0) continue;
    if (!(df[j] > 1.0) || !(scale[j] > 0.0) || !std::isfinite(loc[j]) || !std::isfinite(scale[j])) return false;
    comps.push_back({w[j] / total, df[j], a + b * loc[j], b * scale[j], log_beta_half(0.5 * df[j])});
  }
  double mean_abs_dev = 0.0, cdf = 0.0, log_max = -kInf;
  std::vector<double> log_terms;
  log_terms.reserve(comps.size());
  for (const auto& c : comps) {
    const double z = (y - c.loc) / c.scale;
    double f_cdf, f_pdf;
    t_cdf_pdf(z, c, &f_cdf, &f_pdf);
    cdf += c.weight * f_cdf;
    mean_abs_dev += c.weight * c.scale * (z * (2.0 * f_cdf - 1.0) + 2.0 * f_pdf * (c.df + z * z) / (c.df - 1.0));
    const double log_pdf = -0.5 * (c.df + 1.0) * std::log1p(z * z / c.df) - 0.5 * std::log(c.df) - c.log_beta;
    log_terms.push_back(std::log(c.weight) + log_pdf - std::log(c.scale));
    log_max = std::max(log_max, log_terms.back());
  }
  double sum = 0.0;
  for (double t : log_terms) sum += std::exp(t - log_max);
  const double gini = half_gini(comps, tol);
  *crps = mean_abs_dev - gini;
  *pit = cdf;
  *log_score = -(log_max + std::log(sum));
  return std::isfinite(*crps) && std::isfinite(*pit);
}

// Runs row(n, comps) for every row on `threads` workers (0: one per core); returns the first row
// for which it returned false, or -1. One failure slot per block: blocks are disjoint, so each
// writes only its own slot.
template <typename Row>
int64_t each_row(int64_t rows, int64_t components, int threads, const Row& row) {
  const int64_t workers =
      threads > 0 ? threads : std::max<int64_t>(1, std::thread::hardware_concurrency());
  std::vector<int64_t> first_failure(static_cast<size_t>(workers), -1);
  const int64_t per_block = (rows + workers - 1) / workers;
  parallel_blocks(rows, workers, [&](int64_t begin, int64_t end) {
    std::vector<Component> comps;
    comps.reserve(static_cast<size_t>(components));
    int64_t& failure = first_failure[static_cast<size_t>(per_block > 0 ? begin / per_block : 0)];
    for (int64_t n = begin; n < end; ++n) {
      if (!row(n, comps) && failure < 0) failure = n;
    }
  });
  for (int64_t f : first_failure) {
    if (f >= 0) return f;
  }
  return -1;
}

}  // namespace

int64_t mixture_summary(const double* weights, const double* df, const double* loc,
                        const double* scale, int64_t rows, int64_t components,
                        const double* levels, int64_t num_levels, double tol, double* mean,
                        double* stddev, double* quantile, double* partial, int threads) {
  return each_row(rows, components, threads, [&](int64_t n, std::vector<Component>& comps) {
    const int64_t off = n * components;
    return summarise_row(weights + off, df + off, loc + off, scale + off, components, levels,
                         num_levels, tol, comps, mean + n, stddev + n, quantile + n * num_levels,
                         partial + n * num_levels);
  });
}

int64_t mixture_scores(const double* weights, const double* df, const double* loc,
                       const double* scale, const double* affine_loc, const double* affine_scale,
                       const double* y, int64_t rows, int64_t components, double tol,
                       double* crps, double* pit, double* log_score, int threads) {
  return each_row(rows, components, threads, [&](int64_t n, std::vector<Component>& comps) {
    const int64_t off = n * components;
    return score_row(weights + off, df + off, loc + off, scale + off, affine_loc[n], affine_scale[n], y[n],
                     components, tol, comps, crps + n, pit + n, log_score + n);
  });
}

}  // namespace totowalk
