#include "kbuild/kconfig.hpp"

#include <algorithm>
#include <cctype>
#include <map>

namespace ktstr::kbuild {

extern const char* const kKtstrKconfigText;  // generated from ktstr.kconfig (kbuild/CMakeLists.txt)

namespace {

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return {};
  size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

bool valid_symbol(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isalnum(c) || c == '_'; });
}

}  // namespace

Result<std::vector<KconfigSetting>> parse_kconfig(const std::string& text, const std::string& origin) {
  std::vector<KconfigSetting> out;
  size_t pos = 0;
  int lineno = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string line = trim(text.substr(pos, end - pos));
    pos = end + 1;
    ++lineno;
    if (line.empty()) continue;
    if (line[0] == '#') {
      // "# CONFIG_FOO is not set"
      constexpr std::string_view kSuffix = " is not set";
      std::string body = trim(line.substr(1));
      if (body.rfind("CONFIG_", 0) == 0 && body.size() > kSuffix.size() &&
          body.compare(body.size() - kSuffix.size(), kSuffix.size(), kSuffix) == 0) {
        std::string sym = body.substr(7, body.size() - 7 - kSuffix.size());
        if (valid_symbol(sym)) out.push_back({sym, "n"});
      }
      continue;
    }
    const size_t eq = line.find('=');
    const std::string sym = eq == std::string::npos ? "" : line.substr(0, eq);
    if (sym.rfind("CONFIG_", 0) != 0 || !valid_symbol(sym.substr(7)))
      return fail(origin + ":" + std::to_string(lineno) + ": '" + line + "' is not a config line",
                  "write CONFIG_NAME=value or '# CONFIG_NAME is not set'");
    std::string value = trim(line.substr(eq + 1));
    if (value.empty())
      return fail(origin + ":" + std::to_string(lineno) + ": '" + line + "' has no value",
                  "write CONFIG_NAME=y, =n, =m, a number or a quoted string");
    out.push_back({sym.substr(7), value});
  }
  return out;
}

const std::string& ktstr_kconfig() {
  static const std::string text = kKtstrKconfigText;
  return text;
}

MergedKconfig merge_kconfig(const std::vector<std::vector<KconfigSetting>>& fragments) {
  MergedKconfig m;
  std::map<std::string, size_t> index;
  for (const auto& frag : fragments) {
    for (const auto& s : frag) {
      auto it = index.find(s.symbol);
      if (it == index.end()) {
        index.emplace(s.symbol, m.settings.size());
        m.settings.push_back(s);
        continue;
      }
      KconfigSetting& prev = m.settings[it->second];
      if (prev.value != s.value) m.overridden.push_back("CONFIG_" + s.symbol + ": " + prev.value + " -> " + s.value);
      prev.value = s.value;
    }
  }
  for (const auto& s : m.settings)
    m.text += s.value == "n" ? "# CONFIG_" + s.symbol + " is not set\n" : "CONFIG_" + s.symbol + "=" + s.value + "\n";
  return m;
}

std::string kconfig_value(const std::vector<KconfigSetting>& config, const std::string& symbol) {
  std::string v = "n";
  for (const auto& s : config)
    if (s.symbol == symbol) v = s.value;
  return v;
}

const std::vector<RequiredOption>& required_kconfig_options() {
  static const std::vector<RequiredOption> options = {
      {"SCHED_CLASS_EXT", "sched_ext itself"},
      {"BPF_SYSCALL", "loading BPF schedulers and probes"},
      {"NET", "libbpf's feature probes load socket filter programs"},
      {"BPF_JIT", "sched_ext needs the BPF JIT"},
      {"DEBUG_INFO_BTF", "sched_ext and CO-RE need the kernel's BTF"},
      {"SMP", "multi-CPU topologies"},
      {"NUMA", "topologies with several nodes"},
      {"SCHED_MC", "LLC groups in the scheduler's topology"},
      {"BLK_DEV_INITRD", "ktstr boots from an initramfs"},
      {"DEVTMPFS", "the agent mounts /dev"},
      {"SERIAL_8250_CONSOLE", "the console on ttyS0"},
      {"VIRTIO_PCI", "virtio-serial-pci, the agent's ports"},
      {"VIRTIO_CONSOLE", "virtio-serial-pci, the agent's ports"},
      {"CGROUPS", "the agent's cgroups"},
      {"CPUSETS", "cpuset cgroups for workers"},
      {"DEBUG_FS", "sched/debug for the scheduler monitor"},
      {"KPROBES", "probes on the crash chain"},
      {"KPROBE_EVENTS", "kprobe BPF programs"},
      {"BPF_EVENTS", "kprobe and tracepoint BPF programs"},
      {"FTRACE", "tracefs"},
      {"FUNCTION_TRACER", "fentry/fexit probes"},
      {"DYNAMIC_FTRACE", "fentry/fexit probes"},
      {"TRACEPOINTS", "sched_ext tracepoints"},
  };
  return options;
}

std::vector<RequiredOption> missing_required_options(const std::vector<KconfigSetting>& final_config) {
  std::map<std::string, std::string> values;
  for (const auto& s : final_config) values[s.symbol] = s.value;
  std::vector<RequiredOption> missing;
  for (const auto& r : required_kconfig_options()) {
    auto it = values.find(r.symbol);
    if (it == values.end() || it->second != "y") missing.push_back(r);
  }
  return missing;
}

std::vector<std::string> dropped_settings(const MergedKconfig& merged, const std::vector<KconfigSetting>& final_config) {
  std::map<std::string, std::string> values;
  for (const auto& s : final_config) values[s.symbol] = s.value;
  std::vector<std::string> out;
  for (const auto& s : merged.settings) {
    auto it = values.find(s.symbol);
    const std::string now = it == values.end() ? "n" : it->second;
    if (now != s.value) out.push_back("CONFIG_" + s.symbol + "=" + s.value + " (now " + now + ")");
  }
  return out;
}

Status check_required_options(const std::vector<KconfigSetting>& final_config, const std::string& tree) {
  auto missing = missing_required_options(final_config);
  if (missing.empty()) return {};
  std::string names;
  for (const auto& m : missing) names += (names.empty() ? "CONFIG_" : ", CONFIG_") + m.symbol;
  const bool no_scx = std::any_of(missing.begin(), missing.end(), [](const RequiredOption& r) {
    return r.symbol == "SCHED_CLASS_EXT";
  });
  std::string hint = no_scx ? "sched_ext needs Linux 6.12 or later; build a newer tree"
                            : "a --config fragment must not turn these off, and their dependencies must be met";
  hint += " (the final .config lacks: ";
  for (size_t i = 0; i < missing.size(); ++i)
    hint += (i ? "; " : "") + std::string("CONFIG_") + missing[i].symbol + " for " + missing[i].why;
  hint += ")";
  return fail("the kernel config of '" + tree + "' lacks options ktstr needs: " + names, hint);
}

}  // namespace ktstr::kbuild
