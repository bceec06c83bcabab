// Field readers shared by the payload decoders (messages.cpp,
// probe_messages.cpp): stricter than nlohmann's get<>() about signs and ranges.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

namespace ktstr::proto::detail {

using nlohmann::json;

// nlohmann converts -1 or 2.5 to an unsigned field silently; the wire
// format does not allow that.
template <typename U>
inline void get_unsigned(const json& j, const char* key, U& out) {
  const json& v = j.at(key);
  if (!v.is_number_unsigned())
    throw std::runtime_error(std::string("field '") + key + "' must be a non-negative integer");
  uint64_t n = v.get<uint64_t>();
  if (n > std::numeric_limits<U>::max())
    throw std::runtime_error(std::string("field '") + key + "' is out of range");
  out = static_cast<U>(n);
}

template <typename S>
inline void get_signed(const json& j, const char* key, S& out) {
  const json& v = j.at(key);
  if (!v.is_number_integer())
    throw std::runtime_error(std::string("field '") + key + "' must be an integer");
  if (v.is_number_unsigned()) {
    uint64_t n = v.get<uint64_t>();
    if (n > uint64_t(std::numeric_limits<S>::max()))
      throw std::runtime_error(std::string("field '") + key + "' is out of range");
    out = static_cast<S>(n);
    return;
  }
  int64_t n = v.get<int64_t>();
  if (n < int64_t(std::numeric_limits<S>::min()) || n > int64_t(std::numeric_limits<S>::max()))
    throw std::runtime_error(std::string("field '") + key + "' is out of range");
  out = static_cast<S>(n);
}

template <typename T>
inline void get_field(const json& j, const char* key, T& out) {
  j.at(key).get_to(out);
}

template <typename T>
inline void get_optional(const json& j, const char* key, T& out) {
  if (j.contains(key) && !j.at(key).is_null()) j.at(key).get_to(out);
}

}  // namespace ktstr::proto::detail
