#include "executor/work_unit.hpp"

#include "core/fs.hpp"
#include "core/subprocess.hpp"

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <chrono>

namespace ktstr::executor {

namespace {

constexpr size_t kMaxUnitBytes = 1 << 20;      // a unit: argv and name
constexpr size_t kMaxResultBytes = 64 << 20;   // a result: a run's JSON document

std::string numbered(const std::string& job_dir, const char* sub, size_t index, const char* suffix) {
  return job_dir + "/" + sub + "/" + std::to_string(index) + suffix;
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "?";
  return buf;
}

}  // namespace

std::string unit_path(const std::string& d, size_t i) { return numbered(d, "units", i, ".json"); }
std::string out_path(const std::string& d, size_t i) { return numbered(d, "out", i, ""); }
std::string log_path(const std::string& d, size_t i) { return numbered(d, "log", i, ""); }
std::string status_path(const std::string& d, size_t i) { return numbered(d, "status", i, ".json"); }

Status write_units(const std::string& job_dir, const std::vector<WorkUnit>& units) {
  for (const char* sub : {"units", "out", "log", "status"})
    if (auto st = make_dirs(job_dir + "/" + sub); !st) return st;
  for (size_t i = 0; i < units.size(); ++i) {
    if (units[i].argv.empty()) return fail("work unit '" + units[i].name + "' has no command");
    nlohmann::json j = {{"name", units[i].name}, {"argv", units[i].argv}};
    if (auto st = write_file_atomic(unit_path(job_dir, i), j.dump()); !st) return st;
  }
  return {};
}

Result<int> run_unit(const std::string& job_dir, size_t index) {
  auto text = read_file(unit_path(job_dir, index), kMaxUnitBytes);
  if (!text) return tl::unexpected(text.error());
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("argv") || !j["argv"].is_array() || j["argv"].empty())
    return fail("'" + unit_path(job_dir, index) + "' is not a work unit");
  std::vector<std::string> argv;
  for (auto& a : j["argv"]) {
    if (!a.is_string()) return fail("'" + unit_path(job_dir, index) + "' is not a work unit");
    argv.push_back(a.get<std::string>());
  }
  SpawnOptions opts;
  opts.stdout_path = out_path(job_dir, index);
  opts.stderr_path = log_path(job_dir, index);
  int64_t started = now_ms();
  int status = 127;
  if (auto child = spawn(argv, opts)) {
    status = wait_child(child->pid);
  } else {
    // Nothing ran: the reason goes where the unit's stderr would have.
    (void)write_file_atomic(log_path(job_dir, index), child.error().msg + "\n");
  }
  nlohmann::json st = {{"status", status}, {"host", host_name()}, {"started_ms", started}, {"ended_ms", now_ms()}};
  if (auto w = write_file_atomic(status_path(job_dir, index), st.dump()); !w) return tl::unexpected(w.error());
  return status;
}

Result<std::optional<UnitOutcome>> read_outcome(const std::string& job_dir, size_t index) {
  if (!path_exists(status_path(job_dir, index))) return std::optional<UnitOutcome>{};
  auto text = read_file(status_path(job_dir, index), kMaxUnitBytes);
  if (!text) return tl::unexpected(text.error());
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("status") || !j["status"].is_number_integer())
    return fail("'" + status_path(job_dir, index) + "' is not a unit status");
  UnitOutcome o;
  o.index = index;
  o.status = j["status"].get<int>();
  o.host = j.value("host", "");
  o.started_ms = j.value("started_ms", int64_t{0});
  o.ended_ms = j.value("ended_ms", int64_t{0});
  o.log_path = log_path(job_dir, index);
  auto out = read_file(out_path(job_dir, index), kMaxResultBytes);
  if (!out) return tl::unexpected(out.error());
  o.result = std::move(*out);
  return std::optional<UnitOutcome>{std::move(o)};
}

}  // namespace ktstr::executor
