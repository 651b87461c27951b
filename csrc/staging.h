// CUDA runtime queries and the pinned staging ring. Implemented in staging.cu when the
// toolkit is present, and in staging_stub.cpp (reporting "not compiled") otherwise.
// Device memory and streams come from the caller (torch) as plain integers: no libtorch here.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "pack.h"

namespace totowalk {

bool cuda_compiled();
// Number of usable CUDA devices; 0 when there is no driver or no device.
int cuda_device_count();
// Human-readable reason why cuda_device_count() is 0 ("" when devices exist).
std::string cuda_unavailable_reason();

// A ring of num_slabs pinned host slabs (cudaHostAlloc) feeding one copy stream.
//
// Host -> device (stage_pack): a batch is packed into the next slab, copied with
// cudaMemcpyAsync on the copy stream, an event is recorded after the copy and the compute
// stream waits on it. A slab is reused only after its event has completed; waiting for that
// is the only host synchronisation on this path.
// Device -> host (fetch / collect): the copy stream waits for the compute stream's queued
// work, copies into the next slab and records an event; the slab stays held until collect()
// copies the bytes out (or release() drops them), so a result is never overwritten unread.
// All methods are serialised by an internal mutex and restore the caller's current device.
class PinnedRing {
 public:
  PinnedRing(int64_t slab_bytes, int num_slabs, int device, uintptr_t copy_stream,
             bool enable_timing);
  ~PinnedRing();
  PinnedRing(const PinnedRing&) = delete;
  PinnedRing& operator=(const PinnedRing&) = delete;

  // Packs the batch into a free slab and queues its copy to dev_values / dev_mask; the
  // compute stream waits on the copy. Throws std::invalid_argument (bad request, batch larger
  // than a slab) or std::runtime_error (CUDA call failed). Returns the slab index used.
  int stage_pack(const std::vector<SourceView>& sources,
                 const PackRequest* requests,  // [num_requests]
                 int64_t num_requests, int64_t width,
                 uintptr_t dev_values,  // float32 [num_requests, width] on `device`
                 uintptr_t dev_mask,    // uint8/bool [num_requests, width] on `device`
                 uintptr_t compute_stream, int threads);

  // Queues a copy of nbytes from dev_src, after the compute stream's queued work, into a
  // free slab. Returns (slab index, generation) identifying the result for collect/release.
  std::pair<int, int64_t> fetch(uintptr_t dev_src, int64_t nbytes, uintptr_t compute_stream);
  // True once the slab's last copy has completed (never blocks).
  bool query(int slot);
  // Waits for the fetched result, copies nbytes of it to host_dst, frees the slab.
  void collect(int slot, int64_t generation, void* host_dst, int64_t nbytes);
  // Frees a fetched result's slab without reading it (a dropped PendingResult).
  void release(int slot, int64_t generation) noexcept;
  // Milliseconds the slab's last copy took (CUDA events); needs enable_timing. Waits for it.
  float copy_ms(int slot);
  // Waits until every slab's copy has completed.
  void synchronize();

  int64_t slab_bytes() const;
  int num_slabs() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace totowalk
