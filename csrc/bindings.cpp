// Python bindings for totowalk._C: argument checks and GIL handling only; the work lives in
// pack.cpp (CPU packing) and staging.cu (pinned CUDA ring).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "blake2b.h"
#include "csv_text.h"
#include "message.h"
#include "mixture_exact.h"
#include "philox.h"
#include "pack.h"
#include "parallel.h"
#include "staging.h"
#include "strategy_grid.h"

namespace py = pybind11;
using totowalk::PackRequest;
using totowalk::SourceDtype;
using totowalk::SourceView;

static_assert(sizeof(PackRequest) == 4 * sizeof(int64_t),
              "PackRequest must match one row of an (R, 4) int64 array");

namespace {

// Sources and requests checked and viewed in place. `keep_alive` holds a reference to every
// array so the pointers stay valid while the GIL is released (the caller's list may change).
struct BatchArgs {
  std::vector<py::array> keep_alive;
  std::vector<SourceView> sources;
  const PackRequest* requests = nullptr;
  int64_t num_requests = 0;
};

std::string describe_dtype(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

SourceView view_source(const py::handle& obj, size_t index, std::vector<py::array>& keep_alive) {
  if (!py::isinstance<py::array>(obj)) {
    throw py::type_error(totowalk::message(
        "source ", index, " is a ", py::str(obj.get_type().attr("__name__")).cast<std::string>(),
        ", expected a 1-D numpy array"));
  }
  auto arr = py::reinterpret_borrow<py::array>(obj);
  if (arr.ndim() != 1) {
    throw py::value_error(
        totowalk::message("source ", index, " has ", arr.ndim(), " dimensions, expected 1"));
  }
  const py::dtype dt = arr.dtype();
  if (dt.kind() != 'f' || (dt.itemsize() != 4 && dt.itemsize() != 8) || dt.byteorder() == '>') {
    throw py::type_error(totowalk::message("source ", index, " has dtype ", describe_dtype(arr),
                                           ", expected native float32 or float64"));
  }
  keep_alive.push_back(arr);
  return SourceView{static_cast<const char*>(arr.data()), static_cast<int64_t>(arr.shape(0)),
                    static_cast<int64_t>(arr.strides(0)),
                    dt.itemsize() == 4 ? SourceDtype::kFloat32 : SourceDtype::kFloat64};
}

BatchArgs parse_batch(const py::sequence& sources, const py::array& requests) {
  BatchArgs args;
  args.keep_alive.reserve(sources.size() + 1);
  args.sources.reserve(sources.size());
  for (size_t i = 0; i < sources.size(); ++i) {
    args.sources.push_back(view_source(sources[i], i, args.keep_alive));
  }
  const bool ok = requests.ndim() == 2 && requests.shape(1) == 4 &&
                  requests.dtype().kind() == 'i' && requests.dtype().itemsize() == 8 &&
                  requests.dtype().byteorder() != '>' &&
                  (requests.flags() & py::array::c_style);
  if (!ok) {
    throw py::value_error(totowalk::message(
        "requests must be a C-contiguous int64 array of shape (R, 4) with columns "
        "(series, start, end, padded_length); got dtype ",
        describe_dtype(requests), " with ", requests.ndim(), " dimensions"));
  }
  args.keep_alive.push_back(requests);
  args.requests = static_cast<const PackRequest*>(requests.data());
  args.num_requests = static_cast<int64_t>(requests.shape(0));
  return args;
}

// Checks that `arr` is a writable C-contiguous (rows, width) array of the given kind/itemsize.
void check_output(const py::array& arr, const char* name, char kind, ssize_t itemsize,
                  const char* dtype_name, int64_t rows, int64_t width) {
  const bool ok = arr.ndim() == 2 && arr.shape(0) == rows && arr.shape(1) == width &&
                  arr.dtype().kind() == kind && arr.dtype().itemsize() == itemsize &&
                  (arr.flags() & py::array::c_style) && arr.writeable();
  if (!ok) {
    std::string msg = totowalk::message(name, " must be a writable C-contiguous ", dtype_name,
                                        " array of shape (", rows, ", ", width, "); got ",
                                        describe_dtype(arr), " with shape (");
    for (py::ssize_t d = 0; d < arr.ndim(); ++d) msg += totowalk::message(d ? ", " : "", arr.shape(d));
    msg += arr.writeable() ? ")" : "), read-only";
    throw py::value_error(msg);
  }
}

void pack(const py::sequence& sources, const py::array& requests, int64_t width,
          py::array values, py::array mask, int threads) {
  if (width < 0) throw py::value_error("width must be >= 0, got " + std::to_string(width));
  BatchArgs args = parse_batch(sources, requests);
  check_output(values, "values", 'f', 4, "float32", args.num_requests, width);
  check_output(mask, "mask", 'b', 1, "bool", args.num_requests, width);
  auto* values_ptr = static_cast<float*>(values.mutable_data());
  auto* mask_ptr = static_cast<uint8_t*>(mask.mutable_data());
  py::gil_scoped_release release;
  totowalk::validate_requests(args.sources, args.requests, args.num_requests, width);
  totowalk::pack_batch(args.sources, args.requests, args.num_requests, width, values_ptr,
                       mask_ptr, threads);
}

// 16-byte BLAKE2b digests of float32 C-contiguous arrays, each over its values and then its shape
// (int64, native order): the bytes of engine.inputs.content_digest, for many contexts at once,
// hashed on `threads` threads (<= 0: one below 8 MB in all, else default_pack_threads()).
py::bytes content_digests(const py::sequence& arrays, int threads) {
  struct Item {
    const void* data;
    size_t bytes;
    std::vector<int64_t> shape;
  };
  std::vector<Item> items;
  items.reserve(static_cast<size_t>(py::len(arrays)));
  size_t total = 0;
  for (py::ssize_t i = 0; i < static_cast<py::ssize_t>(py::len(arrays)); ++i) {
    py::object item = arrays[i];
    if (!py::isinstance<py::array>(item)) {
      throw py::type_error(totowalk::message("context ", i, ": expected a numpy array"));
    }
    auto arr = py::reinterpret_borrow<py::array>(item);  // the sequence keeps it alive
    if (arr.dtype().kind() != 'f' || arr.dtype().itemsize() != 4 || !(arr.flags() & py::array::c_style)) {
      throw py::value_error(totowalk::message("context ", i, ": expected a C-contiguous float32 array"));
    }
    std::vector<int64_t> shape(static_cast<size_t>(arr.ndim()));
    for (py::ssize_t d = 0; d < arr.ndim(); ++d) shape[static_cast<size_t>(d)] = arr.shape(d);
    const size_t bytes = static_cast<size_t>(arr.nbytes());
    items.push_back({arr.data(), bytes, std::move(shape)});
    total += bytes;
  }
  std::string out(items.size() * 16, '\0');
  {
    py::gil_scoped_release release;
    const int64_t workers = threads > 0 ? threads : (total < (8u << 20) ? 1 : totowalk::default_pack_threads());
    totowalk::parallel_blocks(static_cast<int64_t>(items.size()), workers, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const Item& it = items[static_cast<size_t>(i)];
        totowalk::Blake2b hash(16);
        hash.update(it.data, it.bytes);
        hash.update(it.shape.data(), it.shape.size() * sizeof(int64_t));
        hash.final(reinterpret_cast<uint8_t*>(&out[static_cast<size_t>(i) * 16]));
      }
    });
  }
  return py::bytes(out);
}

