#include "guest/agent/verifier_job.hpp"

#include "guest/agent/util.hpp"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include <cstdarg>
#include <cstdio>
#include <memory>
#include <vector>

namespace ktstr::agent {
namespace {

// The kernel's own summary at level 4 is a few lines per program; a failed
// program adds its error lines. 256 KiB leaves room for large subprogram
// counts while the kernel's rotating log keeps the end when it overflows.
constexpr size_t kProgramLogBytes = 256u << 10;
constexpr unsigned kLogLevelStats = 4;  // BPF_LOG_STATS

// libbpf's warnings during one object's open and load.
std::string* g_libbpf_out = nullptr;

int capture_libbpf(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (level == LIBBPF_DEBUG || !g_libbpf_out) return 0;
  char buf[1024];
  int n = std::vsnprintf(buf, sizeof buf, fmt, args);
  if (n <= 0) return 0;
  std::string line(buf, std::min<size_t>(size_t(n), sizeof buf - 1));
  if (line.rfind("libbpf: ", 0) == 0) line.erase(0, 8);
  *g_libbpf_out += line;
  if (!line.empty() && line.back() != '\n') *g_libbpf_out += '\n';
  // Bound it: a verifier log libbpf prints on failure can be long.
  if (g_libbpf_out->size() > 4 * proto::kMaxVerifierLogBytes)
    *g_libbpf_out = log_tail(*g_libbpf_out, proto::kMaxVerifierLogBytes);
  return 0;
}

struct ObjectCloser {
  void operator()(bpf_object* o) const { bpf_object__close(o); }
};
struct BtfCloser {
  void operator()(btf* b) const { btf__free(b); }
};

// The first thing libbpf said about program `name` ("prog 'x': BPF program
// load failed: Permission denied"), else "".
std::string libbpf_line_about(const std::string& libbpf_log, const std::string& name) {
  const std::string key = "prog '" + name + "': ";
  size_t start = 0;
  while (start < libbpf_log.size()) {
    size_t nl = libbpf_log.find('\n', start);
    if (nl == std::string::npos) nl = libbpf_log.size();
    std::string line = libbpf_log.substr(start, nl - start);
    if (line.rfind(key, 0) == 0 && line.find("PROG LOAD LOG") == std::string::npos) return line.substr(key.size());
    start = nl + 1;
  }
  return "";
}

// The struct_ops callback a program implements: member `member_index` of
// the kernel type `attach_btf_id` (e.g. sched_ext_ops.enqueue).
std::string struct_ops_member(const btf* vmlinux, uint32_t attach_btf_id, uint32_t member_index) {
  if (!vmlinux || attach_btf_id == 0) return "";
  const btf_type* t = btf__type_by_id(vmlinux, attach_btf_id);
  if (!t || !btf_is_struct(t) || member_index >= btf_vlen(t)) return "";
  const char* name = btf__name_by_offset(vmlinux, btf_members(t)[member_index].name_off);
  return name ? name : "";
}

void describe_program(bpf_program* prog, const std::string& log, const std::string& libbpf_log, int load_err,
                      btf* vmlinux, proto::VerifierProgramMsg& out) {
  out.name = bpf_program__name(prog);
  out.section = bpf_program__section_name(prog);
  bpf_prog_type type = bpf_program__type(prog);
  if (const char* t = libbpf_bpf_prog_type_str(type)) out.type = t;
  out.log = log_tail(log, proto::kMaxVerifierLogBytes);
  int fd = bpf_program__fd(prog);
  uint32_t attach_btf_id = 0;
  if (fd >= 0) {
    out.loaded = true;
    bpf_prog_info info{};
    uint32_t len = sizeof info;
    if (bpf_prog_get_info_by_fd(fd, &info, &len) == 0) {
      // Fields the kernel does not know come back zero (len shorter).
      if (len > offsetof(bpf_prog_info, verified_insns) && info.verified_insns) out.verified_insns = info.verified_insns;
      out.xlated_bytes = info.xlated_prog_len;
      if (info.jited_prog_len) out.jited_bytes = info.jited_prog_len;
      if (len > offsetof(bpf_prog_info, attach_btf_id)) attach_btf_id = info.attach_btf_id;
    }
  } else if (std::string why = libbpf_line_about(libbpf_log, out.name); !why.empty()) {
    out.error = why;  // this is the program that failed
  } else if (load_err && log.find("processed ") != std::string::npos) {
    // Verified before another program failed; libbpf then unloaded every
    // program, so there is no bpf_prog_info, but the log has the numbers.
    out.loaded = true;
  } else {
    out.error = load_err ? std::string(proto::kVerifierNotReached) + " (" + errno_text(-load_err) + ")"
                         : "not loaded";
  }
  if (type == BPF_PROG_TYPE_STRUCT_OPS) {
    out.attach = struct_ops_member(vmlinux, attach_btf_id, uint32_t(bpf_program__expected_attach_type(prog)));
  } else if (type == BPF_PROG_TYPE_TRACING || type == BPF_PROG_TYPE_LSM || type == BPF_PROG_TYPE_EXT) {
    // Other types' expected attach type is 0, which names a cgroup hook.
    if (const char* a = libbpf_bpf_attach_type_str(bpf_program__expected_attach_type(prog))) out.attach = a;
  }
}

}  // namespace

std::string log_tail(const std::string& text, size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  size_t start = text.size() - max_bytes;
  size_t nl = text.find('\n', start);
  if (nl != std::string::npos && nl + 1 < text.size() && nl - start < 256) start = nl + 1;
  return text.substr(start);
}

proto::VerifierResultMsg verify_object(uint32_t index, const std::string& path, const VerifierLogFn& log) {
  proto::VerifierResultMsg msg;
  msg.object = index;
  msg.path = path;
  std::string libbpf_out;
  g_libbpf_out = &libbpf_out;
  libbpf_set_print(capture_libbpf);
  struct Reset {
    ~Reset() { g_libbpf_out = nullptr; }
  } reset;

  std::unique_ptr<bpf_object, ObjectCloser> obj(bpf_object__open_file(path.c_str(), nullptr));
  if (!obj) {
    int err = errno;
    msg.error = "opening '" + path + "': " + errno_text(err);
    msg.libbpf_log = log_tail(libbpf_out, proto::kMaxVerifierLogBytes);
    msg.t_ms = boottime_ms();
    return msg;
  }
  msg.opened = true;

  std::vector<bpf_program*> progs;
  std::vector<std::unique_ptr<char[]>> logs;
  bpf_program* prog = nullptr;
  bpf_object__for_each_program(prog, obj.get()) {
    if (!bpf_program__autoload(prog)) continue;  // SEC("?...") programs are not loaded by default
    if (progs.size() >= proto::kMaxVerifierPrograms) {
      log("warn", "verifier: '" + path + "' has more than " + std::to_string(proto::kMaxVerifierPrograms) +
                      " programs; the rest are not reported");
      bpf_program__set_autoload(prog, false);
      continue;
    }
    logs.emplace_back(new char[kProgramLogBytes]());
    bpf_program__set_log_buf(prog, logs.back().get(), kProgramLogBytes);
    bpf_program__set_log_level(prog, kLogLevelStats);
    progs.push_back(prog);
  }

  uint64_t t0 = monotonic_ns();
  int err = bpf_object__load(obj.get());
  msg.load_ms = (monotonic_ns() - t0) / 1000000;
  msg.loaded = err == 0;
  if (err) msg.error = "loading '" + path + "': " + errno_text(-err);
  msg.libbpf_log = log_tail(libbpf_out, proto::kMaxVerifierLogBytes);

  std::unique_ptr<btf, BtfCloser> vmlinux(btf__load_vmlinux_btf());
  for (size_t i = 0; i < progs.size(); ++i) {
    // libbpf turns autoload off at load time for struct_ops programs no
    // struct_ops map uses: not loaded, nothing to report.
    if (!bpf_program__autoload(progs[i])) continue;
    proto::VerifierProgramMsg p;
    describe_program(progs[i], std::string(logs[i].get()), libbpf_out, err, vmlinux.get(), p);
    msg.programs.push_back(std::move(p));
  }
  msg.t_ms = boottime_ms();
  fit_payload(msg);
  return msg;
}

void fit_payload(proto::VerifierResultMsg& msg) {
  // A frame holds 1 MiB. Level-4 logs are a few hundred bytes, but many
  // programs or long error logs could exceed it: keep shorter tails, the
  // summary lines are at the end.
  for (size_t keep = proto::kMaxVerifierLogBytes / 4; keep >= 256; keep /= 4) {
    if (proto::dump_json(nlohmann::json(msg)).size() < proto::kMaxPayload - 4096) return;
    msg.libbpf_log = log_tail(msg.libbpf_log, keep);
    for (auto& p : msg.programs) p.log = log_tail(p.log, keep);
  }
}

}  // namespace ktstr::agent
