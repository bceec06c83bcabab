#include "core/build_log.hpp"

#include "core/text.hpp"

#include <algorithm>
#include <cctype>
#include <vector>

namespace ktstr {
namespace {

constexpr size_t kLineChars = 300;

bool reports_error(std::string_view line) {
  std::string l(line);
  std::transform(l.begin(), l.end(), l.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return l.find("error") != std::string::npos || l.find("fatal:") != std::string::npos ||
         l.find("*** ") != std::string::npos;
}

}  // namespace

std::string build_error_excerpt(std::string_view log, size_t max_lines) {
  std::vector<std::string> lines, errors;
  for (std::string_view view : split_lines(log)) {
    if (trim_view(view).empty()) continue;
    std::string line(view.size() > kLineChars ? view.substr(0, kLineChars) : view);
    if (view.size() > kLineChars) line += "...";
    if (errors.size() < max_lines && reports_error(view)) errors.push_back(line);
    lines.push_back(std::move(line));
  }
  if (errors.empty())
    errors.assign(lines.end() - static_cast<long>(std::min(lines.size(), max_lines)), lines.end());
  std::string out;
  for (const std::string& l : errors) out += l + "\n";
  return out;
}

}  // namespace ktstr
