// ktstr_mapwrite: find a BPF global variable by map-name suffix and BTF, patch it.
#include "guest/scheduler/mapwrite.hpp"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <linux/bpf.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <memory>

namespace ktstr::mapwrite {
namespace {

std::string join(const std::vector<std::string>& names, size_t max_names = 24) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < max_names; ++i) {
    if (i) out += ", ";
    out += names[i];
  }
  if (names.size() > max_names) out += ", ...";
  return out;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  Fd(Fd&& o) noexcept : fd(o.fd) { o.fd = -1; }
  Fd(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

struct BtfDeleter {
  void operator()(struct btf* b) const { btf__free(b); }
};
using BtfPtr = std::unique_ptr<struct btf, BtfDeleter>;

// A loaded map whose name matched the suffix.
struct Candidate {
  Fd fd;
  bpf_map_info info;
};

std::string errno_text(int err) { return std::strerror(err < 0 ? -err : err); }

}  // namespace

Result<std::vector<VarSlot>> datasec_vars(const struct btf* btf, uint32_t datasec_id) {
  const struct btf_type* sec = btf__type_by_id(btf, datasec_id);
  if (!sec || !btf_is_datasec(sec))
    return fail("BTF type " + std::to_string(datasec_id) + " is not a DATASEC");
  std::vector<VarSlot> vars;
  const struct btf_var_secinfo* info = btf_var_secinfos(sec);
  for (uint16_t i = 0; i < btf_vlen(sec); ++i, ++info) {
    const struct btf_type* var = btf__type_by_id(btf, info->type);
    if (!var) continue;
    vars.push_back({btf__name_by_offset(btf, var->name_off), info->offset, info->size});
  }
  return vars;
}

Result<uint32_t> find_datasec(const struct btf* btf, std::string_view section) {
  for (uint32_t id = 1; id < btf__type_cnt(btf); ++id) {
    const struct btf_type* t = btf__type_by_id(btf, id);
    if (btf_is_datasec(t) && btf__name_by_offset(btf, t->name_off) == section) return id;
  }
  return fail("no DATASEC '" + std::string(section) + "' in BTF");
}

Result<VarSlot> find_var(const std::vector<VarSlot>& vars, std::string_view var,
                         std::string_view map_name) {
  std::vector<std::string> names;
  for (const VarSlot& slot : vars) {
    if (slot.name == var) return slot;
    names.push_back(slot.name);
  }
  return fail("variable '" + std::string(var) + "' not found in map '" + std::string(map_name) + "'",
              names.empty() ? "the map has no variables"
                            : "variables in '" + std::string(map_name) + "': " + join(names));
}

Result<int64_t> parse_value(std::string_view text) {
  if (text == "true") return 1;
  if (text == "false") return 0;
  std::string_view digits = text;
  bool negative = false;
  if (!digits.empty() && digits.front() == '-') {
    negative = true;
    digits.remove_prefix(1);
  }
  int base = 10;
  if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X')) {
    base = 16;
    digits.remove_prefix(2);
  }
  uint64_t magnitude = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), magnitude, base);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size())
    return fail("invalid value '" + std::string(text) + "'",
                "use a decimal or 0x-prefixed number, or true/false");
  if (negative) {
    if (magnitude > uint64_t(INT64_MAX) + 1)
      return fail("value '" + std::string(text) + "' is out of range");
    return int64_t(0 - magnitude);
  }
  // Large unsigned values keep their bit pattern (e.g. 0xffffffffffffffff).
  return int64_t(magnitude);
}

Status patch_bytes(std::span<uint8_t> bytes, const VarSlot& slot, int64_t value) {
  if (slot.size == 0 || slot.size > 8)
    return fail("variable '" + slot.name + "' has size " + std::to_string(slot.size),
                "only integers and bools of 1 to 8 bytes can be written");
  if (uint64_t(slot.offset) + slot.size > bytes.size())
    return fail("variable '" + slot.name + "' lies outside the map value (offset " +
                std::to_string(slot.offset) + ", size " + std::to_string(slot.size) + ", value " +
                std::to_string(bytes.size()) + " bytes)");
  if (slot.size < 8) {
    // Accept the value if it fits either as signed or as unsigned.
    const int bits = int(slot.size) * 8;
    const int64_t min_signed = -(int64_t(1) << (bits - 1));
    const int64_t max_unsigned = (int64_t(1) << bits) - 1;
    if (value < min_signed || value > max_unsigned)
      return fail("value " + std::to_string(value) + " does not fit variable '" + slot.name +
                  "' (" + std::to_string(slot.size) + " bytes)");
  }
  uint64_t bits = uint64_t(value);
  for (uint32_t i = 0; i < slot.size; ++i) bytes[slot.offset + i] = uint8_t(bits >> (8 * i));
  return {};
}

uint64_t read_bytes(std::span<const uint8_t> bytes, const VarSlot& slot) {
  uint64_t value = 0;
  for (uint32_t i = 0; i < slot.size && i < 8 && slot.offset + i < bytes.size(); ++i)
    value |= uint64_t(bytes[slot.offset + i]) << (8 * i);
  return value;
}

