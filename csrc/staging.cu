// CUDA runtime queries and the pinned staging ring (see staging.h).
#include <cuda_runtime.h>

#include <cstring>
#include <mutex>
#include <stdexcept>

#include "message.h"
#include "staging.h"

namespace totowalk {

namespace {

// Offset of the mask inside a slab: keeps the mask copy's source 256-byte aligned.
constexpr int64_t kSlabAlign = 256;

int64_t align_up(int64_t n, int64_t a) { return (n + a - 1) / a * a; }

// Throws std::runtime_error naming the failed CUDA call.
void check_cuda(cudaError_t err, const char* call) {
  if (err == cudaSuccess) return;
  cudaGetLastError();  // clear a non-sticky error so the next call is not blamed for it
  throw std::runtime_error(message("totowalk staging: CUDA call ", call, " failed: ",
                                   cudaGetErrorName(err), " (", cudaGetErrorString(err), ")"));
}
#define TW_CUDA_CHECK(call) check_cuda((call), #call)

// Makes `device` current for the scope and restores the caller's device (torch keeps its own).
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    TW_CUDA_CHECK(cudaGetDevice(&previous_));
    if (previous_ != device) {
      TW_CUDA_CHECK(cudaSetDevice(device));
      restore_ = true;
    }
  }
  ~DeviceGuard() {
    if (restore_) cudaSetDevice(previous_);
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
  bool restore_ = false;
};

enum class SlabState {
  kFree,     // no copy pending: may be written now
  kCopying,  // a copy was queued: reusable once `done` has completed
  kHeld,     // holds a fetched result that collect()/release() has not taken yet
};

struct Slab {
  char* host = nullptr;
  cudaEvent_t done = nullptr;          // recorded on the copy stream after the copy
  cudaEvent_t start = nullptr;         // before the copy (timing only)
  cudaEvent_t compute_done = nullptr;  // fetch: the compute stream's queued work
  SlabState state = SlabState::kFree;
  int64_t generation = 0;
  int64_t held_bytes = 0;
};

}  // namespace

bool cuda_compiled() { return true; }

int cuda_device_count() {
  int n = 0;
  // With the static runtime this fails cleanly (no driver) instead of failing to load.
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error
    return 0;
  }
  return n;
}

std::string cuda_unavailable_reason() {
  int n = 0;
  cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    cudaGetLastError();
    return std::string("cudaGetDeviceCount: ") + cudaGetErrorString(err);
  }
  return n > 0 ? "" : "no CUDA device";
}

struct PinnedRing::Impl {
  int64_t slab_bytes = 0;
  int device = 0;
  cudaStream_t copy_stream = nullptr;
  bool timing = false;
  std::vector<Slab> slabs;
  int next = 0;
  std::mutex mutex;

  ~Impl() {
    int previous = 0;
    const bool switched = cudaGetDevice(&previous) == cudaSuccess && previous != device &&
                          cudaSetDevice(device) == cudaSuccess;
    for (Slab& s : slabs) {
      // A queued copy may still read or write the slab: wait before freeing it.
      if (s.done) cudaEventSynchronize(s.done);
      if (s.done) cudaEventDestroy(s.done);
      if (s.start) cudaEventDestroy(s.start);
      if (s.compute_done) cudaEventDestroy(s.compute_done);
      if (s.host) cudaFreeHost(s.host);
    }
    if (switched) cudaSetDevice(previous);
  }

  // Next slab not holding an uncollected result, waiting for its previous copy if needed.
  int acquire() {
    const int n = static_cast<int>(slabs.size());
    for (int k = 0; k < n; ++k) {
      const int slot = (next + k) % n;
      Slab& s = slabs[static_cast<size_t>(slot)];
      if (s.state == SlabState::kHeld) continue;
      if (s.state == SlabState::kCopying) {
        TW_CUDA_CHECK(cudaEventSynchronize(s.done));
        s.state = SlabState::kFree;
      }
      next = (slot + 1) % n;
      ++s.generation;
      return slot;
    }
    throw std::runtime_error(message("all ", n,
                                     " pinned result slabs hold results not yet collected; call "
                                     "wait() on earlier results or raise num_slabs"));
  }

  // After a failed call that may have queued a copy touching the slab: make sure the slab is
  // not reused before that copy ends.
  void mark_possibly_in_flight(Slab& s) noexcept {
    if (cudaEventRecord(s.done, copy_stream) == cudaSuccess) {
      s.state = SlabState::kCopying;
    } else {
      cudaGetLastError();
      cudaStreamSynchronize(copy_stream);
      cudaGetLastError();
      s.state = SlabState::kFree;
    }
  }

  Slab& slab_at(int slot, const char* what) {
    if (slot < 0 || slot >= static_cast<int>(slabs.size())) {
      throw std::invalid_argument(message(what, ": slot ", slot, " is out of range (ring has ",
                                          slabs.size(), " slabs)"));
    }
    return slabs[static_cast<size_t>(slot)];
  }
};

