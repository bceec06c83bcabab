// BPF objects inside files: header checks and the embedded-object scan.
#include "core/bpf_elf.hpp"

#include <elf.h>

#include <algorithm>
#include <cstring>

namespace ktstr {
namespace {

constexpr std::string_view kElfMagic{"\x7f" "ELF", 4};

template <typename T>
T read_at(std::string_view bytes, size_t off) {
  T v;
  std::memcpy(&v, bytes.data() + off, sizeof(T));
  return v;
}

// The size of the BPF object starting at `bytes[0]` (its last header,
// section or section table byte), or 0 when it is not a well-formed one.
size_t bpf_object_size(std::string_view bytes) {
  if (bytes.size() < sizeof(Elf64_Ehdr) || bytes.substr(0, 4) != kElfMagic) return 0;
  auto eh = read_at<Elf64_Ehdr>(bytes, 0);
  if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB) return 0;
  if (eh.e_machine != EM_BPF || eh.e_type != ET_REL) return 0;
  if (eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_shnum == 0 || eh.e_shoff < sizeof(Elf64_Ehdr)) return 0;
  if (eh.e_shoff > bytes.size() || uint64_t(eh.e_shnum) * sizeof(Elf64_Shdr) > bytes.size() - eh.e_shoff)
    return 0;
  uint64_t end = eh.e_shoff + uint64_t(eh.e_shnum) * sizeof(Elf64_Shdr);
  for (unsigned i = 0; i < eh.e_shnum; ++i) {
    auto sh = read_at<Elf64_Shdr>(bytes, eh.e_shoff + i * sizeof(Elf64_Shdr));
    if (sh.sh_type == SHT_NOBITS || sh.sh_type == SHT_NULL) continue;
    if (sh.sh_offset > bytes.size() || sh.sh_size > bytes.size() - sh.sh_offset) return 0;
    end = std::max<uint64_t>(end, sh.sh_offset + sh.sh_size);
  }
  return size_t(end);
}

}  // namespace

Result<std::vector<BpfObjectSpan>> find_bpf_objects(std::string_view file) {
  if (file.substr(0, 4) != kElfMagic)
    return fail("not an ELF file", "give a BPF object (.bpf.o) or a scheduler binary with an embedded skeleton");
  std::vector<BpfObjectSpan> found;
  if (size_t size = bpf_object_size(file); size > 0) {
    found.push_back({0, size});
    return found;
  }
  if (file.size() >= sizeof(Elf64_Ehdr) && read_at<Elf64_Ehdr>(file, 0).e_machine == EM_BPF)
    return fail("a malformed BPF object (its section table is out of bounds)",
                "rebuild it; a truncated copy reads like this");
  for (size_t at = file.find(kElfMagic, 1); at != std::string_view::npos; at = file.find(kElfMagic, at + 1)) {
    size_t size = bpf_object_size(file.substr(at));
    if (size == 0) continue;
    found.push_back({at, size});
    at += size - 1;
  }
  if (found.empty())
    return fail("no BPF object inside",
                "give a scheduler binary built with a bpftool skeleton, or its .bpf.o");
  return found;
}

Result<std::vector<std::string>> bpf_program_sections(std::string_view object) {
  if (bpf_object_size(object) == 0) return fail("not a BPF object");
  auto eh = read_at<Elf64_Ehdr>(object, 0);
  if (eh.e_shstrndx >= eh.e_shnum) return fail("a BPF object without section names");
  auto strtab = read_at<Elf64_Shdr>(object, eh.e_shoff + eh.e_shstrndx * sizeof(Elf64_Shdr));
  std::string_view names = object.substr(strtab.sh_offset, strtab.sh_size);
  std::vector<std::string> out;
  for (unsigned i = 0; i < eh.e_shnum; ++i) {
    auto sh = read_at<Elf64_Shdr>(object, eh.e_shoff + i * sizeof(Elf64_Shdr));
    if (sh.sh_type != SHT_PROGBITS || !(sh.sh_flags & SHF_EXECINSTR) || sh.sh_size == 0) continue;
    if (sh.sh_name >= names.size()) return fail("a BPF object with a section name out of bounds");
    std::string_view n = names.substr(sh.sh_name);
    out.emplace_back(n.substr(0, n.find('\0')));
  }
  return out;
}

}  // namespace ktstr
