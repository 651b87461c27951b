// Contiguous-block parallel loop on plain std::threads (no OpenMP: the wheel links nothing extra).
#pragma once

#include <algorithm>
#include <cstdint>
#include <system_error>
#include <thread>
#include <vector>

namespace totowalk {

// Calls body(begin, end) on up to `workers` disjoint blocks covering [0, n); the caller runs the
// first block. If the system refuses a thread, the caller also runs the blocks left over, so the
// work always completes. Bodies must write disjoint outputs (no synchronisation here).
template <typename Body>
void parallel_blocks(int64_t n, int64_t workers, const Body& body) {
  if (n <= 0) return;
  workers = std::clamp<int64_t>(workers, 1, n);
  if (workers == 1) {
    body(int64_t{0}, n);
    return;
  }
  std::vector<std::thread> pool;
  pool.reserve(static_cast<size_t>(workers - 1));
  const int64_t per_worker = (n + workers - 1) / workers;
  int64_t caller_tail = n;  // blocks from here on fall back to the calling thread
  for (int64_t w = 1; w < workers; ++w) {
    const int64_t begin = w * per_worker;
    const int64_t end = std::min(n, begin + per_worker);
    if (begin >= end) break;
    try {
      pool.emplace_back([&body, begin, end] { body(begin, end); });
    } catch (const std::system_error&) {  // out of threads: finish the work here instead
      caller_tail = begin;
      break;
    }
  }
  body(int64_t{0}, std::min(n, per_worker));
  if (caller_tail < n) body(caller_tail, n);
  for (auto& t : pool) t.join();
}

}  // namespace totowalk