// content_digests of walk-forward contexts series[family[i]][:length[i]] (each a (1, length)
// context) without hashing any prefix twice: the values come first in the digest, so one running
// BLAKE2b state per series, fed in order of length, is copied at each end and finished with that
// context's shape. Cost: each series once plus two blocks per context, against the sum of the
// context lengths. Series: 1-D or (1, T) C-contiguous float32; families on `threads` threads.
py::bytes walk_forward_digests(const py::sequence& series, const py::array_t<int64_t>& family,
                               const py::array_t<int64_t>& length, int threads) {
  const py::ssize_t count = py::len(series);
  std::vector<std::pair<const float*, int64_t>> bases;
  bases.reserve(static_cast<size_t>(count));
  for (py::ssize_t i = 0; i < count; ++i) {
    py::object item = series[i];
    if (!py::isinstance<py::array>(item)) {
      throw py::type_error(totowalk::message("series ", i, ": expected a numpy array"));
    }
    auto arr = py::reinterpret_borrow<py::array>(item);
    const bool one_row = arr.ndim() == 1 || (arr.ndim() == 2 && arr.shape(0) == 1);
    if (arr.dtype().kind() != 'f' || arr.dtype().itemsize() != 4 || !(arr.flags() & py::array::c_style) ||
        !one_row) {
      throw py::value_error(totowalk::message("series ", i, ": expected a C-contiguous float32 array of one row"));
    }
    bases.emplace_back(static_cast<const float*>(arr.data()), arr.shape(arr.ndim() - 1));
  }
  if (family.ndim() != 1 || length.ndim() != 1 || family.shape(0) != length.shape(0)) {
    throw py::value_error("family and length must be 1-D int64 arrays of one length");
  }
  const int64_t n = family.shape(0);
  auto fam = family.unchecked<1>();
  auto len = length.unchecked<1>();
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::vector<int64_t> starts(static_cast<size_t>(count) + 1, 0);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t f = fam(i), l = len(i);
    if (f < 0 || f >= count) {
      throw py::value_error(totowalk::message("context ", i, ": family ", f, " is not a series index (0..", count - 1, ")"));
    }
    if (l < 0 || l > bases[static_cast<size_t>(f)].second) {
      throw py::value_error(totowalk::message("context ", i, ": length ", l, " is outside 0..",
                                              bases[static_cast<size_t>(f)].second, " of series ", f));
    }
    ++starts[static_cast<size_t>(f) + 1];
  }
  for (py::ssize_t f = 0; f < count; ++f) starts[static_cast<size_t>(f) + 1] += starts[static_cast<size_t>(f)];
  {  // counting sort by family, stable
    std::vector<int64_t> next(starts.begin(), starts.end() - 1);
    for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(next[static_cast<size_t>(fam(i))]++)] = i;
  }
  std::string out(static_cast<size_t>(n) * 16, '\0');
  {
    py::gil_scoped_release release;
    int64_t total = 0;
    for (const auto& base : bases) total += base.second * 4;
    const int64_t workers = threads > 0 ? threads : (total < (8 << 20) ? 1 : totowalk::default_pack_threads());
    totowalk::parallel_blocks(static_cast<int64_t>(count), workers, [&](int64_t begin, int64_t end) {
      for (int64_t f = begin; f < end; ++f) {
        auto first = order.begin() + starts[static_cast<size_t>(f)];
        auto last = order.begin() + starts[static_cast<size_t>(f) + 1];
        std::stable_sort(first, last, [&](int64_t a, int64_t b) { return len(a) < len(b); });
        const auto* data = reinterpret_cast<const uint8_t*>(bases[static_cast<size_t>(f)].first);
        totowalk::Blake2b running(16);
        int64_t fed = 0;
        for (auto it = first; it != last; ++it) {
          const int64_t l = len(*it);
          running.update(data + fed * 4, static_cast<size_t>(l - fed) * 4);
          fed = l;
          const int64_t shape[2] = {1, l};
          totowalk::Blake2b context = running;  // the state after this context's values
          context.update(shape, sizeof(shape));
          context.final(reinterpret_cast<uint8_t*>(&out[static_cast<size_t>(*it) * 16]));
        }
      }
    });
  }
  return py::bytes(out);
}

