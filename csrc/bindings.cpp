// Python bindings for totowalk._C: declarations only; the work lives in pack.cpp / staging.cu.
#include <pybind11/pybind11.h>

#include "staging.h"

namespace py = pybind11;

PYBIND11_MODULE(_C, m) {
  m.doc() = "totowalk native core: batch packing and pinned CUDA staging (no libtorch linkage)";
  m.attr("__version__") = TOTOWALK_VERSION;
  m.def("cuda_compiled", &totowalk::cuda_compiled, "True when the module was built with CUDA.");
  m.def("cuda_device_count", &totowalk::cuda_device_count,
        "Number of usable CUDA devices (0 without a driver or device).");
  m.def("cuda_unavailable_reason", &totowalk::cuda_unavailable_reason,
        "Why no CUDA device is usable; empty when one is.");
}
