// What a kernel's BTF says about sched_ext, read with libbpf's btf API.
#pragma once

#include "core/result.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace ktstr::kbuild {

struct BtfFeatures {
  bool sched_ext_ops = false;               // struct sched_ext_ops exists
  std::vector<std::string> tracepoints;     // "sched_ext_dump", "sched_ext_exit", ... sorted
};

// From an ELF vmlinux file (btf__parse_elf).
Result<BtfFeatures> inspect_btf_file(const std::string& vmlinux_path);
// From raw .BTF section bytes (btf__new), for images held in memory.
Result<BtfFeatures> inspect_btf_raw(std::string_view btf_bytes);

// CONFIG_SCHED_CLASS_EXT=y in a kernel .config text.
bool config_has_sched_ext(std::string_view config_text);

// Route libbpf's messages to spdlog (warnings stay warnings, debug to debug). Idempotent.
void route_libbpf_logs();

}  // namespace ktstr::kbuild
