// Philox4x32 block function on the host, bit-exact with python/totowalk/kernels/philox.py (and so
// with Triton's tl.philox): the same counters, keys and rounds give the same four 32-bit words.
#pragma once

#include <cstdint>

namespace totowalk {

// n counters (c0, c1, c2, c3 as int64 holding values in [0, 2**32)), key (k0, k1), `rounds`
// rounds; writes the four output words (int64, values in [0, 2**32)) to out0..out3.
void philox4x32(const int64_t* c0, const int64_t* c1, const int64_t* c2, const int64_t* c3, int64_t n,
                uint32_t k0, uint32_t k1, int rounds, int64_t* out0, int64_t* out1, int64_t* out2,
                int64_t* out3, int threads);

}  // namespace totowalk
