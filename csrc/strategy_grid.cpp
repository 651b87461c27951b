// Fused MaxDiff and MaxDiffAlwaysOn grid searches (see strategy_grid.h).
//
// Exactness: every value is the float32 operation sequence of the torch path
// (maxdiff.limit_order_profit, strategies._always_on_legs), element by element; nothing is reassociated (this file is built
// with -ffp-contract=off and no fast-math). Terms that depend on one offset only are computed once
// per offset, the pair's gap |low - high| per cell, and nothing is materialised: the torch path
// streams eight (S, 81, 81, days) tensors through memory, this touches a few kilobytes per
// simulation.
#include "strategy_grid.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <thread>
#include <vector>

#include "parallel.h"

// The per-simulation searches are also compiled for AVX2 and picked at load time where the CPU
// has it (wider lanes, the same IEEE operations: AVX2 brings no FMA, and contraction is off).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(TOTOWALK_SANITIZED)
#define TOTOWALK_SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define TOTOWALK_SIMD_CLONES
#endif

namespace totowalk {
namespace {

// Worker threads for `threads` (<= 0: every hardware thread; the searches are compute-bound).
int64_t workers_for(int threads) {
  return threads > 0 ? threads : std::max<int64_t>(1, std::thread::hardware_concurrency());
}

// torch.clamp's result for every input, NaN included (NaN compares false and passes through).
// (Two flat selects rather than nested ones: the same value for every input, and GCC vectorises it.)
template <typename T>
inline T clamp(T v, T lo, T hi) {
  const T below_top = v > hi ? hi : v;
  return v < lo ? lo : below_top;
}

// The terms of one leg that depend on a single offset, for every (day, offset), day-major so
// that the low side's terms of one day are contiguous over z (the vectorised inner loop).
// Masks are int32 so that selects on them vectorise alongside the float32 values.
struct HighSide {  // x: the high target h = clamp(high_pred + grid[x], 0, 10)
  std::vector<float> target, fee_if_sold, short_miss;
  std::vector<int32_t> sold, reached;
};
struct LowSide {  // z: the low target l = clamp(low_pred + grid[z], -1, 0)
  std::vector<float> target, fee_if_bought, long_miss;
  std::vector<int32_t> bought, reached;
};

// Day `d` of the long and short legs for the offsets' precomputed terms at index i (high) and
// j (low), the torch expressions:
//   buy  = where(bought, where(h <= H, |l - h|, |l - y|) - fee_if_sold, 0)
//   sell = where(sold,   where(l >= L, |l - h|, -|h - y|) - fee_if_bought, 0)
inline void legs(const HighSide& hs, const LowSide& ls, int64_t i, int64_t j, bool crypto,
                 float* buy, float* sell) {
  const float gap = std::fabs(ls.target[j] - hs.target[i]);
  *buy = ls.bought[j] ? (hs.reached[i] ? gap : ls.long_miss[j]) - hs.fee_if_sold[i] : 0.0f;
  *sell = (!crypto && hs.sold[i]) ? (ls.reached[j] ? gap : hs.short_miss[i]) - ls.fee_if_bought[j]
                                  : 0.0f;
}

// One high offset's day `d` added into the running day sums of every low offset z: the same
// float32 operations per (x, z) as legs(), days still added left to right, the z lanes
// independent (so the compiler vectorises over z without reassociating anything).
inline void add_day(const HighSide& hs, const LowSide& ls, int64_t i, int64_t row, int64_t g,
                    bool crypto, float* __restrict buy_total, float* __restrict sell_total) {
  const float h = hs.target[i], fee_if_sold = hs.fee_if_sold[i], short_miss = hs.short_miss[i];
  const bool reached = hs.reached[i] != 0, sells = !crypto && hs.sold[i] != 0;
  const float* __restrict target = &ls.target[row];
  const float* __restrict long_miss = &ls.long_miss[row];
  const float* __restrict fee_if_bought = &ls.fee_if_bought[row];
  const int32_t* __restrict bought = &ls.bought[row];
  const int32_t* __restrict low_reached = &ls.reached[row];
  // Both arms computed, then selected: no control flow, so the loops vectorise (the values are
  // those of legs(); an arm that is not taken is discarded).
  for (int64_t z = 0; z < g; ++z) {
    const float gap = std::fabs(target[z] - h);
    const float taken = (reached ? gap : long_miss[z]) - fee_if_sold;
    buy_total[z] += bought[z] != 0 ? taken : 0.0f;
  }
  if (!sells) return;  // the torch path adds a zero: x + 0.0f is x for every running sum here
  for (int64_t z = 0; z < g; ++z) {
    const float gap = std::fabs(target[z] - h);
    sell_total[z] += (low_reached[z] != 0 ? gap : short_miss) - fee_if_bought[z];
  }
}

// Scans totals[begin..n) in order as the sequential rule "a strictly greater total, or the first
// NaN, takes the lead (and a NaN lead is never replaced)", starting from the incumbent
// (best, best_total); `offset` maps a position to its flat grid index. Branch-free max first:
// the sequential rule picks the first occurrence of this block's maximum when that beats the
// incumbent, so only a block holding a NaN needs the element-by-element walk.
inline void first_improvement_from(const double* totals, int64_t begin, int64_t n, int64_t offset,
                                   int64_t& best, double& best_total) {
  if (std::isnan(best_total)) return;
  double top = -std::numeric_limits<double>::infinity();
  bool nan = false;
  for (int64_t k = begin; k < n; ++k) {
    nan |= std::isnan(totals[k]);
    top = totals[k] > top ? totals[k] : top;
  }
  if (nan) {
    for (int64_t k = begin; k < n; ++k) {
      if (totals[k] > best_total || std::isnan(totals[k])) {
        best = offset + k;
        best_total = totals[k];
        if (std::isnan(best_total)) return;
      }
    }
    return;
  }
  if (!(top > best_total)) return;
  for (int64_t k = begin; k < n; ++k) {
    if (totals[k] == top) {
      best = offset + k;
      best_total = totals[k];
      return;
    }
  }
}

TOTOWALK_SIMD_CLONES
void search_one(const LimitMoves& m, int64_t s, int64_t days, bool crypto, const float* grid,
                int64_t g, float fee, HighSide& hs, LowSide& ls, std::vector<float>& buy_total,
                std::vector<float>& sell_total, std::vector<double>& totals, int64_t* best_x, int64_t* best_z, float* buy,
                float* sell) {
  const int64_t row = s * days;
  for (int64_t d = 0; d < days; ++d) {
    for (int64_t k = 0; k < g; ++k) {
      const int64_t i = d * g + k;
      const float y = m.close[row + d];
      const float h = clamp(m.high_pred[row + d] + grid[k], 0.0f, 10.0f);
      hs.target[i] = h;
      hs.sold[i] = h < m.high[row + d];
      hs.reached[i] = h <= m.high[row + d];
      hs.fee_if_sold[i] = hs.sold[i] ? fee : 0.0f;
      hs.short_miss[i] = -std::fabs(h - y);
      const float l = clamp(m.low_pred[row + d] + grid[k], -1.0f, 0.0f);
      ls.target[i] = l;
      ls.bought[i] = l > m.low[row + d];
      ls.reached[i] = l >= m.low[row + d];
      ls.fee_if_bought[i] = ls.bought[i] ? fee : 0.0f;
      ls.long_miss[i] = std::fabs(l - y);
    }
  }
  int64_t best = 0;
  double best_total = 0.0;
  for (int64_t x = 0; x < g; ++x) {
    std::fill(buy_total.begin(), buy_total.end(), 0.0f);  // left to right, as sum_days_f32
    std::fill(sell_total.begin(), sell_total.end(), 0.0f);
    for (int64_t d = 0; d < days; ++d) {
      add_day(hs, ls, d * g + x, d * g, g, crypto, buy_total.data(), sell_total.data());
    }
    for (int64_t z = 0; z < g; ++z) {
      totals[z] = static_cast<double>(buy_total[z]) + static_cast<double>(sell_total[z]);
    }
    if (x == 0) best_total = totals[0];
    first_improvement_from(totals.data(), x == 0 ? 1 : 0, g, x * g, best, best_total);
  }
  const int64_t x = best / g, z = best % g;
  best_x[s] = x;
  best_z[s] = z;
  for (int64_t d = 0; d < days; ++d) {
    legs(hs, ls, d * g + x, d * g + z, crypto, &buy[row + d], &sell[row + d]);
  }
}

// maxdiff.limit_order_profit for one day: a buy-low / sell-high limit pair at position q.
inline float limit_order_profit(float y, float high, float low, float high_pred, float low_pred,
                                float q, float fee) {
  const float h = clamp(high_pred, 0.0f, 10.0f);
  const float l = clamp(low_pred, -1.0f, 0.0f);
  const float q_long = clamp(q, 0.0f, 10.0f);
  const float q_short = std::fabs(clamp(q, -10.0f, 0.0f));
  const bool bought = l > low, sold = h < high;  // '&', not '&&': no branch, so sweeps vectorise
  const float long_leg = bought ? (h <= high ? std::fabs(l - h) : std::fabs(l - y)) * q_long : 0.0f;
  const float short_leg = sold ? (l >= low ? std::fabs(h - l) : -std::fabs(h - y)) * q_short : 0.0f;
  const float fee_paid = (bought & sold) ? std::fabs(q) * fee : 0.0f;
  return long_leg + short_leg - fee_paid;
}

// numpy's argmax over the float64 sums of one sweep (first maximum; first NaN wins), then the
// strict improvement test against the incumbent. Returns the index or -1; updates the incumbent.
int64_t first_improvement(const std::vector<double>& sums, double& incumbent) {
  int64_t idx = 0;
  for (int64_t k = 1; k < static_cast<int64_t>(sums.size()) && !std::isnan(sums[idx]); ++k) {
    if (sums[k] > sums[idx] || std::isnan(sums[k])) idx = k;
  }
  if (!(sums[idx] > incumbent)) return -1;
  incumbent = sums[idx];
  return idx;
}

// One sweep of MaxDiff's offsets: for every k, the float32 day sum (left to right, as
// sum_days_f32) of limit_order_profit with grid[k] added to the high prediction (sweep_high) or to
// the low one, the other side shifted by `other_shift`; written as float64 into sums[k]. Days
// outer, offsets inner, so the k lanes vectorise; each lane's operations are those of the scalar
// day sum.
void maxdiff_sweep(const LimitMoves& m, const float* q, int64_t row, int64_t days,
                   const float* __restrict grid, int64_t g, float fee, bool sweep_high,
                   float other_shift, float* __restrict running, double* __restrict sums) {
  std::fill(running, running + g, 0.0f);
  for (int64_t d = 0; d < days; ++d) {
    const float y = m.close[row + d], high = m.high[row + d], low = m.low[row + d];
    const float qd = q[row + d];
    if (sweep_high) {
      const float low_pred = m.low_pred[row + d] + other_shift, high_pred = m.high_pred[row + d];
      for (int64_t k = 0; k < g; ++k) {
        running[k] += limit_order_profit(y, high, low, high_pred + grid[k], low_pred, qd, fee);
      }
    } else {
      const float high_pred = m.high_pred[row + d] + other_shift, low_pred = m.low_pred[row + d];
      for (int64_t k = 0; k < g; ++k) {
        running[k] += limit_order_profit(y, high, low, high_pred, low_pred + grid[k], qd, fee);
      }
    }
  }
  for (int64_t k = 0; k < g; ++k) sums[k] = static_cast<double>(running[k]);
}

TOTOWALK_SIMD_CLONES
void maxdiff_one(const LimitMoves& m, const float* q, int64_t s, int64_t days, const float* grid,
                 int64_t g, float fee, std::vector<float>& running, std::vector<double>& sums,
                 int64_t* best_x, int64_t* best_z) {
  const int64_t row = s * days;
  // The unshifted total: high_pred + 0.0f is high_pred (exact, -0.0 aside, which clamps alike).
  float unshifted = 0.0f;
  for (int64_t d = 0; d < days; ++d) {
    unshifted += limit_order_profit(m.close[row + d], m.high[row + d], m.low[row + d],
                                    m.high_pred[row + d] + 0.0f, m.low_pred[row + d] + 0.0f,
                                    q[row + d], fee);
  }
  double incumbent = static_cast<double>(unshifted);
  maxdiff_sweep(m, q, row, days, grid, g, fee, true, 0.0f, running.data(), sums.data());
  const int64_t x = first_improvement(sums, incumbent);
  const float high_shift = x >= 0 ? grid[x] : 0.0f;
  maxdiff_sweep(m, q, row, days, grid, g, fee, false, high_shift, running.data(), sums.data());
  best_x[s] = x;
  best_z[s] = first_improvement(sums, incumbent);
}

}  // namespace

void maxdiff_search(const LimitMoves& moves, const float* position, int64_t sims, int64_t days,
                    const float* grid, int64_t grid_size, float fee, int64_t* best_x,
                    int64_t* best_z, int threads) {
  if (sims <= 0 || grid_size <= 0) return;
  parallel_blocks(sims, workers_for(threads), [&](int64_t begin, int64_t end) {
    std::vector<double> sums(static_cast<size_t>(grid_size));
    std::vector<float> running(static_cast<size_t>(grid_size));
    for (int64_t s = begin; s < end; ++s) {
      maxdiff_one(moves, position, s, days, grid, grid_size, fee, running, sums, best_x, best_z);
    }
  });
}

void always_on_search(const LimitMoves& moves, const uint8_t* is_crypto, int64_t sims,
                      int64_t days, const float* grid, int64_t grid_size, float fee,
                      int64_t* best_x, int64_t* best_z, float* buy, float* sell, int threads) {
  if (sims <= 0 || grid_size <= 0) return;
  parallel_blocks(sims, workers_for(threads), [&](int64_t begin, int64_t end) {
    const size_t cells = static_cast<size_t>(grid_size * days);
    HighSide hs{std::vector<float>(cells), std::vector<float>(cells), std::vector<float>(cells),
                std::vector<int32_t>(cells), std::vector<int32_t>(cells)};
    LowSide ls{std::vector<float>(cells), std::vector<float>(cells), std::vector<float>(cells),
               std::vector<int32_t>(cells), std::vector<int32_t>(cells)};
    std::vector<float> buy_total(static_cast<size_t>(grid_size));
    std::vector<float> sell_total(static_cast<size_t>(grid_size));
    std::vector<double> totals(static_cast<size_t>(grid_size));
    for (int64_t s = begin; s < end; ++s) {
      search_one(moves, s, days, is_crypto[s] != 0, grid, grid_size, fee, hs, ls, buy_total,
                 sell_total, totals, best_x, best_z, buy, sell);
    }
  });
}

// ----------------------------------------------------------------------------- clean profile

namespace {

// One day's bar as moves from the previous close (clean_fills: L <= open, y <= H).
struct CleanBar {
  double y, open, high, low;
};

// Each leg of MaxDiff's pair on one bar for clipped targets h (high) and l (low), before costs:
// clean_fills.round_trip_profit's adverse and optimistic bounds (a template parameter, so the
// per-offset loops below have no branch and vectorise). An entry at the open (a gap through the
// limit) is followed by the whole bar, so its exit is known. After a later entry the bar cannot
// say whether the path came back to the exit: adverse books the close unless the close itself is
// beyond the exit; optimistic books the exit whenever the bar traded through it.
// Long: bought at l, take profit at h.
template <bool kOptimistic>
inline double long_gross(const CleanBar& b, double h, double l) {
  const double exit_after_open = b.high > h ? h : b.y;
  const double exit_later = kOptimistic ? (h < b.high || b.y >= h ? h : b.y) : std::min(b.y, h);
  const double exit = b.open < l ? exit_after_open : exit_later;
  const double entry = b.open < l ? b.open : l;  // at the open: it gapped through the limit
  return exit - entry;
}

// Short: sold at h, covered at l.
template <bool kOptimistic>
inline double short_gross(const CleanBar& b, double h, double l) {
  const double cover_after_open = b.low < l ? l : b.y;
  const double cover_later = kOptimistic ? (l > b.low || b.y <= l ? l : b.y) : std::max(b.y, l);
  const double entry = b.open > h ? b.open : h;  // at the open: it gapped through the limit
  const double cover = b.open > h ? cover_after_open : cover_later;
  return entry - cover;
}

// clean_fills.round_trip_profit for one day and a position of sign kSign (float64; inputs are
// finite). Only the leg of q's sign is computed: the array path's other leg is a zero times 0, a
// signed zero that leaves every sum and comparison unchanged.
template <int kSign, bool kOptimistic>
inline double signed_profit(const CleanBar& b, double high_target, double low_target, double q,
                            double cost) {
  const double h = clamp(high_target, 0.0, 10.0), l = clamp(low_target, -1.0, 0.0);
  const double round_trip_cost = 2.0 * cost;
  if constexpr (kSign > 0) {
    return (l > b.low ? long_gross<kOptimistic>(b, h, l) - round_trip_cost : 0.0) * q;
  } else {
    return (h < b.high ? short_gross<kOptimistic>(b, h, l) - round_trip_cost : 0.0) * -q;
  }
}

inline double clean_profit(const CleanBar& b, double high_target, double low_target, double q,
                           double cost, bool optimistic) {
  if (q > 0.0) {
    return optimistic ? signed_profit<1, true>(b, high_target, low_target, q, cost)
                      : signed_profit<1, false>(b, high_target, low_target, q, cost);
  }
  if (q < 0.0) {
    return optimistic ? signed_profit<-1, true>(b, high_target, low_target, q, cost)
                      : signed_profit<-1, false>(b, high_target, low_target, q, cost);
  }
  return 0.0;
}

// after[k] = before[k] + clean_profit(...) for every offset k of one day, the grid offset added to
// the high target (kShiftHigh) or to the low one: one branch-free loop per (sign, fill model).
template <bool kShiftHigh, int kSign, bool kOptimistic>
void day_profits_t(const CleanBar& bar, double hp, double lp, double q, double cost,
                   const double* __restrict grid, int64_t g, const double* __restrict before,
                   double* __restrict after) {
  const CleanBar b = bar;  // in registers: a load that only one arm makes would block if-conversion
  for (int64_t k = 0; k < g; ++k) {
    const double h = kShiftHigh ? hp + grid[k] : hp, l = kShiftHigh ? lp : lp + grid[k];
    after[k] = before[k] + signed_profit<kSign, kOptimistic>(b, h, l, q, cost);
  }
}

template <bool kShiftHigh>
void day_profits(const CleanBar& b, double hp, double lp, double q, double cost, bool optimistic,
                 const double* grid, int64_t g, const double* before, double* after) {
  if (q > 0.0) {
    (optimistic ? day_profits_t<kShiftHigh, 1, true> : day_profits_t<kShiftHigh, 1, false>)(
        b, hp, lp, q, cost, grid, g, before, after);
  } else if (q < 0.0) {
    (optimistic ? day_profits_t<kShiftHigh, -1, true> : day_profits_t<kShiftHigh, -1, false>)(
        b, hp, lp, q, cost, grid, g, before, after);
  } else {
    for (int64_t k = 0; k < g; ++k) after[k] = before[k] + 0.0;
  }
}

// numpy's add.reduce over a contiguous axis of n doubles (pairwise_sum: 8 accumulators from 8
// values on, blocks of 128 split in halves), so a masked day sum rounds as numpy's does.
double numpy_sum(const double* a, int64_t n) {
  if (n < 8) {
    double res = 0.0;
    for (int64_t i = 0; i < n; ++i) res += a[i];
    return res;
  }
  if (n <= 128) {
    double r[8];
    for (int k = 0; k < 8; ++k) r[k] = a[k];
    int64_t i = 8;
    for (; i < n - (n % 8); i += 8) {
      for (int k = 0; k < 8; ++k) r[k] += a[i + k];
    }
    double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += a[i];
    return res;
  }
  int64_t half = n / 2;
  half -= half % 8;
  return numpy_sum(a, half) + numpy_sum(a + half, n - half);
}

// The largest of n values under "strictly greater takes the lead", starting from -inf (NaNs
// never lead). Lanes run independent chains; they can differ from the sequential maximum only in
// the sign of a zero, which callers compare with ==.
inline double lanes_max(const double* v, int64_t n) {
  double best = -std::numeric_limits<double>::infinity();
  int64_t k = 0;
#if defined(__GNUC__)
  // "a > b ? a : b" on GCC's vectors is MAXPD lane by lane (NaN included): 4-lane vectors, two
  // chains, which the avx2 clone keeps in single registers and the default one in pairs.
  typedef double lanes4 __attribute__((vector_size(32)));
  lanes4 top0 = {best, best, best, best}, top1 = top0;
  for (; k + 8 <= n; k += 8) {
    lanes4 a, b;
    std::memcpy(&a, v + k, sizeof a);
    std::memcpy(&b, v + k + 4, sizeof b);
    top0 = a > top0 ? a : top0;
    top1 = b > top1 ? b : top1;
  }
  for (int lane = 0; lane < 4; ++lane) {
    best = top0[lane] > best ? top0[lane] : best;
    best = top1[lane] > best ? top1[lane] : best;
  }
#endif
  for (; k < n; ++k) best = v[k] > best ? v[k] : best;
  return best;
}

// The first strict improvement of one sweep over the incumbent (clean_strategies._first_best):
// the index of the sweep's first maximum if it beats the incumbent (which it then becomes), else -1.
// That is the sequential rule "strictly greater takes the lead" from index 0: a NaN at 0 keeps
// the lead; else the leader is the first value equal to the largest (a later equal one, a zero of
// the other sign included, never takes the lead), found after a vectorised lanes_max.
inline int64_t first_best(const double* sums, int64_t g, double& incumbent) {
  int64_t idx = 0;
  if (!std::isnan(sums[0])) {
    const double top = lanes_max(sums, g);
    while (idx + 1 < g && !(sums[idx] == top)) ++idx;
  }
  if (!(sums[idx] > incumbent)) return -1;
  incumbent = sums[idx];
  return idx;
}

// Per-thread buffers of clean_maxdiff_one, reused simulation after simulation.
struct MaxDiffScratch {
  explicit MaxDiffScratch(int64_t g, int64_t days)
      : sweep(static_cast<size_t>(g)),
        sweep_next(static_cast<size_t>(g)),
        masked(static_cast<size_t>(days)),
        prefix(static_cast<size_t>((g + 1) * (days + 1))) {}  // [k][j], or [j][k] when short
  std::vector<double> sweep, sweep_next, masked, prefix;
};

// Per-thread buffers of clean_always_on_one: running pair sums and one day's per-offset terms
// (x: the high target's, z: the low target's; see clean_always_on_one).
struct AlwaysOnScratch {
  explicit AlwaysOnScratch(int64_t g)
      : running(static_cast<size_t>(g * g)),
        short_entry(static_cast<size_t>(g)),
        long_exit_open(static_cast<size_t>(g)),
        long_exit_later(static_cast<size_t>(g)),
        long_entry(static_cast<size_t>(g)),
        short_exit_open(static_cast<size_t>(g)),
        short_exit_later(static_cast<size_t>(g)),
        sold(static_cast<size_t>(g)),
        short_open(static_cast<size_t>(g)),
        bought(static_cast<size_t>(g)),
        long_open(static_cast<size_t>(g)),
        row_best(static_cast<size_t>(g)) {}
  std::vector<double> running, short_entry, long_exit_open, long_exit_later, long_entry,
      short_exit_open, short_exit_later;
  // Flags as 0.0 / 1.0: selects on a double comparison vectorise without 64-bit integer compares.
  std::vector<double> sold, short_open, bought, long_open;
  std::vector<double> row_best;  // first_max's per-row maxima
};

// One day's long plus short legs of high offset x and every low offset z, added to line[z]: the
// same float64 operations as the array path per pair; the x terms are loop constants and the z
// lanes are independent, so the loop vectorises.
inline void add_pair_day(const AlwaysOnScratch& w, int64_t x, int64_t g, bool shorts,
                         double round_trip_cost, double* __restrict line) {
  const double exit_open = w.long_exit_open[x], exit_later = w.long_exit_later[x];
  const double short_entry = w.short_entry[x];
  const bool short_open = w.short_open[x] != 0.0;
  const double* __restrict cover = short_open ? w.short_exit_open.data() : w.short_exit_later.data();
  const double* __restrict long_open = w.long_open.data();
  const double* __restrict bought = w.bought.data();
  const double* __restrict long_entry = w.long_entry.data();
  auto buy = [&](int64_t z) {
    const double long_exit = long_open[z] != 0.0 ? exit_open : exit_later;
    const double long_leg = (long_exit - long_entry[z]) - round_trip_cost;
    return bought[z] != 0.0 ? long_leg : 0.0;
  };
  if (shorts) {
    for (int64_t z = 0; z < g; ++z) line[z] += buy(z) + ((short_entry - cover[z]) - round_trip_cost);
  } else {
    for (int64_t z = 0; z < g; ++z) line[z] += buy(z) + 0.0;  // the array path's zero short leg
  }
}

// The first index of the largest of rows x cols values (row-major) under the sequential rule
// "strictly greater takes the lead" (a NaN never does; a NaN at 0 keeps the lead): each row's
// maximum, the first row holding the overall one, then the first such value in that row.
inline int64_t first_max(const double* v, int64_t rows, int64_t cols, double* row_best) {
  if (std::isnan(v[0])) return 0;
  double best = -std::numeric_limits<double>::infinity();
  for (int64_t r = 0; r < rows; ++r) {
    row_best[r] = lanes_max(v + r * cols, cols);
    best = row_best[r] > best ? row_best[r] : best;
  }
  for (int64_t r = 0; r < rows; ++r) {
    if (row_best[r] != best) continue;
    for (int64_t c = 0; c < cols; ++c) {
      if (v[r * cols + c] == best) return r * cols + c;
    }
  }
  return 0;
}

// clean_maxdiff_one's sweeps for fewer than 8 days, where numpy's sum of a (days,) row is a plain
// left-to-right sum (numpy_sum's first branch): the same additions, offsets in the inner loop so
// the k lanes vectorise. Stage 1's cumulative sums are that sum's partial results.
TOTOWALK_SIMD_CLONES
void clean_maxdiff_one_short(const CleanMoves& m, const double* open, const double* q, double cost,
                             bool optimistic, int64_t s, int64_t days, const double* grid,
                             int64_t g, MaxDiffScratch& w, int64_t* best_x, int64_t* best_z) {
  const int64_t row = s * days, out = s * (days + 1);
  // prefix[j][k]: offset k's high-side total over days < j (column g: the unshifted base)
  const int64_t width = g + 1;
  double* prefix = w.prefix.data();
  std::fill(prefix, prefix + width, 0.0);
  for (int64_t d = 0; d < days; ++d) {
    const CleanBar bar{m.close[row + d], open[row + d], m.high[row + d], m.low[row + d]};
    const double hp = m.high_pred[row + d], lp = m.low_pred[row + d] + 0.0, qd = q[row + d];
    const double* before = prefix + d * width;
    double* after = prefix + (d + 1) * width;
    day_profits<true>(bar, hp, lp, qd, cost, optimistic, grid, g, before, after);
    after[g] = before[g] + clean_profit(bar, hp + 0.0, lp, qd, cost, optimistic);
  }
  // Stage 2's sums for window j are the left-to-right sums over days < j at j's high offset x.
  // numpy's masked days add zeros, which change nothing: a sum that starts at +0.0 never becomes
  // -0.0, the one value a +0.0 would change. So they are skipped, and while x stays the same the
  // sums of window j - 1 are window j's less its last day: one day is added, not j.
  double* sums = w.sweep.data();
  double* next = w.sweep_next.data();
  int64_t summed_x = -2, summed_days = 0;  // the offset and the days that sums hold
  for (int64_t j = 0; j <= days; ++j) {
    double incumbent = prefix[j * width + g];
    const int64_t x = first_best(prefix + j * width, g, incumbent);
    best_x[out + j] = x;
    const double high_shift = x >= 0 ? grid[x] : 0.0;
    if (x != summed_x) {
      std::fill(sums, sums + g, 0.0);
      summed_x = x;
      summed_days = 0;
    }
    for (int64_t d = summed_days; d < j; ++d) {
      const CleanBar bar{m.close[row + d], open[row + d], m.high[row + d], m.low[row + d]};
      day_profits<false>(bar, m.high_pred[row + d] + high_shift, m.low_pred[row + d], q[row + d],
                         cost, optimistic, grid, g, sums, next);
      std::swap(sums, next);
    }
    summed_days = j;
    best_z[out + j] = first_best(sums, g, incumbent);
  }
}

void clean_maxdiff_one(const CleanMoves& m, const double* open, const double* q, double cost,
                       bool optimistic, int64_t s, int64_t days, const double* grid, int64_t g,
                       MaxDiffScratch& w, int64_t* best_x, int64_t* best_z) {
  const int64_t row = s * days, out = s * (days + 1);
  auto profit = [&](int64_t d, double high_shift, double low_shift) {
    const CleanBar bar{m.close[row + d], open[row + d], m.high[row + d], m.low[row + d]};
    return clean_profit(bar, m.high_pred[row + d] + high_shift, m.low_pred[row + d] + low_shift,
                        q[row + d], cost, optimistic);
  };
  // Stage 1 needs every offset's prefix sums over days (np.cumsum: left to right): prefix[k][j].
  // The unshifted base is the x = 0 line (hp + 0.0 is hp).
  std::vector<double>& prefix = w.prefix;  // [(g + 1) * (days + 1)], row g = the base
  for (int64_t k = 0; k <= g; ++k) {
    double* line = &prefix[static_cast<size_t>(k * (days + 1))];
    const double shift = k < g ? grid[k] : 0.0;
    line[0] = 0.0;
    for (int64_t d = 0; d < days; ++d) line[d + 1] = line[d] + profit(d, shift, 0.0);
  }
  const double* base = &prefix[static_cast<size_t>(g * (days + 1))];
  for (int64_t j = 0; j <= days; ++j) {
    double incumbent = base[j];
    for (int64_t k = 0; k < g; ++k) w.sweep[static_cast<size_t>(k)] = prefix[static_cast<size_t>(k * (days + 1) + j)];
    const int64_t x = first_best(w.sweep.data(), g, incumbent);
    best_x[out + j] = x;
    // Stage 2: day sums over d < j of each low offset, as numpy sums the masked (D,) row (its
    // masked days are zeros: they are not computed, and leave the sum's grouping unchanged).
    const double high_shift = x >= 0 ? grid[x] : 0.0;
    for (int64_t k = 0; k < g; ++k) {
      for (int64_t d = 0; d < days; ++d) {
        w.masked[static_cast<size_t>(d)] = d < j ? profit(d, high_shift, grid[k]) : 0.0;
      }
      w.sweep[static_cast<size_t>(k)] = numpy_sum(w.masked.data(), days);
    }
    best_z[out + j] = first_best(w.sweep.data(), g, incumbent);
  }
}

TOTOWALK_SIMD_CLONES
void clean_always_on_one(const CleanMoves& m, const double* open, bool crypto, double cost,
                         bool optimistic, int64_t s, int64_t days, const double* grid, int64_t g,
                         AlwaysOnScratch& w, int64_t* best_x, int64_t* best_z) {
  const int64_t row = s * days, out = s * (days + 1);
  const int64_t middle = g / 2;  // ALWAYS_ON_GRID's 0
  const int64_t at_zero = middle * g + middle;
  const double round_trip_cost = 2.0 * cost;
  // Running prefix sums of every pair (np.cumsum of total = buy + where(crypto, 0, sell)).
  std::fill(w.running.begin(), w.running.end(), 0.0);
  // clean_profit at q = +1 is the long leg (its short leg times 0 adds a zero) and at q = -1 the
  // short leg. Each leg's entry and exit (long_gross, short_gross) depend on one target each, the
  // exit on the other one only through whether the entry came at the open: they are computed once
  // per offset (x: high target, z: low target), and the pair loop does the same subtractions.
  for (int64_t j = 0; j <= days; ++j) {
    if (j > 0) {
      const int64_t d = row + j - 1;
      const CleanBar bar{m.close[d], open[d], m.high[d], m.low[d]};
      for (int64_t k = 0; k < g; ++k) {
        const double h = clamp(m.high_pred[d] + grid[k], 0.0, 10.0);
        w.sold[k] = h < bar.high;
        w.short_open[k] = bar.open > h;
        w.short_entry[k] = w.short_open[k] ? bar.open : h;
        w.long_exit_open[k] = bar.high > h ? h : bar.y;
        w.long_exit_later[k] = optimistic ? (h < bar.high || bar.y >= h ? h : bar.y) : std::min(bar.y, h);
        const double l = clamp(m.low_pred[d] + grid[k], -1.0, 0.0);
        w.bought[k] = l > bar.low;
        w.long_open[k] = bar.open < l;
        w.long_entry[k] = w.long_open[k] ? bar.open : l;
        w.short_exit_open[k] = bar.low < l ? l : bar.y;
        w.short_exit_later[k] = optimistic ? (l > bar.low || bar.y <= l ? l : bar.y) : std::max(bar.y, l);
      }
      for (int64_t x = 0; x < g; ++x) {
        add_pair_day(w, x, g, !crypto && w.sold[x] != 0.0, round_trip_cost,
                     &w.running[static_cast<size_t>(x * g)]);
      }
    }
    const int64_t idx = first_max(w.running.data(), g, g, w.row_best.data());
    const int64_t best =
        w.running[static_cast<size_t>(idx)] > w.running[static_cast<size_t>(at_zero)] ? idx : at_zero;
    best_x[out + j] = best / g;
    best_z[out + j] = best % g;
  }
}

}  // namespace

void clean_maxdiff_fit(const CleanMoves& moves, const double* open, const double* position,
                       const double* unit_cost, int64_t sims, int64_t days, const double* grid,
                       int64_t grid_size, bool optimistic, int64_t* best_x, int64_t* best_z,
                       int threads) {
  if (sims <= 0 || grid_size <= 0) return;
  parallel_blocks(sims, workers_for(threads), [&](int64_t begin, int64_t end) {
    MaxDiffScratch w(grid_size, days);
    for (int64_t s = begin; s < end; ++s) {
      if (days < 8) {
        clean_maxdiff_one_short(moves, open, position, unit_cost[s], optimistic, s, days, grid,
                                grid_size, w, best_x, best_z);
      } else {
        clean_maxdiff_one(moves, open, position, unit_cost[s], optimistic, s, days, grid,
                          grid_size, w, best_x, best_z);
      }
    }
  });
}

void clean_always_on_fit(const CleanMoves& moves, const double* open, const uint8_t* is_crypto,
                         const double* unit_cost, int64_t sims, int64_t days, const double* grid,
                         int64_t grid_size, bool optimistic, int64_t* best_x, int64_t* best_z,
                         int threads) {
  if (sims <= 0 || grid_size <= 0) return;
  parallel_blocks(sims, workers_for(threads), [&](int64_t begin, int64_t end) {
    AlwaysOnScratch w(grid_size);
    for (int64_t s = begin; s < end; ++s) {
      clean_always_on_one(moves, open, is_crypto[s] != 0, unit_cost[s], optimistic, s, days, grid,
                          grid_size, w, best_x, best_z);
    }
  });
}

}  // namespace totowalk
