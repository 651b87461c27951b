// Philox4x32 (Salmon et al., SC'11) with Triton's round constants; see philox.h.
#include "philox.h"

#include <algorithm>
#include <thread>

#include "parallel.h"

namespace totowalk {
namespace {

constexpr uint32_t kRoundA = 0xD2511F53u;
constexpr uint32_t kRoundB = 0xCD9E8D57u;
constexpr uint32_t kKeyA = 0x9E3779B9u;
constexpr uint32_t kKeyB = 0xBB67AE85u;

}  // namespace

void philox4x32(const int64_t* c0, const int64_t* c1, const int64_t* c2, const int64_t* c3, int64_t n,
                uint32_t k0, uint32_t k1, int rounds, int64_t* out0, int64_t* out1, int64_t* out2,
                int64_t* out3, int threads) {
  const int64_t workers = n < (1 << 16) ? 1
                          : threads > 0 ? threads
                                        : std::max<int64_t>(1, std::thread::hardware_concurrency());
  parallel_blocks(n, workers, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      uint32_t x0 = static_cast<uint32_t>(c0[i]), x1 = static_cast<uint32_t>(c1[i]);
      uint32_t x2 = static_cast<uint32_t>(c2[i]), x3 = static_cast<uint32_t>(c3[i]);
      uint32_t key0 = k0, key1 = k1;
      for (int r = 0; r < rounds; ++r) {
        const uint64_t b = static_cast<uint64_t>(kRoundB) * x2;
        const uint64_t a = static_cast<uint64_t>(kRoundA) * x0;
        const uint32_t next0 = static_cast<uint32_t>(b >> 32) ^ x1 ^ key0;
        const uint32_t next2 = static_cast<uint32_t>(a >> 32) ^ x3 ^ key1;
        x1 = static_cast<uint32_t>(b);
        x3 = static_cast<uint32_t>(a);
        x0 = next0;
        x2 = next2;
        key0 += kKeyA;
        key1 += kKeyB;
      }
      out0[i] = x0;
      out1[i] = x1;
      out2[i] = x2;
      out3[i] = x3;
    }
  });
}

}  // namespace totowalk
