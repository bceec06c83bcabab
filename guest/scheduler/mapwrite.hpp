// ktstr_mapwrite: write a global variable of a loaded BPF program (any
// scheduler, not only scx-ktstr) from inside the guest, found by the map's
// name suffix (".bss", ".data", "scx_ktst.bss") and the variable's name in the
// map's BTF DATASEC. The pure parts (BTF lookup, byte patching, value parsing)
// are separate so they can be tested without a kernel.
#pragma once

#include "core/result.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

struct btf;

namespace ktstr::mapwrite {

// One variable of a DATASEC: where its bytes sit in the map value.
struct VarSlot {
  std::string name;
  uint32_t offset = 0;
  uint32_t size = 0;
};

// The variables of the DATASEC type `datasec_id` in `btf`, in section order.
Result<std::vector<VarSlot>> datasec_vars(const struct btf* btf, uint32_t datasec_id);

// The DATASEC named `section` (".bss", ".data", ".rodata") in `btf`.
Result<uint32_t> find_datasec(const struct btf* btf, std::string_view section);

// `var` in `vars`; the error names `map_name` and hints at the variables there.
Result<VarSlot> find_var(const std::vector<VarSlot>& vars, std::string_view var,
                         std::string_view map_name);

// "1", "-3", "0x1f", "true", "false".
Result<int64_t> parse_value(std::string_view text);

// Store `value` little-endian into the `slot.size` bytes at `slot.offset` of
// `bytes`; fails when the slot is out of range or the value does not fit.
Status patch_bytes(std::span<uint8_t> bytes, const VarSlot& slot, int64_t value);

// The slot's current bytes as an unsigned little-endian number.
uint64_t read_bytes(std::span<const uint8_t> bytes, const VarSlot& slot);

// What write_map_var did, for the caller to report.
struct MapWrite {
  std::string map_name;
  uint32_t map_id = 0;
  VarSlot slot;
  uint64_t old_value = 0;
  bool via_mmap = false;
};

// Find the loaded map whose name ends with `map_suffix` and holds `var`, and
// write `value` into it. Needs CAP_SYS_ADMIN (root in the guest).
Result<MapWrite> write_map_var(std::string_view map_suffix, std::string_view var, int64_t value);

}  // namespace ktstr::mapwrite
