// CUDA runtime queries and pinned staging. Implemented in staging.cu when the
// toolkit is present, and in staging_stub.cpp (reporting "not compiled") otherwise.
#pragma once
#include <string>

namespace totowalk {

bool cuda_compiled();
// Number of usable CUDA devices; 0 when there is no driver or no device.
int cuda_device_count();
// Human-readable reason why cuda_device_count() is 0 ("" when devices exist).
std::string cuda_unavailable_reason();

}  // namespace totowalk
