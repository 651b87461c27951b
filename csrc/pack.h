// Left-zero-padded batch packing: many (series, start, end) windows -> one float32 batch + mask.
// Plain C++ on raw pointers (no Python, no CUDA) so the CPU engine and the pinned CUDA ring
// share one routine.
#pragma once
#include <cstdint>
#include <vector>

namespace totowalk {

enum class SourceDtype : int { kFloat32 = 0, kFloat64 = 1 };

// A 1-D source series viewed in place: element i lives at data + i * stride_bytes.
// The stride may be negative or not a multiple of the item size (loads are unaligned-safe).
struct SourceView {
  const char* data;
  int64_t length;
  int64_t stride_bytes;
  SourceDtype dtype;
};

// One batch row: values source[series][start:end], left-zero-padded. padded_length is the
// row's own padded length (checked: end - start <= padded_length <= batch width); the row is
// left-padded to the batch width either way, so it only guards against a mis-bucketed request.
struct PackRequest {
  int64_t series;
  int64_t start;
  int64_t end;
  int64_t padded_length;
};

// Throws std::invalid_argument naming the first bad request (index, series, bounds).
void validate_requests(const std::vector<SourceView>& sources,
                       const PackRequest* requests,  // [num_requests]
                       int64_t num_requests, int64_t width);

// Writes the batch; requests must have passed validate_requests. Rows are split over
// `threads` worker threads (<= 0: default_pack_threads()); small batches run on the caller.
void pack_batch(const std::vector<SourceView>& sources,
                const PackRequest* requests,  // [num_requests]
                int64_t num_requests, int64_t width,
                float* values,   // [num_requests, width] row-major
                uint8_t* mask,   // [num_requests, width] row-major, 1 = real value
                int threads);

// Number of threads pack_batch uses by default (hardware threads, capped).
int default_pack_threads();

}  // namespace totowalk
