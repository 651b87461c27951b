// BLAKE2b (RFC 7693), unkeyed, for the engine's content digests of many contexts at once.
#pragma once

#include <cstddef>
#include <cstdint>

namespace totowalk {

// Streaming BLAKE2b with a digest of out_len (1..64) bytes, no key: the same bytes as Python's
// hashlib.blake2b(data, digest_size=out_len).
class Blake2b {
 public:
  explicit Blake2b(size_t out_len);
  void update(const void* data, size_t size);
  void final(uint8_t* out);

 private:
  void compress(const uint8_t* block, bool last);

  uint64_t h_[8];
  uint64_t t_[2] = {0, 0};  // bytes compressed so far (128-bit counter)
  uint8_t buffer_[128];
  size_t filled_ = 0;
  size_t out_len_;
};

}  // namespace totowalk
