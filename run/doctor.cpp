#include "run/doctor.hpp"
#include "core/local_time.hpp"

#include "core/fs.hpp"
#include "core/subprocess.hpp"
#include "db/store.hpp"
#include "guest/vm/accel.hpp"
#include "guest/vm/snapshot.hpp"
#include "guest/vm/vm_config.hpp"

#include <bpf/libbpf_version.h>
#include <fmt/format.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <grp.h>
#include <pwd.h>

#ifndef KTSTR_TOOLS_DIR
#define KTSTR_TOOLS_DIR ""
#endif

namespace ktstr::runner {
namespace {

std::string first_line(const std::string& s) {
  auto nl = s.find('\n');
  return s.substr(0, nl);
}

DoctorTool find_tool(const std::string& name, const std::vector<std::string>& candidates) {
  DoctorTool t;
  t.name = name;
  for (auto& c : candidates) {
    std::string p = find_in_path(c);
    if (p.empty()) continue;
    t.path = p;
    auto r = run({p, "--version"}, {}, std::chrono::seconds(10));
    if (r && r->ok()) t.version = first_line(r->out.empty() ? r->err : r->out);
    break;
  }
  return t;
}


std::string mode_string(const struct stat& st) {
  std::string m = S_ISCHR(st.st_mode) ? "c" : S_ISDIR(st.st_mode) ? "d" : "-";
  const char* rwx = "rwxrwxrwx";
  for (int i = 0; i < 9; ++i) m += (st.st_mode & (0400 >> i)) ? rwx[i] : '-';
  const passwd* pw = ::getpwuid(st.st_uid);
  const group* gr = ::getgrgid(st.st_gid);
  return m + " " + (pw ? pw->pw_name : std::to_string(st.st_uid)) + ":" + (gr ? gr->gr_name : std::to_string(st.st_gid));
}

std::string human_bytes(uint64_t b) {
  if (b >= 1024ull * 1024 * 1024) return fmt::format("{:.1f} GiB", b / (1024.0 * 1024 * 1024));
  if (b >= 1024 * 1024) return fmt::format("{:.1f} MiB", b / (1024.0 * 1024));
  if (b >= 1024) return fmt::format("{:.1f} KiB", b / 1024.0);
  return std::to_string(b) + " B";
}

std::string tool_line(const DoctorTool& t) {
  if (t.path.empty()) return "not found";
  return (t.version.empty() ? std::string("(version unknown)") : t.version) + " (" + t.path + ")";
}

}  // namespace

DoctorReport collect_doctor(const std::string& cache_dir) {
  DoctorReport r;
  utsname u{};
  if (::uname(&u) == 0) r.host_kernel = std::string(u.sysname) + " " + u.release + " " + u.version + " " + u.machine;

  r.qemu = find_tool(default_qemu_binary(), {default_qemu_binary()});

  struct stat st {};
  r.kvm_device = ::stat("/dev/kvm", &st) == 0;
  if (r.kvm_device) {
    r.kvm_device_mode = mode_string(st);
    r.kvm_accessible = ::access("/dev/kvm", R_OK | W_OK) == 0;
  }
  if (const char* f = std::getenv("KTSTR_ACCEL"); f && *f) r.accel_forced = f;
  if (auto v = read_accel_verdict(cache_dir); v && v->this_boot) {
    r.verdict_known = true;
    r.verdict_kvm_works = v->kvm_works;
    r.verdict_decided_by = v->decided_by;
    r.verdict_evidence = v->evidence;
    r.verdict_decided_at = v->decided_at;
  }

  r.store_path = cache_dir;
  r.snapshot_dir = default_snapshot_dir();
  if (!r.snapshot_dir.empty()) {
    SnapshotUsage u = snapshot_usage(r.snapshot_dir);
    r.snapshots = u.snapshots;
    r.snapshot_bytes = u.bytes;
    r.snapshots_restore_failed = u.restore_failed;
  }
  std::string db_path = cache_dir + "/ktstr.db";
  r.store_exists = path_exists(db_path);
  r.store_schema_supported = db::Store::schema_version();
  if (r.store_exists) {
    for (const char* suffix : {"", "-wal", "-shm"}) {
      struct stat fst {};
      if (::stat((db_path + suffix).c_str(), &fst) == 0) r.store_bytes += static_cast<uint64_t>(fst.st_size);
    }
    r.store_bytes += tree_bytes(cache_dir + "/artifacts");
    auto store = db::Store::open(cache_dir);
    if (!store) {
      r.store_error = store.error().msg;
    } else {
      sqlite3_stmt* stmt = nullptr;
      if (sqlite3_prepare_v2((*store)->handle(), "PRAGMA user_version", -1, &stmt, nullptr) == SQLITE_OK &&
          sqlite3_step(stmt) == SQLITE_ROW)
        r.store_schema = sqlite3_column_int(stmt, 0);
      sqlite3_finalize(stmt);
      if (auto ks = (*store)->list_kernels()) {
        for (auto& k : *ks) r.kernels.push_back({k.id, k.version, k.source, k.sched_ext, k.tracepoints});
      } else {
        r.store_error = ks.error().msg;
      }
    }
  }

  r.libbpf_version = std::to_string(LIBBPF_MAJOR_VERSION) + "." + std::to_string(LIBBPF_MINOR_VERSION);
  std::vector<std::string> bpftool = {"bpftool"};
  std::vector<std::string> clang = {"clang-16", "clang"};
  for (const std::string& dir : {std::string(KTSTR_TOOLS_DIR), exe_dir() + "/../tools"}) {
    if (!dir.empty()) bpftool.push_back(dir + "/bin/bpftool");
  }
  r.bpftool = find_tool("bpftool", bpftool);
  r.clang = find_tool("clang", clang);
  add_doctor_problems(r);
  return r;
}

void add_doctor_problems(DoctorReport& r) {
  auto add = [&](std::string what, std::string hint, bool blocks) {
    r.problems.push_back({std::move(what), std::move(hint), blocks});
  };
  if (r.qemu.path.empty())
    add("no QEMU found ('" + (r.qemu.name.empty() ? std::string("qemu-system-x86_64") : r.qemu.name) + "')",
        "install it: apt-get install qemu-system-x86 (or set KTSTR_QEMU to a qemu-system-x86_64)", true);

  // What the next VM uses, and why.
  if (!r.accel_forced.empty()) {
    r.accel = r.accel_forced + " (KTSTR_ACCEL)";
  } else if (!r.kvm_device) {
    r.accel = "tcg";
    add("no /dev/kvm: VMs run under TCG (slower)",
        "load kvm_intel or kvm_amd, or enable (nested) virtualisation for this machine; TCG works meanwhile", false);
  } else if (!r.kvm_accessible) {
    r.accel = "tcg";
    add("/dev/kvm is not readable and writable by this user (" + r.kvm_device_mode + "): VMs run under TCG",
        "add yourself to its group (usermod -aG kvm $USER, then log in again)", false);
  } else if (!r.verdict_known) {
    r.accel = "kvm (not confirmed yet)";
  } else if (!r.verdict_kvm_works) {
    r.accel = "tcg";
    if (r.verdict_decided_by == kDecidedByBoot)
      add("KVM cannot boot a kernel here (" + r.verdict_evidence + ")",
          "TCG is used for this host boot (slower); typical of nested virtualisation without full support", false);
    else
      add("the KVM probe failed (" + r.verdict_evidence + ")", "TCG is used for this host boot (slower)", false);
  } else {
    r.accel = r.verdict_decided_by == kDecidedByBoot ? "kvm" : "kvm (not confirmed by a boot yet)";
  }

  if (!r.store_error.empty()) {
    add("the store at '" + r.store_path + "' cannot be opened: " + r.store_error,
        "move it aside (ktstr creates a new one) or fix its permissions", true);
  } else if (r.store_exists && r.store_schema > r.store_schema_supported) {
    add("the store's schema " + std::to_string(r.store_schema) + " is newer than this ktstr (" +
            std::to_string(r.store_schema_supported) + ")",
        "use a newer ktstr, or another KTSTR_CACHE_DIR", true);
  }
  bool any_sched_ext = false;
  for (auto& k : r.kernels) any_sched_ext = any_sched_ext || k.sched_ext;
  if (r.store_error.empty()) {
    if (r.kernels.empty())
      add("no kernel cached", "run 'ktstr kernel fetch' (or 'ktstr kernel add PATH')", true);
    else if (!any_sched_ext)
      add("no cached kernel has sched_ext", "run 'ktstr kernel fetch' for a Debian cloud kernel with sched_ext", true);
  }
  for (auto& k : r.kernels)
    if (k.sched_ext && k.tracepoints.empty())
      add("kernel " + k.version + " has no sched_ext tracepoints: crash reports lack the kernel's exit record",
          "use a kernel with CONFIG_SCHED_CLASS_EXT and tracepoints, e.g. 'ktstr kernel fetch'", false);
  if (r.bpftool.path.empty())
    add("bpftool not found", "only needed to build ktstr: scripts/setup.sh installs it", false);
  if (r.clang.path.empty())
    add("clang not found", "only needed to build ktstr and BPF schedulers: apt-get install clang-16", false);
}

std::string render_doctor(const DoctorReport& r) {
  std::string o;
  auto line = [&](const std::string& k, const std::string& v) { o += fmt::format("{:<13}{}\n", k + ":", v); };
  line("host kernel", r.host_kernel);
  line("qemu", tool_line(r.qemu));
  line("/dev/kvm", r.kvm_device ? r.kvm_device_mode + (r.kvm_accessible ? ", usable by you" : ", NOT usable by you")
                                : "absent");
  std::string verdict;
  if (!r.verdict_known && !r.kvm_device) {
    verdict = "none needed (no /dev/kvm: TCG)";
  } else if (!r.verdict_known) {
    verdict = "no verdict for this host boot yet (the first VM decides)";
  } else {
    verdict = std::string(r.verdict_kvm_works ? "KVM works" : "KVM does not work") + " (" +
              (r.verdict_decided_by == kDecidedByBoot ? "decided by a real boot" : "ioctl probe only; no real boot has decided yet") +
              (r.verdict_evidence.empty() ? "" : ": " + r.verdict_evidence) + ")";
    if (r.verdict_decided_at > 0) verdict += ", " + local_time(r.verdict_decided_at, "");
  }
  line("kvm verdict", verdict);
  line("accelerator", r.accel.empty() ? "unknown" : r.accel);
  if (!r.store_exists) {
    line("store", r.store_path + " (none yet; created on first use)");
  } else {
    line("store", r.store_path + ", " + human_bytes(r.store_bytes) + ", schema " +
                      (r.store_schema >= 0 ? std::to_string(r.store_schema) : std::string("unknown")) +
                      " (this ktstr: " + std::to_string(r.store_schema_supported) + ")");
  }
  if (r.snapshot_dir.empty()) {
    line("snapshots", "off (KTSTR_SNAPSHOT=off): every VM boots");
  } else {
    line("snapshots", r.snapshot_dir + ", " + std::to_string(r.snapshots) + " (" + human_bytes(r.snapshot_bytes) + ")" +
                          (r.snapshots_restore_failed
                               ? ", " + std::to_string(r.snapshots_restore_failed) +
                                     " configuration(s) off after a failed restore (*.restore-failed)"
                               : std::string()));
  }
  if (r.kernels.empty()) {
    line("kernels", "none cached");
  } else {
    line("kernels", std::to_string(r.kernels.size()) + " cached");
    for (auto& k : r.kernels) {
      std::string tps;
      for (auto& t : k.tracepoints) tps += (tps.empty() ? "" : ",") + t;
      o += fmt::format("  {} {}  sched_ext: {}  tracepoints: {}\n", k.id, k.version, k.sched_ext ? "yes" : "no",
                       tps.empty() ? "none" : tps);
    }
  }
  line("libbpf", r.libbpf_version + " (compiled in)");
  line("bpftool", tool_line(r.bpftool));
  line("clang", tool_line(r.clang));
  if (r.problems.empty()) {
    o += "\nno problems found\n";
  } else {
    o += "\n";
    for (auto& p : r.problems) {
      o += (p.blocks ? "problem: " : "note: ") + p.what + "\n";
      o += "hint: " + p.hint + "\n";
    }
  }
  return o;
}

nlohmann::json doctor_json(const DoctorReport& r) {
  auto tool = [](const DoctorTool& t) {
    return nlohmann::json{{"found", !t.path.empty()}, {"path", t.path}, {"version", t.version}};
  };
  nlohmann::json kernels = nlohmann::json::array();
  for (auto& k : r.kernels)
    kernels.push_back({{"id", k.id}, {"version", k.version}, {"source", k.source}, {"sched_ext", k.sched_ext},
                       {"tracepoints", k.tracepoints}});
  nlohmann::json problems = nlohmann::json::array();
  for (auto& p : r.problems) problems.push_back({{"problem", p.what}, {"hint", p.hint}, {"blocks", p.blocks}});
  nlohmann::json verdict = nullptr;
  if (r.verdict_known)
    verdict = {{"kvm_works", r.verdict_kvm_works}, {"decided_by", r.verdict_decided_by},
               {"evidence", r.verdict_evidence}, {"decided_at", r.verdict_decided_at}};
  return {{"host_kernel", r.host_kernel},
          {"qemu", tool(r.qemu)},
          {"kvm", {{"device", r.kvm_device}, {"mode", r.kvm_device_mode}, {"accessible", r.kvm_accessible},
                   {"verdict", verdict}, {"forced", r.accel_forced}}},
          {"accelerator", r.accel},
          {"store", {{"path", r.store_path}, {"exists", r.store_exists}, {"bytes", r.store_bytes},
                     {"schema_version", r.store_schema}, {"schema_supported", r.store_schema_supported},
                     {"error", r.store_error}}},
          {"snapshots", {{"dir", r.snapshot_dir}, {"count", r.snapshots}, {"bytes", r.snapshot_bytes},
                         {"restore_failed", r.snapshots_restore_failed}}},
          {"kernels", kernels},
          {"libbpf", {{"version", r.libbpf_version}}},
          {"bpftool", tool(r.bpftool)},
          {"clang", tool(r.clang)},
          {"problems", problems},
          {"ok", doctor_exit_status(r) == 0}};
}

int doctor_exit_status(const DoctorReport& r) {
  for (auto& p : r.problems)
    if (p.blocks) return 1;
  return 0;
}

}  // namespace ktstr::runner
