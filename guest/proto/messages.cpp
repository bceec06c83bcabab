#include "guest/proto/messages.hpp"

#include <limits>
#include <stdexcept>
#include <string_view>

namespace ktstr::proto {

using nlohmann::json;

namespace {

// nlohmann converts -1 or 2.5 to an unsigned field silently; the wire
// format does not allow that.
template <typename U>
void get_unsigned(const json& j, const char* key, U& out) {
  const json& v = j.at(key);
  if (!v.is_number_unsigned())
    throw std::runtime_error(std::string("field '") + key + "' must be a non-negative integer");
  uint64_t n = v.get<uint64_t>();
  if (n > std::numeric_limits<U>::max())
    throw std::runtime_error(std::string("field '") + key + "' is out of range");
  out = static_cast<U>(n);
}

template <typename T>
void get_field(const json& j, const char* key, T& out) {
  j.at(key).get_to(out);
}

template <typename T>
void get_optional(const json& j, const char* key, T& out) {
  if (j.contains(key) && !j.at(key).is_null()) j.at(key).get_to(out);
}

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
  }
  return "spin";
}

void to_json(json& j, const WorkKind& v) { j = work_kind_name(v); }
void from_json(const json& j, WorkKind& v) {
  std::string s = j.get<std::string>();
  if (s == "spin") v = WorkKind::Spin;
  else if (s == "yield") v = WorkKind::Yield;
  else if (s == "mixed") v = WorkKind::Mixed;
  else throw std::runtime_error("unknown work kind '" + s + "'");
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
}
void from_json(const json& j, CgroupPlan& v) {
  get_field(j, "name", v.name);
  get_unsigned(j, "workers", v.workers);
  get_field(j, "work", v.work);
  get_optional(j, "cpus", v.cpus);
}

void to_json(json& j, const Scenario& v) {
  j = {{"cgroups", v.cgroups}, {"duration_ms", v.duration_ms}};
}
void from_json(const json& j, Scenario& v) {
  get_field(j, "cgroups", v.cgroups);
  get_unsigned(j, "duration_ms", v.duration_ms);
}

void to_json(json& j, const JobMsg& v) {
  j = {{"version", v.version}, {"scenario", v.scenario}, {"verbose", v.verbose}, {"topology", v.topology}};
}
void from_json(const json& j, JobMsg& v) {
  get_unsigned(j, "version", v.version);
  get_field(j, "scenario", v.scenario);
  get_optional(j, "verbose", v.verbose);
  get_optional(j, "topology", v.topology);
}

Status validate_job(const JobMsg& job) {
  if (job.version != 1) return fail("unsupported job version " + std::to_string(job.version));
  if (job.scenario.duration_ms > kMaxDurationMs)
    return fail("job duration " + std::to_string(job.scenario.duration_ms) + " ms exceeds " +
                std::to_string(kMaxDurationMs) + " ms");
  uint64_t workers = 0;
  for (const CgroupPlan& cg : job.scenario.cgroups) {
    if (!valid_cgroup_name(cg.name))
      return fail("invalid cgroup name '" + cg.name + "'",
                  "use 1-64 characters from [A-Za-z0-9_.-]");
    for (const CgroupPlan& other : job.scenario.cgroups)
      if (&other != &cg && other.name == cg.name) return fail("duplicate cgroup '" + cg.name + "'");
    workers += cg.workers;
  }
  if (workers > kMaxWorkersPerJob)
    return fail("job asks for " + std::to_string(workers) + " workers, more than " +
                std::to_string(kMaxWorkersPerJob));
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
