#include "run/verifier_run.hpp"

#include "core/bpf_elf.hpp"
#include "core/fs.hpp"
#include "core/text.hpp"
#include "guest/proto/file_messages.hpp"

#include <sys/stat.h>

#include <chrono>

namespace ktstr::runner {
namespace {

// A BPF object is a few hundred KiB; a scheduler binary a few MiB.
constexpr size_t kMaxInputBytes = 256u << 20;
constexpr unsigned kLogTailLines = 20;

std::string guest_object_path(char side, size_t index) {
  return std::string("/verifier/") + side + std::to_string(index) + ".bpf.o";
}

std::string last_lines(std::string_view text, size_t n) {
  auto lines = split_lines(text);
  std::string out;
  for (size_t i = lines.size() > n ? lines.size() - n : 0; i < lines.size(); ++i) out += std::string(lines[i]) + "\n";
  return out;
}

// Frames of the results port, as the run goes.
struct VerifierCollector {
  proto::FrameDecoder decoder;
  bool hello = false;
  bool done = false;
  std::string done_error;
  std::vector<proto::VerifierResultMsg> results;
  std::vector<std::string> diagnostics;

  void feed(const char* data, size_t len) {
    decoder.feed(data, len);
    while (auto f = decoder.next()) handle(*f);
    for (auto& d : decoder.take_diagnostics()) diagnostics.push_back("results port: " + d);
  }

  void handle(const proto::Frame& f) {
    switch (f.type) {
      case proto::MsgType::Hello: hello = true; break;
      case proto::MsgType::VerifierResult: {
        auto m = proto::decode_payload<proto::VerifierResultMsg>(f);
        if (!m) diagnostics.push_back(m.error().msg);
        else if (results.size() < proto::kMaxVerifierObjects * 2) results.push_back(std::move(*m));
        break;
      }
      case proto::MsgType::Log: {
        auto m = proto::decode_payload<proto::LogMsg>(f);
        if (m && (m->level == "warn" || m->level == "error") && diagnostics.size() < 64)
          diagnostics.push_back("guest " + m->level + ": " + m->text);
        break;
      }
      case proto::MsgType::Error: {
        auto m = proto::decode_payload<proto::ErrorMsg>(f);
        if (m) diagnostics.push_back("guest error: " + m->what + (m->detail.empty() ? "" : " (" + m->detail + ")"));
        break;
      }
      case proto::MsgType::Done: {
        auto m = proto::decode_payload<proto::DoneMsg>(f);
        done = true;
        if (m && !m->ok) done_error = m->error.empty() ? "the agent failed" : m->error;
        break;
      }
      default: break;
    }
  }
};

}  // namespace

Result<VerifierInput> read_verifier_input(const std::string& path) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0)
    return fail("'" + path + "' does not exist", "give the path of a BPF object (.bpf.o) or a scheduler binary");
  if (!S_ISREG(st.st_mode)) return fail("'" + path + "' is not a regular file");
  auto bytes = read_file(path, kMaxInputBytes);
  if (!bytes) return tl::unexpected(bytes.error());
  auto spans = find_bpf_objects(*bytes);
  if (!spans) return fail("'" + path + "': " + spans.error().msg, spans.error().hint);
  if (spans->size() > proto::kMaxVerifierObjects)
    return fail("'" + path + "' holds " + std::to_string(spans->size()) + " BPF objects, more than " +
                std::to_string(proto::kMaxVerifierObjects));
  VerifierInput in;
  in.path = path;
  for (const BpfObjectSpan& s : *spans) in.objects.push_back(bytes->substr(s.offset, s.size));
  return in;
}

void add_verifier_result(VerifierReport& report, const proto::VerifierResultMsg& msg, uint32_t object) {
  if (!msg.error.empty()) report.errors.push_back(msg.error);
  for (const proto::VerifierProgramMsg& pm : msg.programs) {
    VerifierProgram p;
    p.object = object;
    p.name = pm.name;
    p.section = pm.section;
    p.type = pm.type;
    p.attach = pm.attach;
    p.loaded = pm.loaded;
    p.stats = parse_verifier_stats(pm.log);
    p.log = pm.log;
    p.verified_insns = pm.verified_insns;
    if (pm.xlated_bytes) p.xlated_insns = *pm.xlated_bytes / 8;  // struct bpf_insn is 8 bytes
    p.jited_bytes = pm.jited_bytes;
    if (!pm.loaded) {
      p.error = pm.error;
      p.reached = pm.error.rfind(proto::kVerifierNotReached, 0) != 0;
      // The verifier's own last word, when the log has one.
      if (std::string why = verifier_stats_error(pm.log); !why.empty() && p.error.find(why) == std::string::npos)
        p.error += ": " + why;
      p.log_tail = last_lines(pm.log, kLogTailLines);
    }
    report.programs.push_back(std::move(p));
  }
  // The object failed before any program was tried (maps, BTF, open).
  if (!msg.loaded && msg.programs.empty() && !msg.libbpf_log.empty())
    report.errors.push_back("libbpf said:\n" + last_lines(msg.libbpf_log, kLogTailLines));
}