// Checks that every named array is a C-contiguous (sims, days) array of floats of `itemsize`
// bytes (4: float32, 8: float64); returns (sims, days).
std::pair<int64_t, int64_t> check_day_arrays(
    const char* function, std::initializer_list<std::pair<const char*, const py::array*>> arrays,
    ssize_t itemsize = 4) {
  const py::array& first = *arrays.begin()->second;
  if (first.ndim() != 2) {
    throw py::value_error(totowalk::message(function, ": ", arrays.begin()->first,
                                            " must be 2-D (sims, days)"));
  }
  const int64_t sims = first.shape(0), days = first.shape(1);
  for (const auto& [name, arr] : arrays) {
    const bool ok = arr->ndim() == 2 && arr->shape(0) == sims && arr->shape(1) == days &&
                    arr->dtype().kind() == 'f' && arr->dtype().itemsize() == itemsize &&
                    (arr->flags() & py::array::c_style);
    if (!ok) {
      throw py::value_error(totowalk::message(function, ": ", name, " must be a C-contiguous ",
                                              itemsize == 4 ? "float32" : "float64",
                                              " array of shape (", sims, ", ", days, ")"));
    }
  }
  return {sims, days};
}

template <typename T>
const T* check_grid(const char* function, const py::array& grid) {
  if (!(grid.ndim() == 1 && grid.shape(0) > 0 && grid.dtype().kind() == 'f' &&
        grid.dtype().itemsize() == sizeof(T) && (grid.flags() & py::array::c_style))) {
    throw py::value_error(totowalk::message(function, ": grid must be a non-empty 1-D ",
                                            sizeof(T) == 4 ? "float32" : "float64", " array"));
  }
  return static_cast<const T*>(grid.data());
}

// Checks a (sims,) C-contiguous array of `kind` ('b' bool, 'f' float64).
void check_per_simulation(const char* function, const char* name, const py::array& arr,
                          int64_t sims, char kind) {
  const bool ok = arr.ndim() == 1 && arr.shape(0) == sims && arr.dtype().kind() == kind &&
                  (kind == 'b' || arr.dtype().itemsize() == 8) &&
                  (arr.flags() & py::array::c_style);
  if (!ok) {
    throw py::value_error(totowalk::message(function, ": ", name, " must be a ",
                                            kind == 'b' ? "bool" : "float64",
                                            " array of shape (", sims, ")"));
  }
}

// Views of five checked (sims, days) arrays of T (see check_day_arrays).
template <typename T>
totowalk::DayMoves<T> day_moves(const py::array& close, const py::array& high,
                                const py::array& low, const py::array& high_pred,
                                const py::array& low_pred) {
  return {static_cast<const T*>(close.data()), static_cast<const T*>(high.data()),
          static_cast<const T*>(low.data()), static_cast<const T*>(high_pred.data()),
          static_cast<const T*>(low_pred.data())};
}

// The MaxDiffAlwaysOn search over (sims, days) float32 moves; see strategy_grid.h.
py::tuple always_on_search(const py::array& close, const py::array& high, const py::array& low,
                           const py::array& high_pred, const py::array& low_pred,
                           const py::array& is_crypto, const py::array& grid, float fee,
                           int threads) {
  const auto [sims, days] = check_day_arrays(
      "always_on_search", {{"close", &close}, {"high", &high}, {"low", &low},
                           {"high_pred", &high_pred}, {"low_pred", &low_pred}});
  check_per_simulation("always_on_search", "is_crypto", is_crypto, sims, 'b');
  const float* grid_values = check_grid<float>("always_on_search", grid);
  const int64_t grid_size = grid.shape(0);
  py::array_t<int64_t> best_x(sims), best_z(sims);
  py::array_t<float> buy({sims, days}), sell({sims, days});
  const auto moves = day_moves<float>(close, high, low, high_pred, low_pred);
  const auto* crypto = static_cast<const uint8_t*>(is_crypto.data());
  int64_t* x = best_x.mutable_data();
  int64_t* z = best_z.mutable_data();
  float* buy_out = buy.mutable_data();
  float* sell_out = sell.mutable_data();
  {
    py::gil_scoped_release release;
    totowalk::always_on_search(moves, crypto, sims, days, grid_values, grid_size, fee, x, z,
                               buy_out, sell_out, threads);
  }
  return py::make_tuple(best_x, best_z, buy, sell);
}

