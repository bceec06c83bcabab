// "2026-12-01 19:28" in local time for the listings of the subcommands.
#pragma once

#include <cstdint>
#include <ctime>
#include <string>

namespace ktstr::cmd {

// `none` when t is not a time (0 or negative: never recorded).
inline std::string local_time(int64_t t, const char* none = "-") {
  if (t <= 0) return none;
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  localtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &tm);
  return buf;
}

}  // namespace ktstr::cmd
