// Small helpers the session's files share (session*.cpp only).
#pragma once

#include "bisect/search.hpp"
#include "bisectrun/signature.hpp"

#include <chrono>
#include <cstdint>
#include <ctime>
#include <string>

namespace ktstr::bisectrun {

inline double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

inline std::string short_id(const std::string& id) { return id.size() > 12 ? id.substr(0, 12) : id; }

// "2024-05-01 12:00:00 +0000"; "" for an unknown time.
inline std::string iso_date(int64_t t) {
  if (t <= 0) return "";
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S +0000", &tm);
  return buf;
}

// A run's verdict as the search's outcome (the search inverts --fixed itself).
inline bisect::Outcome to_outcome(RunVerdict v) {
  switch (v) {
    case RunVerdict::Bad: return bisect::Outcome::Hit;
    case RunVerdict::Good: return bisect::Outcome::Miss;
    case RunVerdict::Other: return bisect::Outcome::Other;
    case RunVerdict::Skip: return bisect::Outcome::Skip;
  }
  return bisect::Outcome::Skip;
}

}  // namespace ktstr::bisectrun
