#include "kbuild/debian_pool.hpp"

#include <algorithm>
#include <cctype>
#include <sstream>

namespace ktstr::kbuild {

namespace {

std::string trim(std::string s) {
  auto blank = [](unsigned char c) { return std::isspace(c) != 0; };
  s.erase(s.begin(), std::find_if_not(s.begin(), s.end(), blank));
  s.erase(std::find_if_not(s.rbegin(), s.rend(), blank).base(), s.end());
  return s;
}

}  // namespace

std::vector<DebianDependency> parse_depends(const std::string& field) {
  std::vector<DebianDependency> out;
  std::istringstream in(field);
  for (std::string item; std::getline(in, item, ',');) {
    std::string alt = trim(item.substr(0, item.find('|')));
    if (alt.empty()) continue;
    DebianDependency d;
    size_t name_end = alt.find_first_of(" (:");
    d.package = alt.substr(0, name_end);
    size_t open = alt.find('(');
    size_t close = alt.find(')', open == std::string::npos ? 0 : open);
    if (open != std::string::npos && close != std::string::npos) {
      std::string rel = trim(alt.substr(open + 1, close - open - 1));
      if (rel.size() > 1 && rel[0] == '=' && rel[1] != '=') d.version = trim(rel.substr(1));
    }
    if (!d.package.empty()) out.push_back(std::move(d));
  }
  return out;
}

std::string source_name(const std::string& source_field) {
  std::string s = trim(source_field);
  return s.substr(0, s.find_first_of(" ("));
}

std::string pool_prefix(const std::string& source) {
  if (source.size() > 3 && source.rfind("lib", 0) == 0) return source.substr(0, 4);
  return source.substr(0, 1);
}

std::string pool_component(const std::string& filename) {
  if (filename.rfind("pool/", 0) != 0) return "";
  size_t slash = filename.find('/', 5);
  return slash == std::string::npos ? "" : filename.substr(5, slash - 5);
}

std::string pool_path(const std::string& component, const std::string& source, const std::string& package,
                      const std::string& version, const std::string& arch) {
  size_t colon = version.find(':');  // the epoch is not part of file names
  std::string file_version = colon == std::string::npos ? version : version.substr(colon + 1);
  return "pool/" + component + "/" + pool_prefix(source) + "/" + source + "/" + package + "_" + file_version + "_" +
         arch + ".deb";
}

std::vector<std::string> pool_source_candidates(const std::string& sibling_source,
                                                const std::string& dependent_source) {
  std::vector<std::string> out;
  auto add = [&](const std::string& s) {
    if (!s.empty() && std::find(out.begin(), out.end(), s) == out.end()) out.push_back(s);
  };
  add(sibling_source);
  size_t signed_at = dependent_source.find("-signed");
  if (signed_at != std::string::npos) add(dependent_source.substr(0, signed_at));
  add(dependent_source);
  return out;
}

std::string package_family(const std::string& package, const std::string& release) {
  if (release.empty() || package.size() <= release.size() ||
      package.compare(package.size() - release.size(), release.size(), release) != 0)
    return "";
  return package.substr(0, package.size() - release.size());
}

}  // namespace ktstr::kbuild
