// libFuzzer target: the TOML test-spec parser (core/spec.hpp). The input is
// a spec file's text. Oracles besides ASan/UBSan: parsing never throws; an
// error names "<file>:<line>" (or the file); and a spec that loads writes
// back (spec_to_toml, what `ktstr pin` writes) to text that loads again as
// the same spec.
#include "core/spec.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

using namespace ktstr;

namespace {

void check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz_spec: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto specs = parse_spec_text(text, "fuzz.toml");
  if (!specs) {
    check(specs.error().msg.find("fuzz.toml") != std::string::npos, "error does not name the file");
    return 0;
  }
  for (TestSpec& s : *specs) {
    (void)spec_to_json(s).dump();
    (void)validate_matchers(s);
    (void)s.where();
    std::string toml = spec_to_toml(s);
    auto again = parse_spec_text(toml, "again.toml");
    if (!again) std::fprintf(stderr, "written:\n%s\nerror: %s\n", toml.c_str(), again.error().msg.c_str());
    check(again.has_value() && again->size() == 1, "spec_to_toml output does not load");
    TestSpec& t = again->front();
    t.source_file = s.source_file;
    t.source_line = s.source_line;
    if (!(t == s)) std::fprintf(stderr, "written:\n%s\n", toml.c_str());
    check(t == s, "spec_to_toml output loads as a different spec");
  }
  (void)specs_to_toml(*specs);
  return 0;
}
