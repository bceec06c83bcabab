// Which shared libraries an ELF binary loads: read PT_INTERP and DT_NEEDED
// with libelf, then resolve names the way ld.so does for the common cases
// (RUNPATH/RPATH, then the multiarch and plain library directories).
#include "guest/initramfs/initramfs.hpp"

#include "core/fs.hpp"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <cstring>
#include <deque>
#include <set>

namespace ktstr {
namespace {

struct ElfInfo {
  std::string interp;
  std::vector<std::string> needed;
  std::vector<std::string> search_dirs;  // from RUNPATH/RPATH
};

std::vector<std::string> split_colon(const std::string& s) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t end = s.find(':', pos);
    if (end == std::string::npos) end = s.size();
    if (end > pos) out.push_back(s.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

Result<ElfInfo> read_elf_info(const std::string& path) {
  if (elf_version(EV_CURRENT) == EV_NONE) return fail("cannot initialize libelf");
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail("cannot open '" + path + "': " + std::strerror(errno));
  Elf* elf = elf_begin(fd, ELF_C_READ, nullptr);
  auto done = [&] {
    if (elf) elf_end(elf);
    ::close(fd);
  };
  if (!elf || elf_kind(elf) != ELF_K_ELF) {
    done();
    return fail("'" + path + "' is not an ELF file");
  }
  ElfInfo info;
  size_t phnum = 0;
  elf_getphdrnum(elf, &phnum);
  for (size_t i = 0; i < phnum; ++i) {
    GElf_Phdr ph;
    if (!gelf_getphdr(elf, static_cast<int>(i), &ph) || ph.p_type != PT_INTERP) continue;
    size_t size = 0;
    char* raw = elf_rawfile(elf, &size);
    if (raw && ph.p_offset < size && ph.p_filesz <= size - ph.p_offset)
      info.interp = std::string(raw + ph.p_offset, strnlen(raw + ph.p_offset, ph.p_filesz));
  }
  for (Elf_Scn* scn = elf_nextscn(elf, nullptr); scn; scn = elf_nextscn(elf, scn)) {
    GElf_Shdr sh;
    if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_DYNAMIC) continue;
    Elf_Data* data = elf_getdata(scn, nullptr);
    if (!data || sh.sh_entsize == 0) continue;
    size_t count = sh.sh_size / sh.sh_entsize;
    for (size_t i = 0; i < count; ++i) {
      GElf_Dyn dyn;
      if (!gelf_getdyn(data, static_cast<int>(i), &dyn)) break;
      if (dyn.d_tag != DT_NEEDED && dyn.d_tag != DT_RUNPATH && dyn.d_tag != DT_RPATH) continue;
      const char* s = elf_strptr(elf, sh.sh_link, dyn.d_un.d_val);
      if (!s) continue;
      if (dyn.d_tag == DT_NEEDED) {
        info.needed.emplace_back(s);
      } else {
        for (auto& d : split_colon(s)) info.search_dirs.push_back(d);
      }
    }
  }
  done();
  return info;
}

std::string resolve_library(const std::string& name, const std::vector<std::string>& dirs) {
  if (name.find('/') != std::string::npos) return path_exists(name) ? name : "";
  for (const auto& d : dirs) {
    std::string cand = d + "/" + name;
    if (path_exists(cand)) return cand;
  }
  return "";
}

}  // namespace

Result<std::vector<std::string>> elf_shared_libraries(const std::string& elf_path) {
  static const std::vector<std::string> kSystemDirs = {
      "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib",
      "/usr/local/lib"};
  auto top = read_elf_info(elf_path);
  if (!top) return fail(top.error());
  std::vector<std::string> out;
  std::set<std::string> seen;
  if (!top->interp.empty()) {
    out.push_back(top->interp);
    seen.insert(top->interp);
  }
  std::deque<std::pair<std::string, std::vector<std::string>>> queue;
  auto enqueue = [&](const ElfInfo& info, const std::string& owner) {
    std::vector<std::string> dirs;
    std::string origin = owner.substr(0, owner.rfind('/'));
    for (auto d : info.search_dirs) {
      if (d.rfind("$ORIGIN", 0) == 0) d = origin + d.substr(7);
      dirs.push_back(d);
    }
    dirs.insert(dirs.end(), kSystemDirs.begin(), kSystemDirs.end());
    for (const auto& n : info.needed) queue.emplace_back(n, dirs);
  };
  enqueue(*top, elf_path);
  while (!queue.empty()) {
    auto [name, dirs] = std::move(queue.front());
    queue.pop_front();
    std::string path = resolve_library(name, dirs);
    if (path.empty())
      return fail("cannot find the shared library '" + name + "' needed by '" + elf_path + "'",
                  "install it, or build the binary statically");
    if (!seen.insert(path).second) continue;
    out.push_back(path);
    auto info = read_elf_info(path);
    if (!info) return fail(info.error());
    enqueue(*info, path);
  }
  return out;
}

}  // namespace ktstr