// MaxDiff's two sweeps over (sims, days) float32 moves and positions; see strategy_grid.h.
py::tuple maxdiff_search(const py::array& close, const py::array& high, const py::array& low,
                         const py::array& high_pred, const py::array& low_pred,
                         const py::array& position, const py::array& grid, float fee,
                         int threads) {
  const auto [sims, days] = check_day_arrays(
      "maxdiff_search", {{"close", &close}, {"high", &high}, {"low", &low},
                         {"high_pred", &high_pred}, {"low_pred", &low_pred},
                         {"position", &position}});
  const float* grid_values = check_grid<float>("maxdiff_search", grid);
  const int64_t grid_size = grid.shape(0);
  py::array_t<int64_t> best_x(sims), best_z(sims);
  const auto moves = day_moves<float>(close, high, low, high_pred, low_pred);
  const auto* q = static_cast<const float*>(position.data());
  int64_t* x = best_x.mutable_data();
  int64_t* z = best_z.mutable_data();
  {
    py::gil_scoped_release release;
    totowalk::maxdiff_search(moves, q, sims, days, grid_values, grid_size, fee, x, z, threads);
  }
  return py::make_tuple(best_x, best_z);
}

// The clean profile's walk-forward MaxDiff fits; see strategy_grid.h.
py::tuple clean_maxdiff_fit(const py::array& close, const py::array& open, const py::array& high,
                            const py::array& low, const py::array& high_pred,
                            const py::array& low_pred, const py::array& position,
                            const py::array& unit_cost, const py::array& grid, bool optimistic,
                            int threads) {
  const auto [sims, days] = check_day_arrays(
      "clean_maxdiff_fit", {{"close", &close}, {"open", &open}, {"high", &high}, {"low", &low},
                            {"high_pred", &high_pred}, {"low_pred", &low_pred},
                            {"position", &position}}, 8);
  check_per_simulation("clean_maxdiff_fit", "unit_cost", unit_cost, sims, 'f');
  const double* grid_values = check_grid<double>("clean_maxdiff_fit", grid);
  const int64_t grid_size = grid.shape(0);
  py::array_t<int64_t> best_x({sims, days + 1}), best_z({sims, days + 1});
  const auto moves = day_moves<double>(close, high, low, high_pred, low_pred);
  const auto* open_moves = static_cast<const double*>(open.data());
  const auto* q = static_cast<const double*>(position.data());
  const auto* cost = static_cast<const double*>(unit_cost.data());
  int64_t* x = best_x.mutable_data();
  int64_t* z = best_z.mutable_data();
  {
    py::gil_scoped_release release;
    totowalk::clean_maxdiff_fit(moves, open_moves, q, cost, sims, days, grid_values, grid_size,
                                optimistic, x, z, threads);
  }
  return py::make_tuple(best_x, best_z);
}

// The clean profile's walk-forward MaxDiffAlwaysOn fits; see strategy_grid.h.
py::tuple clean_always_on_fit(const py::array& close, const py::array& open,
                              const py::array& high, const py::array& low,
                              const py::array& high_pred, const py::array& low_pred,
                              const py::array& is_crypto, const py::array& unit_cost,
                              const py::array& grid, bool optimistic, int threads) {
  const auto [sims, days] = check_day_arrays(
      "clean_always_on_fit", {{"close", &close}, {"open", &open}, {"high", &high}, {"low", &low},
                              {"high_pred", &high_pred}, {"low_pred", &low_pred}}, 8);
  check_per_simulation("clean_always_on_fit", "is_crypto", is_crypto, sims, 'b');
  check_per_simulation("clean_always_on_fit", "unit_cost", unit_cost, sims, 'f');
  const double* grid_values = check_grid<double>("clean_always_on_fit", grid);
  const int64_t grid_size = grid.shape(0);
  py::array_t<int64_t> best_x({sims, days + 1}), best_z({sims, days + 1});
  const auto moves = day_moves<double>(close, high, low, high_pred, low_pred);
  const auto* open_moves = static_cast<const double*>(open.data());
  const auto* crypto = static_cast<const uint8_t*>(is_crypto.data());
  const auto* cost = static_cast<const double*>(unit_cost.data());
  int64_t* x = best_x.mutable_data();
  int64_t* z = best_z.mutable_data();
  {
    py::gil_scoped_release release;
    totowalk::clean_always_on_fit(moves, open_moves, crypto, cost, sims, days, grid_values,
                                  grid_size, optimistic, x, z, threads);
  }
  return py::make_tuple(best_x, best_z);
}

