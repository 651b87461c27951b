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
#include <thread>
#include <vector>

#include "parallel.h"

namespace totowalk {
namespace {

// Worker threads for `threads` (<= 0: every hardware thread; the searches are compute-bound).
int64_t workers_for(int threads) {
  return threads > 0 ? threads : std::max<int64_t>(1, std::thread::hardware_concurrency());
}

// torch.clamp's result for every input, NaN included (NaN compares false and passes through).
template <typename T>
inline T clamp(T v, T lo, T hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

// The terms of one leg that depend on a single offset, for every (offset, day).
struct HighSide {  // x: the high target h = clamp(high_pred + grid[x], 0, 10)
  std::vector<float> target, fee_if_sold, short_miss;
  std::vector<uint8_t> sold, reached;
};
struct LowSide {  // z: the low target l = clamp(low_pred + grid[z], -1, 0)
  std::vector<float> target, fee_if_bought, long_miss;
  std::vector<uint8_t> bought, reached;
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

void search_one(const LimitMoves& m, int64_t s, int64_t days, bool crypto, const float* grid,
                int64_t g, float fee, HighSide& hs, LowSide& ls, int64_t* best_x, int64_t* best_z,
                float* buy, float* sell) {
  const int64_t row = s * days;
  for (int64_t k = 0; k < g; ++k) {
    for (int64_t d = 0; d < days; ++d) {
      const int64_t i = k * days + d;
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
    for (int64_t z = 0; z < g; ++z) {
      float buy_total = 0.0f, sell_total = 0.0f;  // left to right, as sum_days_f32
      for (int64_t d = 0; d < days; ++d) {
        float b, sl;
        legs(hs, ls, x * days + d, z * days + d, crypto, &b, &sl);
        buy_total += b;
        sell_total += sl;
      }
      const double total = static_cast<double>(buy_total) + static_cast<double>(sell_total);
      const int64_t flat = x * g + z;
      if (flat == 0) {
        best_total = total;
      } else if (!std::isnan(best_total) && (total > best_total || std::isnan(total))) {
        best = flat;  // strict '>': the first maximum wins; the first NaN wins outright
        best_total = total;
      }
    }
  }
  const int64_t x = best / g, z = best % g;
  best_x[s] = x;
  best_z[s] = z;
  for (int64_t d = 0; d < days; ++d) {
    legs(hs, ls, x * days + d, z * days + d, crypto, &buy[row + d], &sell[row + d]);
  }
}

// maxdiff.limit_order_profit for one day: a buy-low / sell-high limit pair at position q.
inline float limit_order_profit(float y, float high, float low, float high_pred, float low_pred,
                                float q, float fee) {
  const float h = clamp(high_pred, 0.0f, 10.0f);
  const float l = clamp(low_pred, -1.0f, 0.0f);
  const float q_long = clamp(q, 0.0f, 10.0f);
  const float q_short = std::fabs(clamp(q, -10.0f, 0.0f));
  const bool bought = l > low, sold = h < high;
  const float long_leg = bought ? (h <= high ? std::fabs(l - h) : std::fabs(l - y)) * q_long : 0.0f;
  const float short_leg = sold ? (l >= low ? std::fabs(h - l) : -std::fabs(h - y)) * q_short : 0.0f;
  const float fee_paid = (bought && sold) ? std::fabs(q) * fee : 0.0f;
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

void maxdiff_one(const LimitMoves& m, const float* q, int64_t s, int64_t days, const float* grid,
                 int64_t g, float fee, std::vector<double>& sums, int64_t* best_x,
                 int64_t* best_z) {
  const int64_t row = s * days;
  auto day_sum = [&](float high_shift, float low_shift) {
    float total = 0.0f;  // left to right, as sum_days_f32
    for (int64_t d = 0; d < days; ++d) {
      total += limit_order_profit(m.close[row + d], m.high[row + d], m.low[row + d],
                                  m.high_pred[row + d] + high_shift,
                                  m.low_pred[row + d] + low_shift, q[row + d], fee);
    }
    return static_cast<double>(total);
  };
  // The unshifted total: high_pred + 0.0f is high_pred (exact, -0.0 aside, which clamps alike).
  double incumbent = day_sum(0.0f, 0.0f);
  for (int64_t k = 0; k < g; ++k) sums[k] = day_sum(grid[k], 0.0f);
  const int64_t x = first_improvement(sums, incumbent);
  const float high_shift = x >= 0 ? grid[x] : 0.0f;
  for (int64_t k = 0; k < g; ++k) sums[k] = day_sum(high_shift, grid[k]);
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
    for (int64_t s = begin; s < end; ++s) {
      maxdiff_one(moves, position, s, days, grid, grid_size, fee, sums, best_x, best_z);
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
                std::vector<uint8_t>(cells), std::vector<uint8_t>(cells)};
    LowSide ls{std::vector<float>(cells), std::vector<float>(cells), std::vector<float>(cells),
               std::vector<uint8_t>(cells), std::vector<uint8_t>(cells)};
    for (int64_t s = begin; s < end; ++s) {
      search_one(moves, s, days, is_crypto[s] != 0, grid, grid_size, fee, hs, ls, best_x, best_z,
                 buy, sell);
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
// clean_fills.round_trip_profit, both fill models. Long: bought at l, take profit at h.
inline double long_gross(const CleanBar& b, double h, double l, bool optimistic) {
  if (optimistic) return (h <= b.high ? h : b.y) - l;  // the entry came first; touching fills
  // Adverse: an entry at the open (gap through the limit) is followed by the whole bar; a later
  // entry's exit fills only if the close is beyond it.
  const bool at_open = b.open < l;
  return (at_open ? (b.high > h ? h : b.y) : std::min(b.y, h)) - (at_open ? b.open : l);
}

// Short: sold at h, covered at l.
inline double short_gross(const CleanBar& b, double h, double l, bool optimistic) {
  if (optimistic) return h - (l >= b.low ? l : b.y);
  const bool at_open = b.open > h;
  return (at_open ? b.open : h) - (at_open ? (b.low < l ? l : b.y) : std::max(b.y, l));
}

// clean_fills.round_trip_profit for one day (float64; inputs are finite). Only the leg of q's
// sign is computed: the array path's other leg is a zero times 0, a signed zero that leaves every
// sum and comparison unchanged.
inline double clean_profit(const CleanBar& b, double high_target, double low_target, double q,
                           double cost, bool optimistic) {
  const double h = clamp(high_target, 0.0, 10.0), l = clamp(low_target, -1.0, 0.0);
  const double round_trip_cost = 2.0 * cost;
  if (q > 0.0) return (l > b.low ? long_gross(b, h, l, optimistic) - round_trip_cost : 0.0) * q;
  if (q < 0.0) return (h < b.high ? short_gross(b, h, l, optimistic) - round_trip_cost : 0.0) * -q;
  return 0.0;
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

// The first strict improvement of one sweep over the incumbent (clean_strategies._first_best):
// the index of the sweep's first maximum if it beats the incumbent (which it then becomes), else -1.
int64_t first_best(const double* sums, int64_t g, double& incumbent) {
  int64_t idx = 0;
  for (int64_t k = 1; k < g; ++k) {
    if (sums[k] > sums[idx]) idx = k;
  }
  if (!(sums[idx] > incumbent)) return -1;
  incumbent = sums[idx];
  return idx;
}

// Per-thread buffers of clean_maxdiff_one, reused simulation after simulation.
struct MaxDiffScratch {
  explicit MaxDiffScratch(int64_t g, int64_t days)
      : sweep(static_cast<size_t>(g)),
        masked(static_cast<size_t>(days)),
        prefix(static_cast<size_t>((g + 1) * (days + 1))) {}
  std::vector<double> sweep, masked, prefix;
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
        long_open(static_cast<size_t>(g)) {}
  std::vector<double> running, short_entry, long_exit_open, long_exit_later, long_entry,
      short_exit_open, short_exit_later;
  std::vector<uint8_t> sold, short_open, bought, long_open;
};

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
        w.short_open[k] = !optimistic && bar.open > h;
        w.short_entry[k] = w.short_open[k] ? bar.open : h;
        w.long_exit_open[k] = bar.high > h ? h : bar.y;
        w.long_exit_later[k] = optimistic ? (h <= bar.high ? h : bar.y) : std::min(bar.y, h);
        const double l = clamp(m.low_pred[d] + grid[k], -1.0, 0.0);
        w.bought[k] = l > bar.low;
        w.long_open[k] = !optimistic && bar.open < l;
        w.long_entry[k] = w.long_open[k] ? bar.open : l;
        w.short_exit_open[k] = bar.low < l ? l : bar.y;
        w.short_exit_later[k] = optimistic ? (l >= bar.low ? l : bar.y) : std::max(bar.y, l);
      }
      for (int64_t x = 0; x < g; ++x) {
        double* line = &w.running[static_cast<size_t>(x * g)];
        const bool shorts = !crypto && w.sold[x];
        for (int64_t z = 0; z < g; ++z) {
          const double long_exit = w.long_open[z] ? w.long_exit_open[x] : w.long_exit_later[x];
          const double short_exit = w.short_open[x] ? w.short_exit_open[z] : w.short_exit_later[z];
          const double buy =
              w.bought[z] ? (long_exit - w.long_entry[z]) - round_trip_cost : 0.0;
          const double sell = shorts ? (w.short_entry[x] - short_exit) - round_trip_cost : 0.0;
          line[z] += buy + sell;
        }
      }
    }
    int64_t idx = 0;
    for (int64_t k = 1; k < g * g; ++k) {
      if (w.running[static_cast<size_t>(k)] > w.running[static_cast<size_t>(idx)]) idx = k;
    }
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
      clean_maxdiff_one(moves, open, position, unit_cost[s], optimistic, s, days, grid,
                        grid_size, w, best_x, best_z);
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
