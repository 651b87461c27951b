// Left-zero-padded batch packing (see pack.h).
#include "pack.h"

#include "message.h"
#include "parallel.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <thread>

namespace totowalk {
namespace {

// Below this many output bytes per thread, starting a thread costs more than it saves.
constexpr int64_t kMinBytesPerThread = 256 * 1024;
constexpr int kMaxDefaultThreads = 8;

[[noreturn]] void fail_request(int64_t index, const std::string& what) {
  throw std::invalid_argument(message("request ", index, ": ", what));
}

// Copies n values of type T from a possibly strided, possibly unaligned source into dst,
// converting to float32 with the same round-to-nearest cast numpy's astype uses.
template <typename T>
void load_row(const char* src, int64_t stride_bytes, int64_t n, float* dst) {
  if (stride_bytes == static_cast<int64_t>(sizeof(T))) {
    if constexpr (sizeof(T) == sizeof(float)) {
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
    } else {
      for (int64_t i = 0; i < n; ++i) {
        T v;
        std::memcpy(&v, src + i * static_cast<int64_t>(sizeof(T)), sizeof(T));
        dst[i] = static_cast<float>(v);
      }
    }
    return;
  }
  for (int64_t i = 0; i < n; ++i) {
    T v;
    std::memcpy(&v, src + i * stride_bytes, sizeof(T));
    dst[i] = static_cast<float>(v);
  }
}

void pack_rows(const std::vector<SourceView>& sources, const PackRequest* requests,
               int64_t row_begin, int64_t row_end, int64_t width, float* values,
               uint8_t* mask) {
  for (int64_t r = row_begin; r < row_end; ++r) {
    const PackRequest& req = requests[r];
    const SourceView& src = sources[static_cast<size_t>(req.series)];
    const int64_t n = req.end - req.start;
    const int64_t pad = width - n;
    float* row_values = values + r * width;
    uint8_t* row_mask = mask + r * width;
    // All-zero bytes are +0.0f, so memset gives the same bytes as numpy's zeros.
    std::memset(row_values, 0, static_cast<size_t>(pad) * sizeof(float));
    std::memset(row_mask, 0, static_cast<size_t>(pad));
    std::memset(row_mask + pad, 1, static_cast<size_t>(n));
    if (n == 0) continue;
    const char* first = src.data + req.start * src.stride_bytes;
    if (src.dtype == SourceDtype::kFloat32) {
      load_row<float>(first, src.stride_bytes, n, row_values + pad);
    } else {
      load_row<double>(first, src.stride_bytes, n, row_values + pad);
    }
  }
}

}  // namespace

int default_pack_threads() {
  const unsigned hw = std::thread::hardware_concurrency();
  return static_cast<int>(std::clamp<unsigned>(hw, 1u, kMaxDefaultThreads));
}

void validate_requests(const std::vector<SourceView>& sources, const PackRequest* requests,
                       int64_t num_requests, int64_t width) {
  const int64_t num_sources = static_cast<int64_t>(sources.size());
  for (int64_t i = 0; i < num_requests; ++i) {
    const PackRequest& req = requests[i];
    if (req.series < 0 || req.series >= num_sources) {
      fail_request(i, message("series ", req.series, " is out of range (have ", num_sources,
                              " sources)"));
    }
    const int64_t length = sources[static_cast<size_t>(req.series)].length;
    if (req.end < 0 || req.end > length) {
      fail_request(i, message("end ", req.end, " is out of range for series ", req.series,
                              " of length ", length));
    }
    if (req.start < 0 || req.start > req.end) {
      fail_request(i, message("start ", req.start, " must be in [0, end=", req.end, "]"));
    }
    const int64_t n = req.end - req.start;
    if (req.padded_length < n) {
      fail_request(i, message("padded_length ", req.padded_length,
                              " is shorter than its window of ", n, " values"));
    }
    if (req.padded_length > width) {
      fail_request(i, message("padded_length ", req.padded_length, " exceeds the batch width ",
                              width));
    }
  }
}

void pack_batch(const std::vector<SourceView>& sources, const PackRequest* requests,
                int64_t num_requests, int64_t width, float* values, uint8_t* mask,
                int threads) {
  if (num_requests <= 0 || width <= 0) return;
  if (threads <= 0) threads = default_pack_threads();
  const int64_t total_bytes = num_requests * width * static_cast<int64_t>(sizeof(float) + 1);
  const int64_t by_size = std::max<int64_t>(1, total_bytes / kMinBytesPerThread);
  const int64_t workers = std::min<int64_t>({static_cast<int64_t>(threads), by_size, num_requests});
  // Contiguous row blocks: each worker writes its own rows.
  parallel_blocks(num_requests, workers, [&](int64_t begin, int64_t end) {
    pack_rows(sources, requests, begin, end, width, values, mask);
  });
}

}  // namespace totowalk
