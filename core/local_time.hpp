// What the listings of the subcommands share: local times ("2026-12-01 19:28")
// and left-aligned columns.
#pragma once

#include <cstdint>
#include <ctime>
#include <algorithm>
#include <string>
#include <vector>

namespace ktstr {

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

// Rows as columns two spaces apart, each as wide as its widest cell (the
// last column unpadded); the first row is the header.
inline std::string render_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& r : rows) {
    if (width.size() < r.size()) width.resize(r.size(), 0);
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  std::string out;
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size(); ++i) {
      out += r[i];
      if (i + 1 < r.size()) out += std::string(width[i] - r[i].size() + 2, ' ');
    }
    out += "\n";
  }
  return out;
}

}  // namespace ktstr