PinnedRing::PinnedRing(int64_t slab_bytes, int num_slabs, int device, uintptr_t copy_stream,
                       bool enable_timing)
    : impl_(std::make_unique<Impl>()) {
  if (slab_bytes <= 0) {
    throw std::invalid_argument("PinnedRing: slab_bytes must be > 0, got " +
                                std::to_string(slab_bytes));
  }
  if (num_slabs < 1) {
    throw std::invalid_argument("PinnedRing: num_slabs must be >= 1, got " +
                                std::to_string(num_slabs));
  }
  const int count = cuda_device_count();
  if (device < 0 || device >= count) {
    throw std::invalid_argument(message("PinnedRing: device ", device, " is out of range (",
                                        count, " CUDA devices; ", cuda_unavailable_reason(),
                                        ")"));
  }
  Impl& r = *impl_;
  r.slab_bytes = slab_bytes;
  r.device = device;
  r.copy_stream = reinterpret_cast<cudaStream_t>(copy_stream);
  r.timing = enable_timing;
  DeviceGuard guard(device);
  const unsigned event_flags = enable_timing ? cudaEventDefault : cudaEventDisableTiming;
  r.slabs.resize(static_cast<size_t>(num_slabs));
  // On a throw below, ~Impl frees whatever was already allocated.
  for (Slab& s : r.slabs) {
    TW_CUDA_CHECK(cudaHostAlloc(reinterpret_cast<void**>(&s.host),
                                static_cast<size_t>(slab_bytes), cudaHostAllocDefault));
    TW_CUDA_CHECK(cudaEventCreateWithFlags(&s.done, event_flags));
    TW_CUDA_CHECK(cudaEventCreateWithFlags(&s.compute_done, cudaEventDisableTiming));
    if (enable_timing) TW_CUDA_CHECK(cudaEventCreateWithFlags(&s.start, cudaEventDefault));
  }
}

PinnedRing::~PinnedRing() = default;

int PinnedRing::stage_pack(const std::vector<SourceView>& sources, const PackRequest* requests,
                           int64_t num_requests, int64_t width, uintptr_t dev_values,
                           uintptr_t dev_mask, uintptr_t compute_stream, int threads) {
  Impl& r = *impl_;
  std::lock_guard<std::mutex> lock(r.mutex);
  if (num_requests < 0 || width < 0) {
    throw std::invalid_argument("stage_pack: num_requests and width must be >= 0");
  }
  // Slab layout: values (float32) then mask (1 byte), each row-major [num_requests, width].
  // The first test keeps num_requests * width from overflowing before it is computed.
  const bool too_big = width > 0 && num_requests > r.slab_bytes / width;
  const int64_t cells = too_big ? 0 : num_requests * width;
  const int64_t values_bytes = cells * static_cast<int64_t>(sizeof(float));
  const int64_t mask_offset = align_up(values_bytes, kSlabAlign);
  if (too_big || mask_offset + cells > r.slab_bytes) {
    throw std::invalid_argument(message("stage_pack: a batch of ", num_requests, " x ", width,
                                        " needs more pinned staging than a slab holds (",
                                        r.slab_bytes,
                                        " bytes); raise slab_bytes or split the batch"));
  }
  validate_requests(sources, requests, num_requests, width);
  if (cells > 0 && (dev_values == 0 || dev_mask == 0)) {
    throw std::invalid_argument("stage_pack: dev_values and dev_mask must be device pointers");
  }
  DeviceGuard guard(r.device);
  const int slot = r.acquire();
  Slab& s = r.slabs[static_cast<size_t>(slot)];
  pack_batch(sources, requests, num_requests, width, reinterpret_cast<float*>(s.host),
             reinterpret_cast<uint8_t*>(s.host + mask_offset), threads);
  auto compute = reinterpret_cast<cudaStream_t>(compute_stream);
  try {
    if (r.timing) TW_CUDA_CHECK(cudaEventRecord(s.start, r.copy_stream));
    if (cells > 0) {
      TW_CUDA_CHECK(cudaMemcpyAsync(reinterpret_cast<void*>(dev_values), s.host,
                                    static_cast<size_t>(values_bytes), cudaMemcpyHostToDevice,
                                    r.copy_stream));
      TW_CUDA_CHECK(cudaMemcpyAsync(reinterpret_cast<void*>(dev_mask), s.host + mask_offset,
                                    static_cast<size_t>(cells), cudaMemcpyHostToDevice,
                                    r.copy_stream));
    }
    TW_CUDA_CHECK(cudaEventRecord(s.done, r.copy_stream));
  } catch (...) {
    r.mark_possibly_in_flight(s);
    throw;
  }
  s.state = SlabState::kCopying;
  TW_CUDA_CHECK(cudaStreamWaitEvent(compute, s.done, 0));
  return slot;
}

