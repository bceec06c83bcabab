#include "bisectrun/driver.hpp"

#include "bisectrun/names.hpp"
#include "kbuild/kernel_cache.hpp"
#include "run/pipeline.hpp"

#include <cstdio>

namespace ktstr::bisectrun {
namespace {

// The flags of one kind of target.
Result<TargetParams> target_of(const BisectRequest& a) {
  TargetParams tp;
  if (!a.sched_repo.empty()) {
    tp.kind = TargetKind::Sched;
    if (a.good.empty() || a.bad.empty())
      return fail("bisect: --sched-repo needs --good and --bad", "e.g. --good v1.0.2 --bad main");
    if (a.build.empty() || a.artifact.empty())
      return fail("bisect: --sched-repo needs --build and --artifact",
                  "e.g. --build 'make -C scheds/c scx_qmap' --artifact scheds/c/build/scx_qmap");
    tp.repo = a.sched_repo;
    tp.good = a.good;
    tp.bad = a.bad;
    tp.build = a.build;
    tp.artifact = a.artifact;
    tp.first_parent = a.first_parent;
  } else if (!a.kernel_repo.empty()) {
    tp.kind = TargetKind::KernelRepo;
    if (a.good.empty() || a.bad.empty())
      return fail("bisect: --kernel-repo needs --good and --bad", "e.g. --good v6.12 --bad sched_ext/for-next");
    if (!a.build.empty() || !a.artifact.empty())
      return fail("bisect: --kernel-repo takes no --build or --artifact", "each commit is built with 'ktstr kernel build'");
    if (a.options.verify_culprit)
      return fail("--verify-culprit is not available for kernel commits", "verify the culprit by hand");
    tp.repo = a.kernel_repo;
    tp.good = a.good;
    tp.bad = a.bad;
    tp.first_parent = a.first_parent;
  } else {
    tp.kind = TargetKind::KernelRange;
    if (!a.good.empty() || !a.bad.empty() || !a.build.empty() || !a.artifact.empty())
      return fail("bisect: --kernel-range takes no --good, --bad, --build or --artifact",
                  "the range A..B names the good and bad versions");
    if (a.options.verify_culprit)
      return fail("--verify-culprit needs a scheduler repository", "kernel versions cannot be reverted");
    tp.range = a.kernel_range;
  }
  return tp;
}

// The signature and its test as bisect runs it, and what the kind needs of
// them: a scheduler bisect's kernel (--kernel, else the crash's, else the
// test's); a kernel bisect's test must run a scheduler (a range also keeps
// the versions it knows, for resume).
Result<BisectSignature> signature_for(db::Store& store, const BisectRequest& req, TargetParams& tp) {
  auto sig = resolve_signature(store, req.signature, req.spec, req.filters);
  if (!sig) return tl::unexpected(sig.error());
  sig->test = bisect_run_spec(*sig->test);
  if (tp.kind == TargetKind::Sched) {
    tp.kernel = !req.kernel.empty() ? req.kernel : !sig->kernel_ref.empty() ? sig->kernel_ref : sig->test->kernel;
    return sig;
  }
  if (!req.kernel.empty())
    return fail(std::string("--kernel does not go with --") + target_kind_name(tp.kind),
                "the bisect builds or names the kernels");
  if (!sig->test->uses_bpf_scheduler())
    return fail("test '" + sig->test->name + "' runs no sched_ext scheduler", "give a test with a scheduler via --spec");
  if (auto st = runner::check_scheduler(*sig->test); !st) return tl::unexpected(st.error());
  if (tp.kind == TargetKind::KernelRange) {
    auto versions = known_kernel_versions(store);
    if (!versions) return tl::unexpected(versions.error());
    tp.versions = *versions;
  }
  return sig;
}

}  // namespace

Result<TargetParams> check_request(const BisectRequest& req) {
  int targets = !req.sched_repo.empty() + !req.kernel_range.empty() + !req.kernel_repo.empty();
  if (targets != 1)
    return fail("bisect: give exactly one of --sched-repo, --kernel-range, --kernel-repo", "see 'ktstr bisect --help'");
  const BisectOptions& o = req.options;
  if (!(o.confidence > 0 && o.confidence < 1))
    return fail("--confidence must be between 0 and 1", "e.g. --confidence 0.95");
  if (o.confirm_runs < 1 || o.confirm_runs > 100) return fail("--confirm-runs must be 1 to 100", "e.g. --confirm-runs 2");
  if (o.max_runs < 0) return fail("--max-runs must not be negative", "0 lets the engine choose");
  auto tp = target_of(req);
  if (!tp) return tp;
  if (o.verify_culprit && o.fixed) return fail("--verify-culprit and --fixed do not go together", "verify a fix by hand");
  return tp;
}

Result<BisectOutcome> start_bisect(db::Store& store, const BisectRequest& req, TargetParams tp, BisectReporter& out) {
  auto sig = signature_for(store, req, tp);
  if (!sig) return tl::unexpected(sig.error());
  auto target = open_target(store, tp);
  if (!target) return tl::unexpected(target.error());
  // Resume must see the same commits even when branches move.
  tp.bad = (*target)->bad();
  if (tp.kind != TargetKind::KernelRange) tp.good = (*target)->good();

  SessionParams params;
  params.target = tp;
  params.signature = *sig;
  params.options = req.options;
  params.spec_file = req.spec;
  BisectSession session(store, **target, params, out);
  if (auto st = session.preflight(); !st) return tl::unexpected(st.error());
  if (tp.kind == TargetKind::Sched) {
    // Resolved after the builds (a broken build command needs no kernel) and
    // before any row; kept by id so a resumed session runs the same kernel.
    auto k = scheduler_kernel(store, tp.kernel);
    if (!k) return tl::unexpected(k.error());
    (*target)->set_kernel(*k);
    params.target.kernel = k->id;
    session.set_params(params);
  }
  return session.start();
}

Result<BisectOutcome> resume_bisect(db::Store& store, const std::string& id, BisectReporter& out) {
  auto s = get_session(store, id);
  if (!s) return tl::unexpected(s.error());
  if (parse_session_state(s->state) != SessionState::Running)
    return fail("bisect " + id + " has already finished (" + s->state + ")", "see 'ktstr bisect log " + id + "'");
  auto params = SessionParams::from_json(s->params_json);
  if (!params) return tl::unexpected(params.error());
  if (!params->signature.test) return fail("bisect " + id + " has no test stored");
  auto target = open_target(store, params->target);
  if (!target) return tl::unexpected(target.error());
  if (params->target.kind == TargetKind::Sched) {
    auto k = scheduler_kernel(store, params->target.kernel);
    if (!k) return tl::unexpected(k.error());
    (*target)->set_kernel(*k);
  }
  auto steps = db::bisect_steps(store, s->id);
  if (!steps) return tl::unexpected(steps.error());
  BisectSession session(store, **target, *params, out);
  return session.resume(*s, *steps);
}

Result<int64_t> parse_session_id(const std::string& s) {
  try {
    size_t used = 0;
    long long v = std::stoll(s, &used);
    if (used == s.size() && v > 0) return v;
  } catch (...) {
  }
  return fail("'" + s + "' is not a bisect session id", "see 'ktstr bisect list'");
}

Result<db::BisectSession> get_session(db::Store& store, const std::string& id) {
  auto n = parse_session_id(id);
  if (!n) return tl::unexpected(n.error());
  auto s = db::get_bisect(store, *n);
  if (!s) return tl::unexpected(s.error());
  if (!*s) return fail("no bisect session " + id, "see 'ktstr bisect list'");
  return **s;
}

Result<KernelRecord> scheduler_kernel(db::Store& store, const std::string& ref) {
  auto k = kbuild::resolve_kernel(store, ref, [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); });
  if (!k) return tl::unexpected(k.error());
  if (!k->sched_ext)
    return fail("kernel '" + k->version + "' (" + k->id + ") has no sched_ext",
                "use a kernel with CONFIG_SCHED_CLASS_EXT=y, e.g. 'ktstr kernel fetch'");
  return *k;
}

Result<std::vector<SessionSummary>> list_sessions(db::Store& store) {
  auto sessions = db::list_bisects(store);
  if (!sessions) return tl::unexpected(sessions.error());
  std::vector<SessionSummary> out;
  for (auto& s : *sessions) {
    auto steps = db::bisect_steps(store, s.id);
    if (!steps) return tl::unexpected(steps.error());
    auto r = nlohmann::json::parse(s.result_json.empty() ? "{}" : s.result_json, nullptr, false);
    std::string culprit;
    if (r.is_object() && r.contains("culprit") && r["culprit"].is_object()) culprit = r["culprit"].value("id", "");
    out.push_back({s, culprit, steps->size()});
  }
  return out;
}

Result<SessionLog> session_log(db::Store& store, const std::string& id) {
  auto s = get_session(store, id);
  if (!s) return tl::unexpected(s.error());
  auto steps = db::bisect_steps(store, s->id);
  if (!steps) return tl::unexpected(steps.error());
  return SessionLog{*s, *steps};
}

}  // namespace ktstr::bisectrun