// Philox4x32 of n counters given as four C-contiguous int64 arrays of one length; see philox.h.
py::tuple philox4x32(const py::array& c0, const py::array& c1, const py::array& c2, const py::array& c3,
                     uint32_t k0, uint32_t k1, int rounds, int threads) {
  const int64_t n = c0.ndim() == 1 ? c0.shape(0) : -1;
  for (const auto* arr : {&c0, &c1, &c2, &c3}) {
    const bool ok = arr->ndim() == 1 && arr->shape(0) == n && arr->dtype().kind() == 'i' &&
                    arr->dtype().itemsize() == 8 && (arr->flags() & py::array::c_style);
    if (!ok) throw py::value_error("philox4x32: counters must be C-contiguous int64 (n,) arrays of one length");
  }
  if (rounds < 0) throw py::value_error("philox4x32: rounds must be >= 0");
  py::array_t<int64_t> out0(n), out1(n), out2(n), out3(n);
  {
    py::gil_scoped_release release;
    totowalk::philox4x32(static_cast<const int64_t*>(c0.data()), static_cast<const int64_t*>(c1.data()),
                         static_cast<const int64_t*>(c2.data()), static_cast<const int64_t*>(c3.data()), n, k0,
                         k1, rounds, out0.mutable_data(), out1.mutable_data(), out2.mutable_data(),
                         out3.mutable_data(), threads);
  }
  return py::make_tuple(out0, out1, out2, out3);
}

// (N, K) of four C-contiguous float64 (N, K) mixture parameter arrays of one shape, K >= 1.
std::pair<int64_t, int64_t> check_mixture(const char* function, const py::array& weights, const py::array& df,
                                          const py::array& loc, const py::array& scale) {
  const int64_t rows = weights.ndim() == 2 ? weights.shape(0) : -1;
  const int64_t comps = weights.ndim() == 2 ? weights.shape(1) : -1;
  for (const auto& [name, arr] : {std::pair<const char*, const py::array*>{"weights", &weights},
                                  {"df", &df}, {"loc", &loc}, {"scale", &scale}}) {
    const bool ok = arr->ndim() == 2 && arr->shape(0) == rows && arr->shape(1) == comps &&
                    arr->dtype().kind() == 'f' && arr->dtype().itemsize() == 8 &&
                    (arr->flags() & py::array::c_style);
    if (!ok || comps < 1) {
      throw py::value_error(totowalk::message(function, ": ", name,
                                              " must be a C-contiguous float64 (N, K) array with K >= 1 "
                                              "and the shape of weights"));
    }
  }
  return {rows, comps};
}

// Exact Student-T mixture summaries over (N, K) float64 parameters; see mixture_exact.h.
py::tuple mixture_summary(const py::array& weights, const py::array& df, const py::array& loc,
                          const py::array& scale, const py::array& levels, double tol,
                          int threads) {
  const auto [rows, comps] = check_mixture("mixture_summary", weights, df, loc, scale);
  const bool levels_ok = levels.ndim() == 1 && levels.dtype().kind() == 'f' &&
                         levels.dtype().itemsize() == 8 && (levels.flags() & py::array::c_style);
  if (!levels_ok) {
    throw py::value_error("mixture_summary: levels must be a C-contiguous float64 (J,) array");
  }
  const int64_t num_levels = levels.shape(0);
  const auto* q = static_cast<const double*>(levels.data());
  for (int64_t j = 0; j < num_levels; ++j) {
    if (!(q[j] > 0.0 && q[j] < 1.0)) {
      throw py::value_error(totowalk::message("mixture_summary: level ", j, " is not in (0, 1)"));
    }
  }
  if (!(tol > 0.0)) throw py::value_error("mixture_summary: tol must be > 0");
  py::array_t<double> mean(rows), stddev(rows), quantile({rows, num_levels}),
      partial({rows, num_levels});
  int64_t failed;
  {
    py::gil_scoped_release release;
    failed = totowalk::mixture_summary(
        static_cast<const double*>(weights.data()), static_cast<const double*>(df.data()),
        static_cast<const double*>(loc.data()), static_cast<const double*>(scale.data()), rows,
        comps, q, num_levels, tol, mean.mutable_data(), stddev.mutable_data(),
        quantile.mutable_data(), partial.mutable_data(), threads);
  }
  return py::make_tuple(mean, stddev, quantile, partial, failed);
}

// Exact CRPS, PIT and log score of Student-T mixtures against observations; see mixture_exact.h.
py::tuple mixture_scores(const py::array& weights, const py::array& df, const py::array& loc,
                         const py::array& scale, const py::array& affine_loc, const py::array& affine_scale,
                         const py::array& y, double tol, int threads) {
  const auto [rows, comps] = check_mixture("mixture_scores", weights, df, loc, scale);
  for (const auto& [name, arr] : {std::pair<const char*, const py::array*>{"affine_loc", &affine_loc},
                                  {"affine_scale", &affine_scale}, {"y", &y}}) {
    const bool ok = arr->ndim() == 1 && arr->shape(0) == rows && arr->dtype().kind() == 'f' &&
                    arr->dtype().itemsize() == 8 && (arr->flags() & py::array::c_style);
    if (!ok) {
      throw py::value_error(
          totowalk::message("mixture_scores: ", name, " must be a C-contiguous float64 (N,) array"));
    }
  }
  if (!(tol > 0.0)) throw py::value_error("mixture_scores: tol must be > 0");
  py::array_t<double> crps(rows), pit(rows), log_score(rows);
  int64_t failed;
  {
    py::gil_scoped_release release;
    failed = totowalk::mixture_scores(
        static_cast<const double*>(weights.data()), static_cast<const double*>(df.data()),
        static_cast<const double*>(loc.data()), static_cast<const double*>(scale.data()),
        static_cast<const double*>(affine_loc.data()), static_cast<const double*>(affine_scale.data()),
        static_cast<const double*>(y.data()), rows, comps, tol, crps.mutable_data(), pit.mutable_data(),
        log_score.mutable_data(), threads);
  }
  return py::make_tuple(crps, pit, log_score, failed);
}

