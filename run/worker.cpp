#include "run/worker.hpp"

#include "run/pipeline.hpp"
#include "core/fs.hpp"
#include "core/scenario.hpp"
#include "core/seed.hpp"
#include "kbuild/kernel_report.hpp"

#include <sys/resource.h>

#include <ctime>

namespace ktstr::runner {

nlohmann::json worker_request_json(const WorkerRequest& r) {
  nlohmann::json j = {{"ktstr_worker_request", 1},
                      {"test", r.test},
                      {"kernel", kbuild::kernel_json(r.kernel)},
                      {"artifacts", r.artifacts_dir},
                      {"runs", format_worker_runs(r.unit)},
                      {"repeat", r.options.repeat},
                      {"verbose", r.options.verbose},
                      {"auto_repro", r.options.auto_repro},
                      {"memory_mb", r.options.memory_mb}};
  if (!r.spec_toml.empty()) j["spec_toml"] = r.spec_toml;
  else j["spec_file"] = r.spec_file;
  // As text: a JSON number would not carry all 64 bits through every reader.
  if (r.options.seed) j["seed"] = std::to_string(*r.options.seed);
  if (r.overrides.topology) j["topo"] = r.overrides.topology->to_string();
  if (r.overrides.sched_args) j["sched_args"] = *r.overrides.sched_args;
  return j;
}

namespace {

Status read_overrides(const nlohmann::json& j, WorkerRequest& r) {
  if (j.contains("topo")) {
    auto t = Topology::parse(j.at("topo").get<std::string>());
    if (!t) return fail(t.error().context("the worker request's topology"));
    r.overrides.topology = *t;
  }
  if (j.contains("sched_args")) r.overrides.sched_args = j.at("sched_args").get<std::vector<std::string>>();
  return {};
}

}  // namespace

Result<WorkerRequest> parse_worker_request(std::string_view text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object() || j.value("ktstr_worker_request", 0) != 1) return fail("the worker request is not a request");
  try {
    WorkerRequest r;
    r.test = j.at("test").get<std::string>();
    r.spec_file = j.value("spec_file", "");
    r.spec_toml = j.value("spec_toml", "");
    if (r.test.empty() || r.spec_file.empty() == r.spec_toml.empty())
      return fail("the worker request names no test, or not exactly one of a spec file and a spec");
    auto kernel = kbuild::kernel_from_json(j.at("kernel").dump());
    if (!kernel) return tl::unexpected(kernel.error());
    r.kernel = std::move(*kernel);
    r.artifacts_dir = j.at("artifacts").get<std::string>();
    auto unit = parse_worker_runs(j.at("runs").get<std::string>());
    if (!unit) return tl::unexpected(unit.error());
    r.unit = *unit;
    r.options.repeat = j.at("repeat").get<unsigned>();
    r.options.verbose = j.at("verbose").get<bool>();
    r.options.auto_repro = j.at("auto_repro").get<bool>();
    r.options.memory_mb = j.at("memory_mb").get<unsigned>();
    if (j.contains("seed")) {
      auto seed = parse_seed(j.at("seed").get<std::string>(), "the worker request's seed");
      if (!seed) return tl::unexpected(seed.error());
      r.options.seed = *seed;
    }
    if (auto st = read_overrides(j, r); !st) return tl::unexpected(st.error());
    return r;
  } catch (const nlohmann::json::exception& e) {
    return fail(std::string("the worker request is malformed: ") + e.what());
  }
}

std::vector<std::string> worker_argv(const WorkerRequest& r) {
  return {exe_dir() + "/ktstr", "worker", worker_request_json(r).dump()};
}

Result<TestSpec> worker_test(const WorkerRequest& r) {
  auto specs = r.spec_toml.empty() ? load_spec_paths({r.spec_file}) : parse_spec_text(r.spec_toml, "command line");
  if (!specs) return tl::unexpected(specs.error());
  std::erase_if(*specs, [&](const TestSpec& s) { return s.name != r.test; });
  if (specs->size() != 1) return fail("the worker's test '" + r.test + "' is not in its spec");
  TestSpec spec = std::move(specs->front());
  if (auto st = apply_cell_overrides(spec, r.overrides); !st) return tl::unexpected(st.error());
  if (auto st = check_scheduler(spec); !st) return tl::unexpected(st.error());
  if (auto plan = plan_scenario(spec, spec.topology); !plan) return tl::unexpected(plan.error());
  return spec;
}

WorkerOutput run_worker(const WorkerRequest& r, const TestSpec& spec) {
  Progress silent(false);
  int64_t started = std::time(nullptr);
  UnitRuns done = run_unit(r.artifacts_dir, spec, r.kernel, r.options, r.unit.slice(), r.unit.count, silent);
  WorkerOutput w = unit_output(done);
  w.started_at = started;
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  w.peak_rss_kb = ru.ru_maxrss;
  return w;
}

}  // namespace ktstr::runner
