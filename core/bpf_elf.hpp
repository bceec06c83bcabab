// BPF objects inside files: a .bpf.o itself, or the ELF images that bpftool
// skeletons embed in a scheduler binary (found by their EM_BPF header, as
// veristat-like tools do). Pure: works on bytes, unit tested on real builds.
#pragma once

#include "core/result.hpp"

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace ktstr {

// Where one BPF ELF object sits in a file.
struct BpfObjectSpan {
  size_t offset = 0;
  size_t size = 0;
};

// Every BPF object in `file`: the file itself when it is one, else each
// ELF64 little-endian relocatable object of machine EM_BPF embedded in it
// (headers and section table within the file). Errors: not an ELF file,
// or no BPF object inside.
Result<std::vector<BpfObjectSpan>> find_bpf_objects(std::string_view file);

// The executable sections of one BPF object ("struct_ops/ktstr_enqueue",
// "struct_ops.s/ktstr_init", "tp_btf/...", ".text" when it has code),
// in section order. Errors: not a BPF object.
Result<std::vector<std::string>> bpf_program_sections(std::string_view object);

}  // namespace ktstr
