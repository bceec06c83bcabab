// Loading spec files: parsing a TOML document into its [[test]] tables
// (each read by spec_detail::TestReader, spec_reader.hpp), files, and
// directories of them.
#include "core/spec.hpp"

#include "core/fs.hpp"
#include "core/spec_reader.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <filesystem>
#include <map>

namespace ktstr {
namespace {

using spec_detail::kMaxSpecBytes;
using spec_detail::line_of;
using spec_detail::TestReader;

std::string parse_error_message(const std::string& file, const toml::parse_error& e) {
  auto pos = e.source().begin;
  return file + ":" + std::to_string(pos.line) + ":" + std::to_string(pos.column) +
         ": invalid TOML: " + std::string(e.description());
}

}  // namespace

Result<std::vector<TestSpec>> parse_spec_text(std::string_view text, const std::string& source_name) {
  toml::table doc;
  try {
    doc = toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    return fail(parse_error_message(source_name, e));
  }
  for (auto&& [k, v] : doc) {
    if (k.str() == "test") continue;
    return fail(Error(source_name + ":" + std::to_string(line_of(k)) + ": unknown top-level key '" +
                          std::string(k.str()) + "'",
                      "each test is a [[test]] table; put its keys below a [[test]] line"));
  }
  auto tests = doc.get("test");
  if (!tests)
    return fail("no tests in spec '" + source_name + "'", "add a [[test]] table with at least a name");
  auto arr = tests->as_array();
  if (!arr || !arr->is_array_of_tables())
    return fail(Error(source_name + ":" + std::to_string(line_of(*tests)) + ": 'test' must be an array of tables",
                      "write each test as [[test]], with double brackets"));
  std::vector<TestSpec> specs;
  std::map<std::string, unsigned> first_line;
  for (size_t i = 0; i < arr->size(); ++i) {
    auto spec = TestReader(source_name, *arr->get(i)->as_table(), i).read();
    if (!spec) return fail(spec.error());
    auto [it, fresh] = first_line.emplace(spec->name, spec->source_line);
    if (!fresh)
      return fail(Error(source_name + ":" + std::to_string(spec->source_line) + ": duplicate test name '" +
                            spec->name + "' (first defined at line " + std::to_string(it->second) + ")",
                        "test names must be unique within a file"));
    specs.push_back(std::move(*spec));
  }
  return specs;
}

Result<std::vector<TestSpec>> load_spec_file(const std::string& path) {
  auto text = read_file(path, kMaxSpecBytes);
  if (!text) {
    // read_file says "cannot read 'x': why"; say what was being read.
    std::string msg = text.error().msg;
    const std::string plain = "cannot read '";
    if (msg.rfind(plain, 0) == 0) msg = "cannot read spec '" + msg.substr(plain.size());
    return fail(Error(msg, text.error().hint));
  }
  return parse_spec_text(*text, path);
}

Result<std::vector<TestSpec>> load_spec_paths(const std::vector<std::string>& paths) {
  std::vector<TestSpec> out;
  for (auto& p : paths) {
    std::vector<std::string> files;
    std::error_code ec;
    if (std::filesystem::is_directory(p, ec)) {
      for (auto& e : std::filesystem::directory_iterator(p, ec))
        if (e.path().extension() == ".toml") files.push_back(e.path().string());
      std::sort(files.begin(), files.end());
      if (files.empty()) return fail("no test specs (*.toml) in '" + p + "'");
    } else {
      files.push_back(p);
    }
    for (auto& f : files) {
      auto specs = load_spec_file(f);
      if (!specs) return tl::unexpected(specs.error());
      out.insert(out.end(), specs->begin(), specs->end());
    }
  }
  return out;
}

}  // namespace ktstr
