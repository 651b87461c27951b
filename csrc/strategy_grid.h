// Fused grid searches of the MaxDiff (§6.6) and MaxDiffAlwaysOn (§6.7) strategies of
// LEGACY_SEMANTICS.md, for many simulations at once: the legacy profile's (float32, fitted on all
// reported days) and the clean profile's (float64, walk-forward: day j's offsets fitted on days
// before j). Plain C++ on raw pointers; python/totowalk/backtest/profiles/legacy/strategies.py holds the
// same searches as array code (strategies.py, clean_strategies.py) and tests keep the two
// bit-identical.
#pragma once
#include <cstdint>

namespace totowalk {

// The per-day moves of `sims` simulations, each a row-major [sims, days] array: float32 in the
// legacy profile (moves + kappa spreads, LEGACY_SEMANTICS §6.6), float64 in the clean one (all
// relative to the previous close, clean_strategies.CleanStrategyInputs).
template <typename T>
struct DayMoves {
  const T* close;      // y: actual close move
  const T* high;       // H: actual high move
  const T* low;        // L: actual low move
  const T* high_pred;  // predicted high move, before the grid offset
  const T* low_pred;   // predicted low move, before the grid offset
};
using LimitMoves = DayMoves<float>;
using CleanMoves = DayMoves<double>;

// For each simulation, every (x, z) pair of grid offsets (x on the high target, z on the low):
// the long leg (bought at the low target) and the short leg (sold at the high target; none for
// crypto) per day in float32, summed over days left to right in float32, the two sums added in
// float64; the best pair is the first maximum in x-major order (a NaN total wins, as numpy's
// argmax). Writes its indices and that pair's daily legs. `threads` <= 0: all hardware threads.
void always_on_search(const LimitMoves& moves, const uint8_t* is_crypto,  // [sims]
                      int64_t sims, int64_t days, const float* grid, int64_t grid_size, float fee,
                      int64_t* best_x, int64_t* best_z,  // [sims]
                      float* buy, float* sell,           // [sims, days]
                      int threads);

// MaxDiff's two sequential sweeps per simulation, with the day's signed position q ([sims, days]
// float32): first the high target's offset x (low at offset 0), then the low target's offset z
// (high at the chosen x). Each sweep's candidate is its first maximum of the float32 six-day
// sums (as float64; a NaN sum wins, as numpy's argmax), kept only if strictly above the incumbent
// (the unshifted total, then the first sweep's best). Writes each sweep's grid index, or -1
// where nothing beat the incumbent (offset 0).
void maxdiff_search(const LimitMoves& moves, const float* position,  // [sims, days]
                    int64_t sims, int64_t days, const float* grid, int64_t grid_size, float fee,
                    int64_t* best_x, int64_t* best_z,  // [sims]
                    int threads);

// Clean MaxDiff, walk-forward (clean_strategies._maxdiff_fit): for each simulation and each
// j = 0..days, the high offset x fitted on days < j (low at 0), then the low offset z given that
// x, each the first maximum of its sweep kept only if strictly above the incumbent. P&L per day is
// clean_fills.round_trip_profit (the bar's open move in `open`; the adverse fill model, or the
// optimistic one) with the day's position and the simulation's unit cost. Writes grid indices
// into best_x / best_z ([sims, days + 1]), -1 where nothing beat the incumbent.
void clean_maxdiff_fit(const CleanMoves& moves, const double* open,  // [sims, days]
                       const double* position,                       // [sims, days]
                       const double* unit_cost,                      // [sims]
                       int64_t sims, int64_t days, const double* grid, int64_t grid_size,
                       bool optimistic, int64_t* best_x, int64_t* best_z,  // [sims, days + 1]
                       int threads);

// Clean MaxDiffAlwaysOn, walk-forward (clean_strategies._always_on_fit): for each simulation and
// each j = 0..days, the (x, z) pair whose long plus short legs (no short for crypto) summed over
// days < j is the first maximum in x-major order, kept only if strictly above the (0, 0) pair
// (the grid's middle point, 0 exactly); else the middle point. Legs and fill model as
// clean_maxdiff_fit. Writes grid indices.
void clean_always_on_fit(const CleanMoves& moves, const double* open,  // [sims, days]
                         const uint8_t* is_crypto,                     // [sims]
                         const double* unit_cost,                      // [sims]
                         int64_t sims, int64_t days, const double* grid, int64_t grid_size,
                         bool optimistic, int64_t* best_x, int64_t* best_z,  // [sims, days + 1]
                         int threads);

}  // namespace totowalk
