#include <cuda_runtime.h>

#include "staging.h"

namespace totowalk {

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

}  // namespace totowalk
