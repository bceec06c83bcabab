// Recording a crash: the replay record, the artifacts on disk and the
// signature, so `crash list/show`, `repro` and `pin` can find it again.
#include "run/pipeline.hpp"

#include "core/crash_parse.hpp"
#include "core/fs.hpp"
#include "core/report.hpp"
#include "db/crashes.hpp"

#include <unistd.h>

#include <cstdio>
#include <ctime>

namespace ktstr::runner {
namespace {

// The scheduler build that ran: the binary's hash (fixture or external).
std::string scheduler_hash(const TestSpec& spec) {
  std::string path = spec.scheduler;
  if (path == "scx-ktstr") path = exe_dir() + "/scx-ktstr";
  if (path.find('/') == std::string::npos) return "";
  auto h = sha256_file_hex(path);
  return h ? *h : "";
}

}  // namespace

Status record_crash(db::Store& store, RunResult& r, const TestSpec& spec, const KernelRecord& kernel) {
  if (!r.exit) return {};
  Signature sig = signature_of(*r.exit);
  CrashRecord c;
  c.signature_key = sig.key();
  c.kind = sig.kind;
  c.message = sig.message;
  c.bpf_prog = sig.bpf_prog;
  c.source = sig.source;
  c.summary = r.exit->summary();
  c.test_name = spec.name;
  c.kernel_id = kernel.id;
  c.scheduler = spec.scheduler;
  c.scheduler_sha256 = scheduler_hash(spec);
  c.sched_args = spec.sched_args;
  c.topology = spec.topology.to_string();
  c.spec_toml = spec_to_toml(spec);
  c.seed = r.seed.value_or(0);  // the result JSON says whether there was one
  c.run_id = r.run_id;
  c.created_at = std::time(nullptr);
  c.id = db::new_crash_id(c);
  r.crash_id = c.id;  // so the stored report names it
  ReportOptions ropt;
  c.report = render_failure(r, ropt);
  c.result_json = to_json(r).dump();

  // Artifacts first (in a temporary directory renamed into place), then the
  // row: a row never points at missing files.
  std::string root = store.artifacts_dir() + "/crashes";
  std::string dir = root + "/" + c.id;
  if (auto st = make_dirs(root); !st) return st;
  std::string tmp = root + "/.tmp-" + c.id + "-" + std::to_string(::getpid());
  if (auto st = make_dirs(tmp); !st) return st;
  const std::pair<const char*, const std::string*> files[] = {
      {"sched.log", r.sched ? &r.sched->log : nullptr},
      {"dump.txt", &r.sched_ext_dump},
      {"dmesg.txt", &r.dmesg},
      {"console.txt", &r.console_tail},
      {"spec.toml", &c.spec_toml},
      {"report.txt", &c.report},
      {"result.json", &c.result_json},
  };
  for (auto& [name, text] : files) {
    if (!text) continue;
    if (auto st = write_file_atomic(tmp + "/" + name, *text); !st) {
      (void)remove_tree(tmp);
      return st;
    }
  }
  if (std::rename(tmp.c_str(), dir.c_str()) != 0) {
    (void)remove_tree(tmp);
    return fail("cannot store the crash artifacts in '" + dir + "'");
  }
  c.artifacts_dir = dir;
  if (auto st = db::put_crash(store, c); !st) {
    (void)remove_tree(dir);
    r.crash_id.clear();
    return st;
  }
  return {};
}

}  // namespace ktstr::runner
