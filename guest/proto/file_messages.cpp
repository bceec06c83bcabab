// The FILE payload and its limits (file_messages.hpp).
#include "guest/proto/file_messages.hpp"

#include "core/base64.hpp"
#include "core/sha256.hpp"
#include "guest/proto/json_fields.hpp"

#include <algorithm>
#include <set>
#include <stdexcept>

namespace ktstr::proto {

using nlohmann::json;

using detail::get_field;
using detail::get_unsigned;

void to_json(json& j, const FileMsg& v) {
  j = {{"path", v.path},     {"mode", v.mode},     {"size", v.size},
       {"sha256", v.sha256}, {"offset", v.offset}, {"data", base64_encode(v.data)}};
}

void from_json(const json& j, FileMsg& v) {
  get_field(j, "path", v.path);
  get_unsigned(j, "mode", v.mode);
  get_unsigned(j, "size", v.size);
  get_field(j, "sha256", v.sha256);
  get_unsigned(j, "offset", v.offset);
  std::string text;
  get_field(j, "data", text);
  if (text.size() > (kFileChunkBytes + 2) / 3 * 4)
    throw std::runtime_error("field 'data' is longer than one chunk");
  auto bytes = base64_decode(text);
  if (!bytes) throw std::runtime_error("field 'data' is not base64");
  v.data = std::move(*bytes);
}

namespace {

std::string quoted(const std::string& path) {
  // A path from the wire may hold anything: show at most 200 bytes of it.
  std::string shown = path.size() > 200 ? path.substr(0, 200) + "..." : path;
  for (char& c : shown)
    if (c < 0x20 || c > 0x7e) c = '?';
  return "'" + shown + "'";
}

bool is_lib_dir(std::string_view c) { return c == "lib" || c == "lib32" || c == "lib64" || c == "libx32"; }

}  // namespace

Status validate_file_path(const std::string& path) {
  const std::string hint = "a file sent to the guest must lie under /sched/, /verifier/, /lib*/ or /usr/lib*/, "
                           "or be /bin/scx-<name>";
  if (path.empty() || path[0] != '/') return fail("file path " + quoted(path) + " is not absolute", hint);
  if (path.size() > kMaxFilePathLen) return fail("file path " + quoted(path) + " is too long");
  for (char c : path)
    if (c <= 0x20 || c > 0x7e) return fail("file path " + quoted(path) + " holds a space or a control character");
  std::vector<std::string_view> parts;
  std::string_view rest(path);
  rest.remove_prefix(1);
  for (;;) {
    size_t slash = rest.find('/');
    std::string_view c = rest.substr(0, slash);
    if (c.empty() || c == "." || c == "..")
      return fail("file path " + quoted(path) + " is not normalized (empty, '.' or '..' component)", hint);
    if (c.size() > 255) return fail("file path " + quoted(path) + " has a component longer than 255 bytes");
    parts.push_back(c);
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  bool allowed = false;
  if (parts.size() >= 2 && (parts[0] == "sched" || parts[0] == "verifier" || is_lib_dir(parts[0]))) allowed = true;
  if (parts.size() >= 3 && parts[0] == "usr" && is_lib_dir(parts[1])) allowed = true;
  if (parts.size() == 2 && parts[0] == "bin" && parts[1].size() > 4 && parts[1].substr(0, 4) == "scx-") allowed = true;
  if (!allowed) return fail("file path " + quoted(path) + " is outside the allowed directories", hint);
  return {};
}

Status validate_file_msg(const FileMsg& m) {
  if (auto p = validate_file_path(m.path); !p) return p;
  if ((m.mode & ~0777u) != 0)
    return fail("file " + quoted(m.path) + ": mode " + std::to_string(m.mode) + " has bits beyond rwxrwxrwx");
  if (m.size > kMaxFileBytes)
    return fail("file " + quoted(m.path) + " is " + std::to_string(m.size) + " bytes, more than the " +
                std::to_string(kMaxFileBytes >> 20) + " MiB a file may have");
  if (m.sha256.size() != 64 || m.sha256.find_first_not_of("0123456789abcdef") != std::string::npos)
    return fail("file " + quoted(m.path) + ": sha256 is not 64 lowercase hex digits");
  if (m.data.size() > kFileChunkBytes)
    return fail("file " + quoted(m.path) + ": a chunk of " + std::to_string(m.data.size()) + " bytes, more than " +
                std::to_string(kFileChunkBytes));
  if (m.offset > m.size || m.data.size() > m.size - m.offset)
    return fail("file " + quoted(m.path) + ": chunk at " + std::to_string(m.offset) + " of " +
                std::to_string(m.data.size()) + " bytes runs past its size " + std::to_string(m.size));
  if (m.data.empty() && m.size > 0)
    return fail("file " + quoted(m.path) + ": empty chunk at " + std::to_string(m.offset));
  return {};
}

Status validate_file_set(const std::vector<FileSetEntry>& files) {
  if (files.size() > kMaxFiles)
    return fail(std::to_string(files.size()) + " files to send to the guest, more than " + std::to_string(kMaxFiles));
  std::set<std::string> seen;
  uint64_t total = 0;
  for (const FileSetEntry& f : files) {
    if (auto p = validate_file_path(f.path); !p) return p;
    if (!seen.insert(f.path).second) return fail("file " + quoted(f.path) + " is sent twice");
    if (f.size > kMaxFileBytes)
      return fail("file " + quoted(f.path) + " is " + std::to_string(f.size) + " bytes, more than the " +
                      std::to_string(kMaxFileBytes >> 20) + " MiB a VM takes per file",
                  "strip the binary (strip --strip-debug) to make it smaller");
    total += f.size;
  }
  if (total > kMaxFilesTotalBytes)
    return fail("the files for the guest are " + std::to_string(total) + " bytes in all, more than the " +
                    std::to_string(kMaxFilesTotalBytes >> 20) + " MiB a VM takes",
                "strip the scheduler binary (strip --strip-debug) to make it smaller");
  return {};
}

std::string encode_file_frames(const std::string& path, uint32_t mode, std::string_view content) {
  FileMsg m;
  m.path = path;
  m.mode = mode;
  m.size = content.size();
  m.sha256 = sha256_hex_portable(content);
  std::string out;
  size_t offset = 0;
  do {
    size_t n = std::min(kFileChunkBytes, content.size() - offset);
    m.offset = offset;
    m.data.assign(content.substr(offset, n));
    out += encode_message(m);
    offset += n;
  } while (offset < content.size());
  return out;
}

}  // namespace ktstr::proto