// One Lists column's cells (None, or a list, tuple or 1-D numeric array of floats and ints) as
// items; anything else (text, a nested list, a bool) raises TypeError, and the caller leaves the
// table to pandas.
void read_list_cells(const py::handle& cells, int64_t rows, totowalk::CsvColumn& column) {
  column.offsets.reserve(static_cast<size_t>(rows) + 1);
  column.offsets.push_back(0);
  column.null_cell.reserve(static_cast<size_t>(rows));
  const auto unsupported = [](const char* what) {
    throw py::type_error(totowalk::message("csv_rows: a list cell holds ", what, ", not a number"));
  };
  const auto add = [&](PyObject* item) {
    if (PyFloat_Check(item)) {
      column.items.push_back({PyFloat_AS_DOUBLE(item), 0, false});
    } else if (PyLong_Check(item) && !PyBool_Check(item)) {
      int overflow = 0;
      const long long value = PyLong_AsLongLongAndOverflow(item, &overflow);
      if (overflow != 0) unsupported("an integer beyond int64");
      column.items.push_back({0.0, static_cast<int64_t>(value), true});
    } else {
      unsupported(Py_TYPE(item)->tp_name);
    }
  };
  const py::sequence sequence = py::reinterpret_borrow<py::sequence>(cells);
  if (static_cast<int64_t>(sequence.size()) != rows) throw py::value_error("csv_rows: a list column's length is not rows");
  for (const auto cell : sequence) {
    const bool none = cell.is_none();
    column.null_cell.push_back(none ? 1 : 0);
    if (none) {
    } else if (PyList_Check(cell.ptr()) || PyTuple_Check(cell.ptr())) {
      const py::sequence items = py::reinterpret_borrow<py::sequence>(cell);
      for (const auto item : items) add(item.ptr());
    } else if (py::isinstance<py::array>(cell)) {
      const auto arr = py::reinterpret_borrow<py::array>(cell);
      const char kind = arr.dtype().kind();
      if (arr.ndim() != 1 || (kind != 'f' && kind != 'i') || arr.dtype().itemsize() > 8) unsupported("an array");
      if (kind == 'f') {  // as float64, the floats .tolist() gives
        const auto view = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(arr);
        const double* values = view.data();
        for (py::ssize_t i = 0; i < view.shape(0); ++i) column.items.push_back({values[i], 0, false});
      } else {
        const auto view = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(arr);
        const int64_t* values = view.data();
        for (py::ssize_t i = 0; i < view.shape(0); ++i) column.items.push_back({0.0, values[i], true});
      }
    } else {
      unsupported(Py_TYPE(cell.ptr())->tp_name);
    }
    column.offsets.push_back(static_cast<int64_t>(column.items.size()));
  }
}