std::pair<int, int64_t> PinnedRing::fetch(uintptr_t dev_src, int64_t nbytes,
                                          uintptr_t compute_stream) {
  Impl& r = *impl_;
  std::lock_guard<std::mutex> lock(r.mutex);
  if (nbytes < 0 || nbytes > r.slab_bytes) {
    throw std::invalid_argument(message("fetch: a result of ", nbytes,
                                        " bytes does not fit a pinned result slab of ",
                                        r.slab_bytes, " bytes; raise result_slab_bytes"));
  }
  if (nbytes > 0 && dev_src == 0) throw std::invalid_argument("fetch: dev_src is a null pointer");
  DeviceGuard guard(r.device);
  const int slot = r.acquire();
  Slab& s = r.slabs[static_cast<size_t>(slot)];
  auto compute = reinterpret_cast<cudaStream_t>(compute_stream);
  try {
    // The result is ready only after the compute stream's queued kernels.
    TW_CUDA_CHECK(cudaEventRecord(s.compute_done, compute));
    TW_CUDA_CHECK(cudaStreamWaitEvent(r.copy_stream, s.compute_done, 0));
    if (r.timing) TW_CUDA_CHECK(cudaEventRecord(s.start, r.copy_stream));
    if (nbytes > 0) {
      TW_CUDA_CHECK(cudaMemcpyAsync(s.host, reinterpret_cast<const void*>(dev_src),
                                    static_cast<size_t>(nbytes), cudaMemcpyDeviceToHost,
                                    r.copy_stream));
    }
    TW_CUDA_CHECK(cudaEventRecord(s.done, r.copy_stream));
  } catch (...) {
    r.mark_possibly_in_flight(s);
    throw;
  }
  s.state = SlabState::kHeld;
  s.held_bytes = nbytes;
  return {slot, s.generation};
}

bool PinnedRing::query(int slot) {
  Impl& r = *impl_;
  std::lock_guard<std::mutex> lock(r.mutex);
  Slab& s = r.slab_at(slot, "query");
  DeviceGuard guard(r.device);
  const cudaError_t err = cudaEventQuery(s.done);
  if (err == cudaErrorNotReady) {
    cudaGetLastError();
    return false;
  }
  TW_CUDA_CHECK(err);
  return true;
}

void PinnedRing::collect(int slot, int64_t generation, void* host_dst, int64_t nbytes) {
  Impl& r = *impl_;
  std::lock_guard<std::mutex> lock(r.mutex);
  Slab& s = r.slab_at(slot, "collect");
  if (s.state != SlabState::kHeld || s.generation != generation) {
    throw std::runtime_error(message("collect: the result fetched into slab ", slot,
                                     " (generation ", generation,
                                     ") was already collected or released"));
  }
  if (nbytes != s.held_bytes) {
    throw std::invalid_argument(message("collect: out holds ", nbytes,
                                        " bytes but the fetched result has ", s.held_bytes));
  }
  DeviceGuard guard(r.device);
  TW_CUDA_CHECK(cudaEventSynchronize(s.done));
  if (nbytes > 0) std::memcpy(host_dst, s.host, static_cast<size_t>(nbytes));
  s.state = SlabState::kFree;
}

void PinnedRing::release(int slot, int64_t generation) noexcept {
  Impl& r = *impl_;
  std::lock_guard<std::mutex> lock(r.mutex);
  if (slot < 0 || slot >= static_cast<int>(r.slabs.size())) return;
  Slab& s = r.slabs[static_cast<size_t>(slot)];
  // The copy may still be running: acquire() waits on its event before reuse.
  if (s.state == SlabState::kHeld && s.generation == generation) s.state = SlabState::kCopying;
}

float PinnedRing::copy_ms(int slot) {
  Impl& r = *impl_;
  std::lock_guard<std::mutex> lock(r.mutex);
  Slab& s = r.slab_at(slot, "copy_ms");
  if (!r.timing) {
    throw std::invalid_argument("copy_ms: the ring was built without enable_timing");
  }
  DeviceGuard guard(r.device);
  TW_CUDA_CHECK(cudaEventSynchronize(s.done));
  float ms = 0.0f;
  TW_CUDA_CHECK(cudaEventElapsedTime(&ms, s.start, s.done));
  return ms;
}

void PinnedRing::synchronize() {
  Impl& r = *impl_;
  std::lock_guard<std::mutex> lock(r.mutex);
  DeviceGuard guard(r.device);
  for (Slab& s : r.slabs) {
    TW_CUDA_CHECK(cudaEventSynchronize(s.done));
    if (s.state == SlabState::kCopying) s.state = SlabState::kFree;
  }
}

int64_t PinnedRing::slab_bytes() const { return impl_->slab_bytes; }
int PinnedRing::num_slabs() const { return static_cast<int>(impl_->slabs.size()); }

}  // namespace totowalk