namespace {

Result<std::vector<Candidate>> maps_ending_in(std::string_view suffix) {
  std::vector<Candidate> found;
  std::vector<std::string> all_names;
  uint32_t id = 0;
  while (true) {
    if (bpf_map_get_next_id(id, &id) != 0) {
      if (errno == ENOENT) break;
      return fail("cannot list BPF maps: " + errno_text(errno), "run as root (CAP_SYS_ADMIN)");
    }
    Fd fd(bpf_map_get_fd_by_id(id));
    if (fd.fd < 0) continue;  // freed meanwhile
    bpf_map_info info{};
    uint32_t len = sizeof(info);
    if (bpf_map_get_info_by_fd(fd.fd, &info, &len) != 0) continue;
    all_names.emplace_back(info.name);
    if (ends_with(info.name, suffix)) found.push_back({std::move(fd), info});
  }
  if (found.empty())
    return fail("no BPF map ending in '" + std::string(suffix) + "'",
                all_names.empty() ? "no BPF maps are loaded: is the scheduler running?"
                                  : "loaded maps: " + join(all_names));
  return found;
}

// Write through an mmap of the map when possible: only the variable's bytes
// change, so counters the BPF program updates concurrently are not clobbered.
Result<uint64_t> write_mmap(const Candidate& map, const VarSlot& slot, int64_t value) {
  const size_t page = size_t(sysconf(_SC_PAGESIZE));
  const size_t len = (size_t(map.info.value_size) + page - 1) / page * page;
  void* mem = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, map.fd.fd, 0);
  if (mem == MAP_FAILED) {
    const int err = errno;
    return fail("cannot map '" + std::string(map.info.name) + "' for writing: " + errno_text(err),
                err == EPERM ? "the map is frozen (.rodata is read-only after load)" : "");
  }
  std::span<uint8_t> bytes(static_cast<uint8_t*>(mem), map.info.value_size);
  // Patch a copy of the slot, then publish it with one memcpy.
  std::vector<uint8_t> copy(bytes.begin(), bytes.end());
  const uint64_t old_value = read_bytes(copy, slot);
  Status patched = patch_bytes(copy, slot, value);
  if (patched) std::memcpy(bytes.data() + slot.offset, copy.data() + slot.offset, slot.size);
  munmap(mem, len);
  if (!patched) return fail(patched.error());
  return old_value;
}

Result<uint64_t> write_update(const Candidate& map, const VarSlot& slot, int64_t value) {
  std::vector<uint8_t> bytes(map.info.value_size);
  const uint32_t key = 0;
  const std::string name = map.info.name;
  if (bpf_map_lookup_elem(map.fd.fd, &key, bytes.data()) != 0)
    return fail("cannot read map '" + name + "': " + errno_text(errno));
  const uint64_t old_value = read_bytes(bytes, slot);
  if (Status s = patch_bytes(bytes, slot, value); !s) return fail(s.error());
  if (bpf_map_update_elem(map.fd.fd, &key, bytes.data(), BPF_ANY) != 0) {
    const int err = errno;
    return fail("cannot write map '" + name + "': " + errno_text(err),
                err == EPERM ? "the map is frozen (.rodata is read-only after load)" : "");
  }
  return old_value;
}

}  // namespace

Result<MapWrite> write_map_var(std::string_view map_suffix, std::string_view var, int64_t value) {
  auto maps = maps_ending_in(map_suffix);
  if (!maps) return fail(maps.error());

  // Among the matching maps, the ones that hold the variable.
  std::vector<std::pair<const Candidate*, VarSlot>> holders;
  Error last_error;
  for (const Candidate& map : *maps) {
    const std::string name = map.info.name;
    if (map.info.btf_id == 0 || map.info.btf_value_type_id == 0) {
      last_error = Error("map '" + name + "' has no BTF", "only global-variable maps can be written");
      continue;
    }
    BtfPtr btf(btf__load_from_kernel_by_id(map.info.btf_id));
    if (!btf) {
      last_error = Error("cannot load BTF of map '" + name + "': " + errno_text(errno));
      continue;
    }
    auto vars = datasec_vars(btf.get(), map.info.btf_value_type_id);
    if (!vars) {
      last_error = vars.error().context("map '" + name + "'");
      continue;
    }
    auto slot = find_var(*vars, var, name);
    if (!slot) {
      last_error = slot.error();
      continue;
    }
    holders.emplace_back(&map, *slot);
  }
  if (holders.empty()) return fail(last_error);
  if (holders.size() > 1) {
    std::vector<std::string> names;
    for (const auto& [map, slot] : holders) names.emplace_back(map->info.name);
    return fail("variable '" + std::string(var) + "' is in several maps ending in '" +
                    std::string(map_suffix) + "': " + join(names),
                "give a longer suffix, e.g. '" + names.front() + "'");
  }

  const auto& [map, slot] = holders.front();
  MapWrite done{map->info.name, map->info.id, slot, 0, false};
  if (map->info.map_flags & BPF_F_MMAPABLE) {
    auto old_value = write_mmap(*map, slot, value);
    if (!old_value) return fail(old_value.error());
    done.old_value = *old_value;
    done.via_mmap = true;
  } else {
    auto old_value = write_update(*map, slot, value);
    if (!old_value) return fail(old_value.error());
    done.old_value = *old_value;
  }
  return done;
}

}  // namespace ktstr::mapwrite
