// Error messages built by string concatenation, never by iostreams.
//
// Why: the lent H200 machines' g++ (/opt/gcc) links libstdc++ statically into _C.so (ldd lists no
// libstdc++.so), and there the first `std::ostringstream << int64_t` of an error path crashed the
// process inside the module's own copy of the ostream code instead of raising (seen under
// cuda-gdb). std::to_string and std::string need no locale, so an error message cannot take the
// process down, whichever libstdc++ the module ends up with.
#pragma once

#include <string>
#include <type_traits>

namespace totowalk {
namespace detail {

inline void append_part(std::string& out, const std::string& part) { out += part; }
inline void append_part(std::string& out, const char* part) { out += part; }
inline void append_part(std::string& out, char part) { out += part; }

template <typename Int, std::enable_if_t<std::is_integral_v<Int>, int> = 0>
void append_part(std::string& out, Int part) {
  out += std::to_string(part);
}

}  // namespace detail

// message("a batch of ", rows, " x ", width) -> "a batch of 2 x 1024".
template <typename... Parts>
std::string message(const Parts&... parts) {
  std::string out;
  (detail::append_part(out, parts), ...);
  return out;
}

}  // namespace totowalk
