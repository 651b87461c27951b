// Built when no CUDA toolkit was found: the CUDA parts report themselves unavailable.
#include "staging.h"

namespace totowalk {

bool cuda_compiled() { return false; }
int cuda_device_count() { return 0; }
std::string cuda_unavailable_reason() { return "totowalk._C was built without CUDA"; }

}  // namespace totowalk