namespace {

// The objects to load, as files for the guest and a plan entry each, with
// which side ('a' or 'b') and which of its objects each entry is.
struct VerifierObjects {
  std::vector<GuestFile> files;
  proto::VerifierPlan plan;
  std::vector<std::pair<char, uint32_t>> owner;
};

Result<VerifierObjects> verifier_objects(const VerifierInput& a, const VerifierInput* b) {
  VerifierObjects out;
  std::vector<proto::FileSetEntry> set;
  for (auto [side, in] : {std::pair<char, const VerifierInput*>{'a', &a}, {'b', b}}) {
    if (!in) continue;
    for (size_t i = 0; i < in->objects.size(); ++i) {
      std::string p = guest_object_path(side, i);
      set.push_back(proto::FileSetEntry{p, in->objects[i].size()});
      out.files.push_back(GuestFile{p, "", 0644, in->objects[i]});
      out.plan.objects.push_back(p);
      out.owner.emplace_back(side, uint32_t(i));
    }
  }
  if (out.plan.objects.size() > proto::kMaxVerifierObjects)
    return fail("too many BPF objects to verify in one VM (" + std::to_string(out.plan.objects.size()) +
                ", at most " + std::to_string(proto::kMaxVerifierObjects) + ")");
  if (auto ok = proto::validate_file_set(set); !ok) return tl::unexpected(ok.error().context("BPF objects"));
  return out;
}

// The VM and the JOB (kind verifier, version 4) that load `objects`: a
// small guest of its own shape, booted like every run's.
Result<VmRunPlan> prepare_verifier_run(const std::string& artifacts_dir, const KernelRecord& kernel,
                                       const VerifierObjects& objects, const PipelineOptions& opts,
                                       const ProgressFn& progress) {
  progress("preparing initramfs");
  auto initrd = agent_initramfs(artifacts_dir);
  if (!initrd) return tl::unexpected(initrd.error());
  auto file_frames = encode_guest_files(objects.files);
  if (!file_frames) return tl::unexpected(file_frames.error());

  VmRunPlan p;
  p.file_frames = std::move(*file_frames);
  p.cfg = job_vm_config(kernel, *initrd, Topology{1, 1, 2, 1}, opts.memory_mb.value_or(256), opts.verbose);
  // Loading is quiet: a verifier at its instruction limit takes seconds
  // under KVM and much longer under TCG.
  p.cfg.no_output_timeout = std::chrono::seconds(240);
  p.cfg.overall_timeout = std::chrono::seconds(600);

  p.job.kind = proto::JobKind::kVerifier;
  p.job.version = proto::kJobVersionVerifier;
  p.job.verbose = opts.verbose;
  p.job.topology = p.cfg.topology.to_string();
  p.job.verifier = objects.plan;
  p.job.kernel_config = kernel_config_for_guest(kernel, "objects using __kconfig externs cannot load", p.notes);
  if (auto valid = proto::validate_job(p.job); !valid) return tl::unexpected(valid.error().context("verifier job"));
  return p;
}

// The reports from what the guest sent and how its VM ended: an object
// without a result says so.
VerifierRun verifier_reports(const KernelRecord& kernel, const VerifierInput& a, const VerifierInput* b,
                             const VerifierObjects& objects, const VerifierCollector& collector,
                             const VmOutcome& outcome, const std::vector<std::string>& notes) {
  VerifierRun run;
  run.a.path = a.path;
  run.a.kernel = kernel.version;
  if (b) {
    run.b.emplace();
    run.b->path = b->path;
    run.b->kernel = kernel.version;
  }
  run.accel = accel_name(outcome.accel);
  run.wall_s = outcome.wall_time.count() / 1000.0;
  const size_t count = objects.plan.objects.size();
  std::vector<bool> seen(count, false);
  for (const proto::VerifierResultMsg& m : collector.results) {
    if (m.object >= count || seen[m.object]) {
      run.diagnostics.push_back("guest sent a result for unknown object " + std::to_string(m.object));
      continue;
    }
    seen[m.object] = true;
    auto [side, index] = objects.owner[m.object];
    add_verifier_result(side == 'a' ? run.a : *run.b, m, index);
  }
  std::string ended = std::string("the VM ended (") + vm_end_name(outcome.end) + ")" +
                      (collector.done_error.empty() ? "" : ": " + collector.done_error);
  for (size_t i = 0; i < count; ++i) {
    if (seen[i]) continue;
    auto [side, index] = objects.owner[i];
    (side == 'a' ? run.a : *run.b).errors.push_back("object " + std::to_string(index) + ": no result; " + ended);
  }
  run.diagnostics.insert(run.diagnostics.end(), collector.diagnostics.begin(), collector.diagnostics.end());
  run.diagnostics.insert(run.diagnostics.end(), notes.begin(), notes.end());
  if (outcome.end != VmEnd::kPoweredOff) {
    run.diagnostics.push_back(ended);
    if (!outcome.console_tail.empty()) run.diagnostics.push_back("console: " + last_lines(outcome.console_tail, 15));
  }
  return run;
}

}  // namespace

Result<VerifierRun> run_verifier(db::Store& store, const KernelRecord& kernel, const VerifierInput& a,
                                 const VerifierInput* b, const PipelineOptions& opts) {
  ProgressFn progress = [&](const std::string& s) {
    if (opts.progress) opts.progress(s);
  };
  auto objects = verifier_objects(a, b);
  if (!objects) return tl::unexpected(objects.error());
  auto prepared = prepare_verifier_run(store.artifacts_dir(), kernel, *objects, opts, progress);
  if (!prepared) return tl::unexpected(prepared.error());

  VerifierCollector collector;
  const size_t count = objects->plan.objects.size();
  progress("booting " + kernel.version);
  auto outcome = run_job_vm(*prepared, [&](const char* data, size_t len) {
    bool had_hello = collector.hello;
    size_t before = collector.results.size();
    collector.feed(data, len);
    if (!had_hello && collector.hello) progress("guest agent up, loading");
    if (collector.results.size() != before)
      progress("verified " + std::to_string(collector.results.size()) + "/" + std::to_string(count));
  });
  if (!outcome) return tl::unexpected(outcome.error());
  collector.decoder.finish();
  return verifier_reports(kernel, a, b, *objects, collector, *outcome, prepared->notes);
}

}  // namespace ktstr::runner
