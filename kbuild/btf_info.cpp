#include "kbuild/btf_info.hpp"

#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>

namespace ktstr::kbuild {

namespace {

int libbpf_to_spdlog(enum libbpf_print_level level, const char* format, va_list args) {
  char buf[1024];
  int n = std::vsnprintf(buf, sizeof buf, format, args);
  std::string_view msg(buf, n < 0 ? 0 : std::min<size_t>(static_cast<size_t>(n), sizeof buf - 1));
  while (!msg.empty() && msg.back() == '\n') msg.remove_suffix(1);
  switch (level) {
    case LIBBPF_WARN: spdlog::warn("libbpf: {}", msg); break;
    case LIBBPF_INFO: spdlog::info("libbpf: {}", msg); break;
    default: spdlog::debug("libbpf: {}", msg); break;
  }
  return n;
}

constexpr std::string_view kTracePrefix = "btf_trace_sched_ext_";

BtfFeatures features_of(const struct btf* btf) {
  BtfFeatures f;
  f.sched_ext_ops = btf__find_by_name_kind(btf, "sched_ext_ops", BTF_KIND_STRUCT) >= 0;
  // Each tracepoint has a typedef btf_trace_<name> for its tp_btf prototype.
  const __u32 n = btf__type_cnt(btf);
  for (__u32 id = 1; id < n; ++id) {
    const struct btf_type* t = btf__type_by_id(btf, id);
    if (!t || !btf_is_typedef(t)) continue;
    const char* name = btf__name_by_offset(btf, t->name_off);
    if (!name || std::strncmp(name, kTracePrefix.data(), kTracePrefix.size()) != 0) continue;
    f.tracepoints.emplace_back(name + std::strlen("btf_trace_"));
  }
  std::sort(f.tracepoints.begin(), f.tracepoints.end());
  f.tracepoints.erase(std::unique(f.tracepoints.begin(), f.tracepoints.end()), f.tracepoints.end());
  return f;
}

using BtfPtr = std::unique_ptr<struct btf, void (*)(struct btf*)>;

}  // namespace

void route_libbpf_logs() {
  static std::once_flag once;
  std::call_once(once, [] { libbpf_set_print(libbpf_to_spdlog); });
}

Result<BtfFeatures> inspect_btf_file(const std::string& vmlinux_path) {
  route_libbpf_logs();
  BtfPtr btf(btf__parse_elf(vmlinux_path.c_str(), nullptr), btf__free);
  if (!btf) {
    int err = errno;
    return fail("cannot read BTF from '" + vmlinux_path + "': " + std::strerror(err),
                "the kernel needs CONFIG_DEBUG_INFO_BTF=y");
  }
  return features_of(btf.get());
}

Result<BtfFeatures> inspect_btf_raw(std::string_view btf_bytes) {
  route_libbpf_logs();
  BtfPtr btf(btf__new(btf_bytes.data(), static_cast<__u32>(btf_bytes.size())), btf__free);
  if (!btf) {
    int err = errno;
    return fail(std::string("cannot parse BTF: ") + std::strerror(err));
  }
  return features_of(btf.get());
}

bool config_has_sched_ext(std::string_view config_text) {
  constexpr std::string_view kLine = "CONFIG_SCHED_CLASS_EXT=y";
  for (size_t at = config_text.find(kLine); at != std::string_view::npos;
       at = config_text.find(kLine, at + 1)) {
    bool line_start = at == 0 || config_text[at - 1] == '\n';
    size_t end = at + kLine.size();
    bool line_end = end == config_text.size() || config_text[end] == '\n';
    if (line_start && line_end) return true;
  }
  return false;
}

}  // namespace ktstr::kbuild
