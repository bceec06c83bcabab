// Plain records kept in the store. db/ persists them; kbuild/ and cmd/ fill
// them. Later issues add crashes, repros and bisects.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ktstr {

// One cached kernel. `id` is the content key: the first 16 hex digits of the
// image's SHA-256. Paths are absolute, inside the artifact directory.
struct KernelRecord {
  std::string id;
  std::string version;          // "7.3.4+deb13-cloud-amd64", from the image header or package
  std::string name;             // user label (kernel add --name), may be empty
  std::string source;           // "debian:<package>=<version>" or "file:<original path>"
  std::string image_path;       // bzImage
  std::string config_path;      // may be empty when unknown
  std::string vmlinux_path;     // extracted ELF with .BTF
  std::string image_sha256;
  uint64_t image_size = 0;
  bool sched_ext = false;       // config or BTF has sched_ext_ops
  std::vector<std::string> tracepoints;  // sched_ext tracepoints present, e.g. "sched_ext_exit"
  int64_t added_at = 0;         // unix seconds
};

// One `ktstr test` run of one test.
struct RunRecord {
  int64_t id = 0;               // assigned by the store
  std::string test_name;
  std::string kernel_id;
  std::string scheduler;        // "eevdf", "scx-ktstr" or a path
  std::string topology;         // "1n1l4c1t"
  std::string scenario;
  std::string status;           // "pass", "fail", "error"
  std::string reason;           // failure reason, empty on pass
  int64_t started_at = 0;       // unix seconds
  int64_t duration_ms = 0;
  std::string result_json;      // the full RunResult as JSON
};

// One recorded crash occurrence, with everything needed to replay it.
// Occurrences with the same signature_key are the same crash.
struct CrashRecord {
  std::string id;                 // 12 hex digits, resolved by unique prefix like git
  std::string signature_key;      // Signature::key()
  int64_t kind = -1;              // signature: exit kind
  std::string message;            // signature: masked message
  std::string bpf_prog;           // signature: failing BPF program
  std::string source;             // signature: source location ("bpf/scx_ktstr.bpf.c:115")
  std::string summary;            // unmasked "scx_bpf_error (bpf/...: msg)"
  std::string test_name;
  std::string kernel_id;
  std::string scheduler;          // "scx-ktstr" or a path
  std::string scheduler_sha256;   // the scheduler build that crashed
  std::vector<std::string> sched_args;
  std::string topology;
  std::string spec_toml;          // the test as run (spec_to_toml), map writes included
  uint64_t seed = 0;
  int64_t run_id = 0;
  int64_t created_at = 0;         // unix seconds
  std::string report;             // the rendered report text
  std::string result_json;        // the RunResult
  std::string artifacts_dir;      // <artifacts>/crashes/<id>/: sched.log, dump.txt, dmesg.txt, console.txt
};

}  // namespace ktstr
