// `ktstr doctor`: what a bug report needs and what a user checks first.
// Collection (host, QEMU, KVM verdict, kernels, store, BPF tools) is apart
// from rendering, so the text/JSON and the exit status are unit-testable
// from a filled-in struct.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ktstr::runner {

struct DoctorProblem {
  std::string what;   // "no QEMU found"
  std::string hint;   // "install qemu-system-x86 ..."
  bool blocks = false;  // tests cannot run until it is fixed
};

struct DoctorTool {
  std::string name;     // "qemu", "bpftool", "clang"
  std::string path;     // empty: not found
  std::string version;  // first line of `--version`
};

struct DoctorKernel {
  std::string id, version, source;
  bool sched_ext = false;
  std::vector<std::string> tracepoints;
};

struct DoctorReport {
  std::string host_kernel;      // uname: sysname release version machine
  DoctorTool qemu;
  // /dev/kvm
  bool kvm_device = false;
  std::string kvm_device_mode;  // "crw-rw---- root:kvm"
  bool kvm_accessible = false;  // read+write for this user
  std::string accel_forced;     // KTSTR_ACCEL, when set
  // The cached verdict for this host boot (kvm-probe.json), if any.
  bool verdict_known = false;
  bool verdict_kvm_works = false;
  std::string verdict_decided_by;  // "ioctl_probe" (provisional) or "boot"
  std::string verdict_evidence;
  int64_t verdict_decided_at = 0;
  std::string accel;            // what the next run uses: "kvm", "tcg", "kvm (unconfirmed)"
  // The store.
  std::string store_path;
  bool store_exists = false;
  std::string store_error;      // it exists but cannot be opened
  int store_schema = -1;        // PRAGMA user_version; -1 unknown
  int store_schema_supported = 0;
  uint64_t store_bytes = 0;     // ktstr.db* plus artifacts/
  std::string snapshot_dir;     // empty: KTSTR_SNAPSHOT=off
  size_t snapshots = 0;
  uint64_t snapshot_bytes = 0;
  size_t snapshots_restore_failed = 0;
  std::vector<DoctorKernel> kernels;
  // BPF toolchain.
  std::string libbpf_version;   // compiled in: "1.5"
  DoctorTool bpftool, clang;
  std::vector<DoctorProblem> problems;
};

// Look at this host (runs `--version` of QEMU, bpftool, clang; opens the
// store read-mostly when it exists; never creates one).
DoctorReport collect_doctor(const std::string& cache_dir);

// Derive the problems (with hints) from the collected facts; collect_doctor
// calls it, tests call it on hand-made reports.
void add_doctor_problems(DoctorReport& r);

std::string render_doctor(const DoctorReport& r);
nlohmann::json doctor_json(const DoctorReport& r);
// 1 when a problem blocks running tests, else 0.
int doctor_exit_status(const DoctorReport& r);

}  // namespace ktstr::runner