// CSV rows of `columns`, each (kind, values, extra): see csv_text.h for the kinds and
// totowalk/backtest/report/csv_text.py for the caller.
py::bytes csv_rows(const py::list& columns, int64_t rows, int threads) {
  if (!totowalk::csv_text_available()) throw py::type_error("csv_rows: this build cannot format floats");
  std::vector<totowalk::CsvColumn> parsed;
  std::vector<py::array> keep_alive;
  for (const auto entry : columns) {
    const auto spec = entry.cast<py::tuple>();
    const auto kind = spec[0].cast<std::string>();
    totowalk::CsvColumn column;
    const auto numeric = [&](totowalk::CsvKind k, char dtype_kind, py::ssize_t itemsize) {
      const auto arr = spec[1].cast<py::array>();
      const bool ok = arr.ndim() == 1 && arr.shape(0) == rows && arr.dtype().kind() == dtype_kind &&
                      arr.dtype().itemsize() == itemsize && arr.dtype().byteorder() != '>' &&
                      (arr.flags() & py::array::c_style);
      if (!ok) throw py::value_error(totowalk::message("csv_rows: column ", parsed.size(), " (", kind,
                                                       ") is not a C-contiguous native array of ", rows, " rows"));
      keep_alive.push_back(arr);
      column.kind = k;
      column.data = arr.data();
    };
    if (kind == "float64" || kind == "float32") {
      const bool single = kind == "float32";
      numeric(single ? totowalk::CsvKind::Float32 : totowalk::CsvKind::Float64, 'f', single ? 4 : 8);
      const auto bounds = spec[2].cast<std::pair<double, double>>();
      column.layout = {bounds.first, bounds.second};
    } else if (kind == "int64") {
      numeric(totowalk::CsvKind::Int64, 'i', 8);
    } else if (kind == "bool") {
      numeric(totowalk::CsvKind::Bool, 'u', 1);
    } else if (kind == "date") {
      numeric(totowalk::CsvKind::Date, 'i', 8);
    } else if (kind == "codes") {
      numeric(totowalk::CsvKind::Codes, 'i', 8);
      column.labels = spec[2].cast<std::vector<std::string>>();
      const auto* codes = static_cast<const int64_t*>(column.data);
      const auto count = static_cast<int64_t>(column.labels.size());
      for (int64_t r = 0; r < rows; ++r) {
        if (codes[r] < -1 || codes[r] >= count) throw py::value_error("csv_rows: a code is out of range");
      }
    } else if (kind == "lists") {
      column.kind = totowalk::CsvKind::Lists;
      read_list_cells(spec[1], rows, column);
    } else {
      throw py::value_error(totowalk::message("csv_rows: unknown column kind ", kind));
    }
    parsed.push_back(std::move(column));
  }
  std::vector<std::string> blocks;
  {
    py::gil_scoped_release release;
    blocks = totowalk::csv_rows(parsed, rows, threads);
  }
  size_t total = 0;
  for (const auto& block : blocks) total += block.size();
  PyObject* bytes = PyBytes_FromStringAndSize(nullptr, static_cast<py::ssize_t>(total));
  if (bytes == nullptr) throw py::error_already_set();
  char* cursor = PyBytes_AS_STRING(bytes);
  for (auto& block : blocks) {
    std::memcpy(cursor, block.data(), block.size());
    cursor += block.size();
    std::string().swap(block);  // freed block by block: the text is held once, not twice
  }
  return py::reinterpret_steal<py::bytes>(bytes);
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "totowalk native core: batch packing and pinned CUDA staging (no libtorch linkage)";
  m.attr("__version__") = TOTOWALK_VERSION;
#ifdef TOTOWALK_SANITIZED
  m.attr("sanitized") = true;
#else
  m.attr("sanitized") = false;
#endif
  // std::invalid_argument -> ValueError is pybind11's default; CUDA failures stay RuntimeError.
  m.def("cuda_compiled", &totowalk::cuda_compiled, "True when the module was built with CUDA.");
  m.def("cuda_device_count", &totowalk::cuda_device_count,
        "Number of usable CUDA devices (0 without a driver or device).");
  m.def("cuda_unavailable_reason", &totowalk::cuda_unavailable_reason,
        "Why no CUDA device is usable; empty when one is.");
  m.def("default_pack_threads", &totowalk::default_pack_threads,
        "Worker threads pack() uses when threads <= 0.");
  m.def("pack", &pack, py::arg("sources"), py::arg("requests"), py::arg("width"),
        py::arg("values"), py::arg("mask"), py::arg("threads") = 0,
        "Write left-zero-padded rows source[series][start:end] into values (R, width) float32 "
        "and mask (R, width) bool, in place, multithreaded with the GIL released. requests: "
        "C-contiguous int64 (R, 4) rows (series, start, end, padded_length). Raises ValueError "
        "naming the first bad request, TypeError for a source of the wrong dtype.");

  m.def("content_digests", &content_digests, py::arg("arrays"), py::arg("threads") = 0,
        "16-byte BLAKE2b digests of float32 C-contiguous arrays (values, then shape), concatenated.");
  m.def("walk_forward_digests", &walk_forward_digests, py::arg("series"), py::arg("family"),
        py::arg("length"), py::arg("threads") = 0,
        "content_digests of the (1, length[i]) contexts series[family[i]][:length[i]], in that "
        "order, hashing each series once (one running state per series, copied at each end).");
  m.def("mixture_summary", &mixture_summary, py::arg("weights"), py::arg("df"), py::arg("loc"),
        py::arg("scale"), py::arg("levels"), py::arg("tol") = 1e-10, py::arg("threads") = 0,
        "Exact Student-T mixture summaries per row of (N, K) float64 parameters: returns (mean, "
        "std, quantile (N, J), partial (N, J), failed_row) with partial = E[(Y - mean) 1{Y <= "
        "quantile}]; failed_row is -1 or the first row that could not be computed.");

  m.def("csv_rows", &csv_rows, py::arg("columns"), py::arg("rows"), py::arg("threads") = 0,
        "CSV text (bytes) of `rows` rows of columns given as (kind, values, extra) tuples, byte for "
        "byte what DataFrame.to_csv(index=False) writes for them; kinds float64 and float32 (extra: "
        "(lower, upper), where numpy writes the float positionally), int64, "
        "bool (uint8), date (int64 days, INT64_MIN missing), codes (int64 into labels, -1 missing), "
        "lists (a sequence of None or lists/arrays of numbers); rows formatted in blocks on `threads` "
        "threads (<= 0: the default). TypeError for a cell it cannot write.");
  m.def("philox4x32", &philox4x32, py::arg("c0"), py::arg("c1"), py::arg("c2"), py::arg("c3"),
        py::arg("k0"), py::arg("k1"), py::arg("rounds") = 10, py::arg("threads") = 0,
        "Philox4x32 of n counters (four int64 (n,) arrays, values in [0, 2**32)) under key (k0, k1): "
        "four int64 (n,) arrays, bit-exact with totowalk.kernels.philox.philox4x32.");
  m.def("mixture_scores", &mixture_scores, py::arg("weights"), py::arg("df"), py::arg("loc"),
        py::arg("scale"), py::arg("affine_loc"), py::arg("affine_scale"), py::arg("y"),
        py::arg("tol") = 1e-7, py::arg("threads") = 0,
        "Exact CRPS, PIT and log score of Student-T mixtures (data space affine_loc + affine_scale "
        "* Y) at observations y: returns (crps, pit, log_score, failed_row), failed_row -1 or the "
        "first row that could not be computed.");

  m.def("always_on_search", &always_on_search, py::arg("close"), py::arg("high"), py::arg("low"),
        py::arg("high_pred"), py::arg("low_pred"), py::arg("is_crypto"), py::arg("grid"),
        py::arg("fee"), py::arg("threads") = 0,
        "MaxDiffAlwaysOn grid search over (sims, days) C-contiguous float32 moves: returns "
        "(best_x, best_z, buy, sell), the first best grid indices (x-major) and that pair's daily "
        "legs, bit-identical to the torch search in totowalk.backtest.profiles.legacy.strategies.");
  m.def("maxdiff_search", &maxdiff_search, py::arg("close"), py::arg("high"), py::arg("low"),
        py::arg("high_pred"), py::arg("low_pred"), py::arg("position"), py::arg("grid"),
        py::arg("fee"), py::arg("threads") = 0,
        "MaxDiff's two sequential offset sweeps over (sims, days) C-contiguous float32 moves and "
        "positions: returns (best_x, best_z), each sweep's grid index or -1 where none beat the "
        "incumbent; bit-identical to the array search in totowalk.backtest.profiles.legacy.strategies.");
  m.def("clean_maxdiff_fit", &clean_maxdiff_fit, py::arg("close"), py::arg("open"),
        py::arg("high"), py::arg("low"), py::arg("high_pred"), py::arg("low_pred"),
        py::arg("position"), py::arg("unit_cost"), py::arg("grid"), py::arg("optimistic"),
        py::arg("threads") = 0,
        "The clean profile's walk-forward MaxDiff fits over (sims, days) C-contiguous float64 "
        "moves (adverse fill model, or the optimistic one): returns (best_x, best_z), "
        "(sims, days + 1) grid indices, -1 where none beat the incumbent; bit-identical to "
        "totowalk.backtest.profiles.clean.strategies.");
  m.def("clean_always_on_fit", &clean_always_on_fit, py::arg("close"), py::arg("open"),
        py::arg("high"), py::arg("low"), py::arg("high_pred"), py::arg("low_pred"),
        py::arg("is_crypto"), py::arg("unit_cost"), py::arg("grid"), py::arg("optimistic"),
        py::arg("threads") = 0,
        "The clean profile's walk-forward MaxDiffAlwaysOn fits over (sims, days) C-contiguous "
        "float64 moves: returns (best_x, best_z), (sims, days + 1) grid indices; bit-identical "
        "to totowalk.backtest.profiles.clean.strategies.");

  py::class_<totowalk::PinnedRing>(m, "PinnedRing",
                                   "Ring of pinned host slabs (cudaHostAlloc) on one copy "
                                   "stream; see csrc/staging.h.")
      .def(py::init<int64_t, int, int, uintptr_t, bool>(), py::arg("slab_bytes"),
           py::arg("num_slabs"), py::arg("device"), py::arg("copy_stream"),
           py::arg("enable_timing") = false)
      .def(
          "stage_pack",
          [](totowalk::PinnedRing& ring, const py::sequence& sources, const py::array& requests,
             int64_t width, uintptr_t dev_values, uintptr_t dev_mask, uintptr_t compute_stream,
             int threads) {
            if (width < 0) throw py::value_error("width must be >= 0, got " + std::to_string(width));
            BatchArgs args = parse_batch(sources, requests);
            py::gil_scoped_release release;
            return ring.stage_pack(args.sources, args.requests, args.num_requests, width,
                                   dev_values, dev_mask, compute_stream, threads);
          },
          py::arg("sources"), py::arg("requests"), py::arg("width"), py::arg("dev_values"),
          py::arg("dev_mask"), py::arg("compute_stream"), py::arg("threads") = 0,
          "Pack into a free pinned slab, copy it to dev_values (R, width) float32 and dev_mask "
          "(R, width) bool on the copy stream; compute_stream waits. Returns the slab index.")
      .def("fetch", &totowalk::PinnedRing::fetch, py::arg("dev_src"), py::arg("nbytes"),
           py::arg("compute_stream"), py::call_guard<py::gil_scoped_release>(),
           "Copy nbytes from dev_src after compute_stream's queued work into a free slab. "
           "Returns (slot, generation) for collect()/release().")
      .def("query", &totowalk::PinnedRing::query, py::arg("slot"))
      .def(
          "collect",
          [](totowalk::PinnedRing& ring, int slot, int64_t generation, py::array out) {
            if (!(out.flags() & py::array::c_style) || !out.writeable()) {
              throw py::value_error("collect: out must be a writable C-contiguous array");
            }
            void* dst = out.mutable_data();
            const auto nbytes = static_cast<int64_t>(out.nbytes());
            py::gil_scoped_release release;
            ring.collect(slot, generation, dst, nbytes);
          },
          py::arg("slot"), py::arg("generation"), py::arg("out"),
          "Wait for a fetched result and copy it into out (out.nbytes bytes); frees the slab.")
      .def("release", &totowalk::PinnedRing::release, py::arg("slot"), py::arg("generation"))
      .def("copy_ms", &totowalk::PinnedRing::copy_ms, py::arg("slot"),
           py::call_guard<py::gil_scoped_release>())
      .def("synchronize", &totowalk::PinnedRing::synchronize,
           py::call_guard<py::gil_scoped_release>())
      .def_property_readonly("slab_bytes", &totowalk::PinnedRing::slab_bytes)
      .def_property_readonly("num_slabs", &totowalk::PinnedRing::num_slabs);
}
