#include "guest/proto/messages.hpp"

#include "guest/proto/json_fields.hpp"

#include <limits>
#include <stdexcept>
#include <string_view>

namespace ktstr::proto {

using nlohmann::json;

using detail::get_field;
using detail::get_optional;
using detail::get_signed;
using detail::get_unsigned;

namespace {

bool valid_cgroup_name(std::string_view name) {
  if (name.empty() || name.size() > 64 || name == "." || name == "..") return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

const char* work_kind_name(WorkKind kind) {
  switch (kind) {
    case WorkKind::Spin: return "spin";
    case WorkKind::Yield: return "yield";
    case WorkKind::Mixed: return "mixed";
    case WorkKind::Sleep: return "sleep";
    case WorkKind::Futex: return "futex";
    case WorkKind::Pipe: return "pipe";
    case WorkKind::Fork: return "fork";
    case WorkKind::Fault: return "fault";
    case WorkKind::Periodic: return "periodic";
    case WorkKind::Affinity: return "affinity";
  }
  return "spin";
}

bool parse_work_kind(const std::string& name, WorkKind& out) {
  for (WorkKind k : {WorkKind::Spin, WorkKind::Yield, WorkKind::Mixed, WorkKind::Sleep, WorkKind::Futex,
                     WorkKind::Pipe, WorkKind::Fork, WorkKind::Fault, WorkKind::Periodic, WorkKind::Affinity})
    if (name == work_kind_name(k)) {
      out = k;
      return true;
    }
  return false;
}

void to_json(json& j, const WorkKind& v) { j = work_kind_name(v); }
void from_json(const json& j, WorkKind& v) {
  std::string s = j.get<std::string>();
  if (!parse_work_kind(s, v)) throw std::runtime_error("unknown work kind '" + s + "'");
}

void to_json(json& j, const HelloMsg& v) {
  j = {{"agent_version", v.agent_version}, {"kernel_release", v.kernel_release}, {"boot_ms", v.boot_ms}};
}
void from_json(const json& j, HelloMsg& v) {
  get_field(j, "agent_version", v.agent_version);
  get_field(j, "kernel_release", v.kernel_release);
  get_unsigned(j, "boot_ms", v.boot_ms);
}

void to_json(json& j, const CgroupPlan& v) {
  j = {{"name", v.name}, {"workers", v.workers}, {"work", v.work}, {"cpus", v.cpus}};
  if (v.rate_hz) j["rate_hz"] = v.rate_hz;
  if (v.period_us) j["period_us"] = v.period_us;
  if (v.runtime_us) j["runtime_us"] = v.runtime_us;
  if (v.interval_us) j["interval_us"] = v.interval_us;
  if (v.nice) j["nice"] = v.nice;
  if (v.policy != "normal") j["policy"] = v.policy;
  if (v.weight != 100) j["weight"] = v.weight;
}
void from_json(const json& j, CgroupPlan& v) {
  get_field(j, "name", v.name);
  get_unsigned(j, "workers", v.workers);
  get_field(j, "work", v.work);
  get_optional(j, "cpus", v.cpus);
  for (auto [key, field] : {std::pair{"rate_hz", &CgroupPlan::rate_hz}, std::pair{"period_us", &CgroupPlan::period_us},
                            std::pair{"runtime_us", &CgroupPlan::runtime_us},
                            std::pair{"interval_us", &CgroupPlan::interval_us}})
    if (j.contains(key)) get_unsigned(j, key, v.*field);
  if (j.contains("nice")) get_signed(j, "nice", v.nice);
  get_optional(j, "policy", v.policy);
  if (j.contains("weight")) get_unsigned(j, "weight", v.weight);
}

bool job_needs_work_types(const JobMsg& job) {
  for (const CgroupPlan& cg : job.scenario.cgroups)
    if (cg.work > WorkKind::Mixed || cg.rate_hz || cg.period_us || cg.runtime_us || cg.interval_us || cg.nice ||
        cg.policy != "normal")
      return true;
  return false;
}

bool is_repeat_job(const JobMsg& job) {
  if (job.kind != JobKind::kRun) return false;
  return job.version == 2 || (job.version >= kJobVersionWorkTypes && job.version != kJobVersionVerifier &&
                              job.repeat > 1);
}

const char* job_kind_name(JobKind kind) {
  switch (kind) {
    case JobKind::kRun: return "run";
    case JobKind::kVerifier: return "verifier";
  }
  return "run";
}

bool parse_job_kind(const std::string& name, JobKind& out) {
  for (JobKind k : {JobKind::kRun, JobKind::kVerifier})
    if (name == job_kind_name(k)) {
      out = k;
      return true;
    }
  return false;
}

JobKind job_kind_of_version(uint32_t version) {
  return version == kJobVersionVerifier ? JobKind::kVerifier : JobKind::kRun;
}

void to_json(json& j, const JobKind& v) { j = job_kind_name(v); }
void from_json(const json& j, JobKind& v) {
  if (!j.is_string()) throw std::runtime_error("field 'kind' must be a string");
  std::string s = j.get<std::string>();
  if (!parse_job_kind(s, v)) throw std::runtime_error("unknown job kind '" + s + "'");
}

void to_json(json& j, const Scenario& v) {
  j = {{"cgroups", v.cgroups}, {"duration_ms", v.duration_ms}};
  if (!v.steps.empty()) j["steps"] = v.steps;
}
void from_json(const json& j, Scenario& v) {
  get_field(j, "cgroups", v.cgroups);
  get_unsigned(j, "duration_ms", v.duration_ms);
  v.steps.clear();
  get_optional(j, "steps", v.steps);
}

void to_json(json& j, const SchedulerPlan& v) {
  j = {{"path", v.path}, {"args", v.args}, {"attach_timeout_ms", v.attach_timeout_ms}};
}
void from_json(const json& j, SchedulerPlan& v) {
  get_field(j, "path", v.path);
  get_optional(j, "args", v.args);
  if (j.contains("attach_timeout_ms")) get_unsigned(j, "attach_timeout_ms", v.attach_timeout_ms);
}

void to_json(json& j, const MapWritePlan& v) {
  j = {{"map", v.map}, {"var", v.var}, {"value", v.value}, {"after_ms", v.after_ms}};
}
void from_json(const json& j, MapWritePlan& v) {
  get_field(j, "map", v.map);
  get_field(j, "var", v.var);
  get_signed(j, "value", v.value);
  get_unsigned(j, "after_ms", v.after_ms);
}

void to_json(json& j, const JobMsg& v) {
  j = {{"kind", v.kind},         {"version", v.version},     {"scenario", v.scenario},
       {"verbose", v.verbose},   {"topology", v.topology},   {"scheduler", v.scheduler},
       {"map_writes", v.map_writes}, {"monitor_interval_ms", v.monitor_interval_ms}};
  if (v.probes) j["probes"] = *v.probes;
  if (v.verifier) j["verifier"] = *v.verifier;
  if (v.version == 2 || v.version == kJobVersionWorkTypes || v.version == kJobVersionSteps) {
    j["repeat"] = v.repeat;
    j["settle_ms"] = v.settle_ms;
  }
  if (!v.kernel_config.empty()) j["kernel_config"] = v.kernel_config;
  if (v.seed) j["seed"] = *v.seed;
}
void from_json(const json& j, JobMsg& v) {
  get_unsigned(j, "version", v.version);
  // An older host sends no kind: its version said it.
  if (j.contains("kind")) get_field(j, "kind", v.kind);
  else v.kind = job_kind_of_version(v.version);
  if (j.contains("repeat")) get_unsigned(j, "repeat", v.repeat);
  if (j.contains("settle_ms")) get_unsigned(j, "settle_ms", v.settle_ms);
  get_field(j, "scenario", v.scenario);
  get_optional(j, "verbose", v.verbose);
  get_optional(j, "topology", v.topology);
  get_optional(j, "scheduler", v.scheduler);
  get_optional(j, "map_writes", v.map_writes);
  if (j.contains("monitor_interval_ms")) get_unsigned(j, "monitor_interval_ms", v.monitor_interval_ms);
  v.probes.reset();
  if (j.contains("probes") && !j.at("probes").is_null()) v.probes = j.at("probes").get<ProbePlan>();
  v.verifier.reset();
  if (j.contains("verifier") && !j.at("verifier").is_null()) v.verifier = j.at("verifier").get<VerifierPlan>();
  get_optional(j, "kernel_config", v.kernel_config);
  v.seed.reset();
  if (j.contains("seed") && !j.at("seed").is_null()) {
    uint64_t seed = 0;
    get_unsigned(j, "seed", seed);
    v.seed = seed;
  }
}

Status validate_job(const JobMsg& job) {
  if (job.version < 1 || job.version > kJobVersionSteps)
    return fail("unsupported job version " + std::to_string(job.version));
  if (job.version != kJobVersionSteps && job_needs_steps(job))
    return fail("a version " + std::to_string(job.version) + " job cannot carry steps or cgroup weights");
  if (auto ok = validate_steps(job.scenario); !ok) return ok;
  if (job.version < kJobVersionWorkTypes && job_needs_work_types(job))
    return fail("a version " + std::to_string(job.version) + " job cannot carry work types past 'mixed' or their settings");
  if ((job.version == 1 || job.version == kJobVersionVerifier) && job.repeat != 1)
    return fail("a version " + std::to_string(job.version) + " job cannot repeat");
  // An older agent reads the version alone: a kind it would read otherwise
  // is refused here too, so a job means the same to every agent.
  if (job.kind != job_kind_of_version(job.version))
    return fail(std::string("a '") + job_kind_name(job.kind) + "' job cannot be version " +
                std::to_string(job.version));
  if ((job.kind == JobKind::kVerifier) != job.verifier.has_value())
    return fail(job.kind == JobKind::kVerifier ? "a verifier job needs a verifier plan"
                                               : "a verifier plan needs a verifier job (version 4)");
  if (job.verifier) {
    if (!job.scheduler.path.empty() || !job.scenario.cgroups.empty() || job.probes || !job.map_writes.empty())
      return fail("a verifier job runs nothing else (no scheduler, workers, probes or map writes)");
    if (auto ok = validate_verifier_plan(*job.verifier); !ok) return ok;
    if (job.seed) return fail("a verifier job runs no scheduler to seed");
  }
  if (job.repeat < 1 || job.repeat > kMaxRepeat)
    return fail("job repeat " + std::to_string(job.repeat) + " is outside 1-" + std::to_string(kMaxRepeat));
  if (job.settle_ms > kMaxSettleMs)
    return fail("job settle time " + std::to_string(job.settle_ms) + " ms exceeds " + std::to_string(kMaxSettleMs) + " ms");
  if (job.scenario.duration_ms > kMaxDurationMs)
    return fail("job duration " + std::to_string(job.scenario.duration_ms) + " ms exceeds " +
                std::to_string(kMaxDurationMs) + " ms");
  uint64_t workers = 0;
  for (const CgroupPlan& cg : job.scenario.cgroups) {
    if (!valid_cgroup_name(cg.name))
      return fail("invalid cgroup name '" + cg.name + "'",
                  "use 1-64 characters from [A-Za-z0-9_.-]");
    if (cg.weight < 1 || cg.weight > 10000)
      return fail("cgroup '" + cg.name + "' has weight " + std::to_string(cg.weight));
    if (cg.nice < -20 || cg.nice > 19) return fail("cgroup '" + cg.name + "' has nice " + std::to_string(cg.nice));
    if (cg.policy != "normal" && cg.policy != "batch" && cg.policy != "idle")
      return fail("cgroup '" + cg.name + "' has unknown policy '" + cg.policy + "'");
    if (cg.work == WorkKind::Sleep && (cg.rate_hz == 0 || cg.rate_hz > 100000))
      return fail("cgroup '" + cg.name + "' sleeps at " + std::to_string(cg.rate_hz) + " Hz");
    if (cg.work == WorkKind::Periodic && (cg.period_us < 100 || cg.runtime_us == 0 || cg.runtime_us >= cg.period_us))
      return fail("cgroup '" + cg.name + "' has period " + std::to_string(cg.period_us) + " us and runtime " +
                  std::to_string(cg.runtime_us) + " us");
    if (cg.work == WorkKind::Affinity && cg.interval_us < 100)
      return fail("cgroup '" + cg.name + "' changes affinity every " + std::to_string(cg.interval_us) + " us");
    for (const CgroupPlan& other : job.scenario.cgroups)
      if (&other != &cg && other.name == cg.name) return fail("duplicate cgroup '" + cg.name + "'");
    workers += cg.workers;
  }
  if (workers > kMaxWorkersPerJob)
    return fail("job asks for " + std::to_string(workers) + " workers, more than " +
                std::to_string(kMaxWorkersPerJob));
  if (job.scheduler.path.empty() && !job.map_writes.empty())
    return fail("job has map writes but no scheduler");
  if (!job.scheduler.path.empty() && job.scheduler.path.front() != '/')
    return fail("scheduler path '" + job.scheduler.path + "' is not absolute");
  if (job.scheduler.args.size() > kMaxSchedArgs)
    return fail("scheduler has " + std::to_string(job.scheduler.args.size()) + " arguments, more than " +
                std::to_string(kMaxSchedArgs));
  if (job.map_writes.size() > kMaxMapWrites)
    return fail("job has " + std::to_string(job.map_writes.size()) + " map writes, more than " +
                std::to_string(kMaxMapWrites));
  for (const MapWritePlan& w : job.map_writes)
    if (w.map.empty() || w.var.empty() || w.after_ms > kMaxDurationMs)
      return fail("invalid map write '" + w.map + "' '" + w.var + "'");
  if (job.monitor_interval_ms < 10)
    return fail("monitor interval " + std::to_string(job.monitor_interval_ms) + " ms is below 10 ms");
  if (job.scheduler.attach_timeout_ms > kMaxDurationMs)
    return fail("attach timeout " + std::to_string(job.scheduler.attach_timeout_ms) + " ms is too long");
  if (job.kernel_config.size() > kMaxKernelConfigBytes)
    return fail("kernel config of " + std::to_string(job.kernel_config.size()) + " bytes exceeds " +
                std::to_string(kMaxKernelConfigBytes));
  if (job.probes) {
    if (job.scheduler.path.empty()) return fail("job has probes but no scheduler");
    if (auto ok = validate_probe_plan(*job.probes); !ok) return ok;
  }
  return {};
}

void to_json(json& j, const StageMsg& v) { j = {{"stage", v.stage}, {"t_ms", v.t_ms}}; }
void from_json(const json& j, StageMsg& v) {
  get_field(j, "stage", v.stage);
  get_unsigned(j, "t_ms", v.t_ms);
}

void to_json(json& j, const TopologyMsg& v) {
  j = {{"cpus_online", v.cpus_online}, {"cpus", v.cpus}, {"llc_groups", v.llc_groups},
       {"numa_nodes", v.numa_nodes}, {"smt_groups", v.smt_groups}};
}
void from_json(const json& j, TopologyMsg& v) {
  get_field(j, "cpus_online", v.cpus_online);
  get_unsigned(j, "cpus", v.cpus);
  get_field(j, "llc_groups", v.llc_groups);
  get_field(j, "numa_nodes", v.numa_nodes);
  get_field(j, "smt_groups", v.smt_groups);
}

void to_json(json& j, const WorkerMsg& v) {
  j = {{"cgroup", v.cgroup},         {"index", v.index},       {"pid", v.pid},
       {"work", v.work},             {"iterations", v.iterations}, {"cpu_time_ns", v.cpu_time_ns},
       {"wall_ns", v.wall_ns},       {"migrations", v.migrations}, {"max_gap_ns", v.max_gap_ns},
       {"cpus_used", v.cpus_used}};
  if (!v.counters.empty()) j["counters"] = v.counters;
  if (!v.moved_to.empty()) j["moved_to"] = v.moved_to;
  if (v.cpus_changed) j["cpus_since_change"] = v.cpus_since_change;
}
void from_json(const json& j, WorkerMsg& v) {
  get_field(j, "cgroup", v.cgroup);
  get_unsigned(j, "index", v.index);
  if (!j.at("pid").is_number_integer()) throw std::runtime_error("field 'pid' must be an integer");
  get_field(j, "pid", v.pid);
  get_field(j, "work", v.work);
  get_unsigned(j, "iterations", v.iterations);
  get_unsigned(j, "cpu_time_ns", v.cpu_time_ns);
  get_unsigned(j, "wall_ns", v.wall_ns);
  get_unsigned(j, "migrations", v.migrations);
  get_unsigned(j, "max_gap_ns", v.max_gap_ns);
  v.cpus_used.clear();
  for (const json& cpu : j.at("cpus_used")) {
    if (!cpu.is_number_unsigned()) throw std::runtime_error("field 'cpus_used' must hold CPU ids");
    v.cpus_used.push_back(cpu.get<uint32_t>());
  }
  v.counters.clear();
  if (j.contains("counters")) {
    const json& c = j.at("counters");
    if (!c.is_object()) throw std::runtime_error("field 'counters' must be an object");
    for (auto it = c.begin(); it != c.end(); ++it) {
      if (!it.value().is_number_unsigned())
        throw std::runtime_error("counter '" + it.key() + "' must be a non-negative integer");
      v.counters[it.key()] = it.value().get<uint64_t>();
    }
  }
  v.moved_to.clear();
  get_optional(j, "moved_to", v.moved_to);
  v.cpus_since_change.clear();
  v.cpus_changed = j.contains("cpus_since_change");
  if (v.cpus_changed)
    for (const json& cpu : j.at("cpus_since_change")) {
      if (!cpu.is_number_unsigned()) throw std::runtime_error("field 'cpus_since_change' must hold CPU ids");
      v.cpus_since_change.push_back(cpu.get<uint32_t>());
    }
}

void to_json(json& j, const LogMsg& v) { j = {{"level", v.level}, {"text", v.text}}; }
void from_json(const json& j, LogMsg& v) {
  get_field(j, "level", v.level);
  get_field(j, "text", v.text);
}

void to_json(json& j, const ErrorMsg& v) { j = {{"what", v.what}, {"detail", v.detail}}; }
void from_json(const json& j, ErrorMsg& v) {
  get_field(j, "what", v.what);
  get_optional(j, "detail", v.detail);
}

void to_json(json& j, const DoneMsg& v) { j = {{"ok", v.ok}, {"error", v.error}}; }
void from_json(const json& j, DoneMsg& v) {
  get_field(j, "ok", v.ok);
  get_optional(j, "error", v.error);
}

void to_json(json& j, const RepeatBeginMsg& v) { j = {{"index", v.index}, {"t_ms", v.t_ms}}; }
void from_json(const json& j, RepeatBeginMsg& v) {
  get_unsigned(j, "index", v.index);
  get_unsigned(j, "t_ms", v.t_ms);
}

void to_json(json& j, const RepeatEndMsg& v) {
  j = {{"index", v.index}, {"ok", v.ok},     {"error", v.error},
       {"sched_state", v.sched_state}, {"next", v.next}, {"t_ms", v.t_ms}};
}
void from_json(const json& j, RepeatEndMsg& v) {
  get_unsigned(j, "index", v.index);
  get_field(j, "ok", v.ok);
  get_optional(j, "error", v.error);
  get_optional(j, "sched_state", v.sched_state);
  get_field(j, "next", v.next);
  get_unsigned(j, "t_ms", v.t_ms);
}

void to_json(json& j, const SchedStartedMsg& v) { j = {{"pid", v.pid}, {"t_ms", v.t_ms}}; }
void from_json(const json& j, SchedStartedMsg& v) {
  get_signed(j, "pid", v.pid);
  get_unsigned(j, "t_ms", v.t_ms);
}

void to_json(json& j, const SchedStateMsg& v) {
  j = {{"state", v.state}, {"ops", v.ops}, {"t_ms", v.t_ms}};
}
void from_json(const json& j, SchedStateMsg& v) {
  get_field(j, "state", v.state);
  get_optional(j, "ops", v.ops);
  get_unsigned(j, "t_ms", v.t_ms);
}

void to_json(json& j, const SchedOutputMsg& v) {
  j = {{"stream", v.stream}, {"text", v.text}, {"truncated", v.truncated}, {"t_ms", v.t_ms}};
}
void from_json(const json& j, SchedOutputMsg& v) {
  get_field(j, "stream", v.stream);
  if (v.stream != "stdout" && v.stream != "stderr")
    throw std::runtime_error("unknown stream '" + v.stream + "'");
  get_field(j, "text", v.text);
  get_optional(j, "truncated", v.truncated);
  get_unsigned(j, "t_ms", v.t_ms);
}

void to_json(json& j, const SchedExitedMsg& v) {
  j = {{"pid", v.pid},       {"exit_code", v.exit_code}, {"signal", v.signal},
       {"stopped_by_agent", v.stopped_by_agent}, {"t_ms", v.t_ms}};
}
void from_json(const json& j, SchedExitedMsg& v) {
  get_signed(j, "pid", v.pid);
  get_signed(j, "exit_code", v.exit_code);
  get_signed(j, "signal", v.signal);
  get_optional(j, "stopped_by_agent", v.stopped_by_agent);
  get_unsigned(j, "t_ms", v.t_ms);
}

void to_json(json& j, const MapWriteResultMsg& v) {
  j = {{"map", v.map},     {"var", v.var},   {"value", v.value}, {"ok", v.ok},
       {"resolved_map", v.resolved_map}, {"error", v.error}, {"hint", v.hint}, {"t_ms", v.t_ms}};
}
void from_json(const json& j, MapWriteResultMsg& v) {
  get_field(j, "map", v.map);
  get_field(j, "var", v.var);
  get_signed(j, "value", v.value);
  get_field(j, "ok", v.ok);
  get_optional(j, "resolved_map", v.resolved_map);
  get_optional(j, "error", v.error);
  get_optional(j, "hint", v.hint);
  get_unsigned(j, "t_ms", v.t_ms);
}

void to_json(json& j, const KernelLogMsg& v) {
  j = {{"source", v.source}, {"text", v.text}, {"truncated", v.truncated}, {"t_ms", v.t_ms}};
}
void from_json(const json& j, KernelLogMsg& v) {
  get_field(j, "source", v.source);
  if (v.source != "trace" && v.source != "dmesg")
    throw std::runtime_error("unknown kernel log source '" + v.source + "'");
  get_field(j, "text", v.text);
  get_optional(j, "truncated", v.truncated);
  get_unsigned(j, "t_ms", v.t_ms);
}

void to_json(json& j, const MonitorMsg& v) {
  j = {{"t_ms", v.t_ms},           {"nr_running", v.nr_running}, {"events", v.events},
       {"dsq_depth", v.dsq_depth}, {"sched_state", v.sched_state}};
  if (!v.nr_switches.empty()) j["nr_switches"] = v.nr_switches;
}
void from_json(const json& j, MonitorMsg& v) {
  get_unsigned(j, "t_ms", v.t_ms);
  v.nr_running.clear();
  for (const json& n : j.at("nr_running")) {
    if (!n.is_number_unsigned() || n.get<uint64_t>() > std::numeric_limits<uint32_t>::max())
      throw std::runtime_error("field 'nr_running' must hold counts");
    v.nr_running.push_back(n.get<uint32_t>());
  }
  v.events.clear();
  const json& events = j.at("events");
  if (!events.is_object()) throw std::runtime_error("field 'events' must be an object");
  for (auto it = events.begin(); it != events.end(); ++it) {
    if (!it->is_number_integer()) throw std::runtime_error("event '" + it.key() + "' must be an integer");
    v.events[it.key()] = it->get<int64_t>();
  }
  get_signed(j, "dsq_depth", v.dsq_depth);
  get_optional(j, "sched_state", v.sched_state);
  v.nr_switches.clear();
  if (j.contains("nr_switches"))
    for (const json& n : j.at("nr_switches")) {
      if (!n.is_number_unsigned()) throw std::runtime_error("field 'nr_switches' must hold counts");
      v.nr_switches.push_back(n.get<uint64_t>());
    }
}

std::string dump_json(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Error payload_error(MsgType type, const char* what) {
  std::string_view text(what);
  // nlohmann prefixes "[json.exception.type_error.302] "; users need the rest.
  if (!text.empty() && text.front() == '[') {
    size_t end = text.find("] ");
    if (end != std::string_view::npos) text.remove_prefix(end + 2);
  }
  return Error("decoding '" + msg_type_name(type) + "' payload: " + std::string(text));
}

Result<json> parse_payload(const Frame& frame, MsgType expected) {
  if (frame.type != expected)
    return fail("expected a '" + msg_type_name(expected) + "' frame, got '" +
                msg_type_name(frame.type) + "'");
  json j = json::parse(frame.payload, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return fail(payload_error(expected, "not valid JSON"));
  if (!j.is_object()) return fail(payload_error(expected, "not a JSON object"));
  return j;
}

}  // namespace ktstr::proto
