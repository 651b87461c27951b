// Built when no CUDA toolkit was found: the CUDA parts report themselves unavailable.
#include <stdexcept>

#include "staging.h"

namespace totowalk {

bool cuda_compiled() { return false; }
int cuda_device_count() { return 0; }
std::string cuda_unavailable_reason() { return "totowalk._C was built without CUDA"; }

namespace {
[[noreturn]] void no_cuda() {
  throw std::runtime_error("PinnedRing: totowalk._C was built without CUDA (TOTOWALK_CUDA=OFF "
                           "or no toolkit found); use the CPU or torch-pinned staging path");
}
}  // namespace

struct PinnedRing::Impl {};

PinnedRing::PinnedRing(int64_t, int, int, uintptr_t, bool) { no_cuda(); }
PinnedRing::~PinnedRing() = default;
int PinnedRing::stage_pack(const std::vector<SourceView>&, const PackRequest*, int64_t,
                           int64_t, uintptr_t, uintptr_t, uintptr_t, int) {
  no_cuda();
}
std::pair<int, int64_t> PinnedRing::fetch(uintptr_t, int64_t, uintptr_t) { no_cuda(); }
bool PinnedRing::query(int) { no_cuda(); }
void PinnedRing::collect(int, int64_t, void*, int64_t) { no_cuda(); }
void PinnedRing::release(int, int64_t) noexcept {}
float PinnedRing::copy_ms(int) { no_cuda(); }
void PinnedRing::synchronize() { no_cuda(); }
int64_t PinnedRing::slab_bytes() const { return 0; }
int PinnedRing::num_slabs() const { return 0; }

}  // namespace totowalk
