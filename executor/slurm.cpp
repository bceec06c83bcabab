#include "executor/slurm.hpp"

#include "core/fs.hpp"
#include "core/subprocess.hpp"
#include "core/text.hpp"

#include <algorithm>
#include <thread>

namespace ktstr::executor {

namespace {

SpawnOptions with_env(const std::vector<std::string>& env) {
  SpawnOptions o;
  o.env_extra = env;
  return o;
}

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

}  // namespace

std::string slurm_task_script() {
  return "#!/bin/sh\n"
         "# One task of a ktstr job array: work unit $SLURM_ARRAY_TASK_ID of the job\n"
         "# directory $2, run by the ktstr binary $1 (executor/work_unit.hpp).\n"
         "exec \"$1\" run-unit \"$2\" \"$SLURM_ARRAY_TASK_ID\"\n";
}

Result<std::string> parse_sbatch_job_id(const std::string& out) {
  std::string id = first_line(out);
  id = id.substr(0, id.find(';'));
  if (id.empty() || !std::all_of(id.begin(), id.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return fail("sbatch printed no job id: '" + first_line(out) + "'");
  return id;
}

std::vector<std::string> sbatch_argv(const SlurmOptions& opts, const std::vector<WorkUnit>& units,
                                     const std::string& script) {
  unsigned cpus = 1, mem = 64;
  for (auto& u : units) cpus = std::max(cpus, u.cpus), mem = std::max(mem, u.memory_mb);
  std::string array = "0-" + std::to_string(units.empty() ? 0 : units.size() - 1);
  if (opts.max_parallel) array += "%" + std::to_string(opts.max_parallel);
  std::vector<std::string> argv = {"sbatch", "--parsable", "--array=" + array, "--job-name=" + opts.job_name,
                                   "--cpus-per-task=" + std::to_string(cpus), "--mem=" + std::to_string(mem),
                                   "--output=" + opts.job_dir + "/slurm-%a.out", "--chdir=" + opts.job_dir};
  if (!opts.partition.empty()) argv.push_back("--partition=" + opts.partition);
  argv.insert(argv.end(), opts.extra_sbatch_args.begin(), opts.extra_sbatch_args.end());
  argv.insert(argv.end(), {script, opts.runner, opts.job_dir});
  return argv;
}

SlurmExecutor::~SlurmExecutor() {
  if (!job_id_.empty() && !done_) (void)cancel();
}

Result<std::string> SlurmExecutor::submit(const std::vector<WorkUnit>& units) {
  if (units.empty()) return fail("no work units to submit");
  if (!job_id_.empty()) return fail("Slurm job " + job_id_ + " was already submitted");
  if (auto st = write_units(opts_.job_dir, units); !st) return tl::unexpected(st.error());
  const std::string script = opts_.job_dir + "/task.sh";
  if (auto st = write_file_atomic(script, slurm_task_script(), 0755); !st) return tl::unexpected(st.error());
  auto r = run(sbatch_argv(opts_, units, script), with_env(opts_.env_extra), std::chrono::seconds(60));
  if (!r) return tl::unexpected(r.error());
  if (!r->ok())
    return fail("sbatch failed (status " + std::to_string(r->status) + "): " + first_line(r->err),
                "check the cluster with 'sinfo', and the partition and limits the job asks for");
  auto id = parse_sbatch_job_id(r->out);
  if (!id) return id;
  job_id_ = *id;
  units_ = units.size();
  return job_id_;
}

Result<SlurmQueue> parse_squeue_tasks(const std::string& out, size_t units) {
  SlurmQueue q;
  for (std::string_view view : split_lines(out)) {
    std::string line(view);
    if (line.empty()) continue;
    size_t bar1 = line.find('|'), bar2 = bar1 == std::string::npos ? bar1 : line.find('|', bar1 + 1);
    std::string index = line.substr(0, bar1);
    std::string state = bar1 == std::string::npos ? "" : line.substr(bar1 + 1, bar2 - bar1 - 1);
    std::string reason = bar2 == std::string::npos ? "" : line.substr(bar2 + 1);
    // A pending array record may still be a range ("3-7" or "3-7%2").
    std::string l = index.substr(0, index.find('%'));
    size_t dash = l.find('-');
    try {
      size_t lo = std::stoul(l.substr(0, dash));
      size_t hi = dash == std::string::npos ? lo : std::stoul(l.substr(dash + 1));
      for (size_t i = lo; i <= hi && i < units; ++i) q.indices.push_back(i);
    } catch (const std::exception&) {
      return fail("squeue printed an unexpected array index: '" + line + "'");
    }
    if (state == "PENDING" && (reason == "PartitionConfig" || reason == "BadConstraints") && q.never_starts.empty())
      q.never_starts = reason;
  }
  return q;
}

Result<SlurmQueue> SlurmExecutor::queued() const {
  // --array: one line per array task, pending ones included; %K its index,
  // %T its state, %r why it is pending.
  auto r = run({"squeue", "--noheader", "--array", "--jobs=" + job_id_, "--format=%K|%T|%r"},
               with_env(opts_.env_extra), std::chrono::seconds(30));
  if (!r) return tl::unexpected(r.error());
  // A job that left the queue entirely is "Invalid job id" to squeue.
  if (!r->ok() && r->err.find("Invalid job id") == std::string::npos)
    return fail("squeue failed (status " + std::to_string(r->status) + "): " + first_line(r->err));
  return parse_squeue_tasks(r->out, units_);
}

Result<std::vector<UnitOutcome>> SlurmExecutor::wait(const std::function<void(const UnitOutcome&)>& on_finished,
                                                     std::optional<std::chrono::milliseconds> timeout) {
  if (job_id_.empty()) return fail("no Slurm job was submitted");
  std::vector<std::optional<UnitOutcome>> got(units_);
  size_t left = units_;
  auto start = std::chrono::steady_clock::now();
  auto last_queue_check = start;
  auto finish = [&](UnitOutcome o) {
    if (on_finished) on_finished(o);
    got[o.index] = std::move(o);
    --left;
  };
  auto collect = [&]() -> Status {
    for (size_t i = 0; i < units_; ++i) {
      if (got[i]) continue;
      auto o = read_outcome(opts_.job_dir, i);
      if (!o) return tl::unexpected(o.error());
      if (*o) finish(std::move(**o));
    }
    return {};
  };
  while (left) {
    if (auto st = collect(); !st) return tl::unexpected(st.error());
    if (!left) break;
    if (opts_.stop && opts_.stop()) {
      auto st = cancel();
      return fail("cancelled: Slurm job " + job_id_ + (st ? " was cancelled" : " could not be cancelled: " + st.error().msg));
    }
    auto now = std::chrono::steady_clock::now();
    if (timeout && now - start >= *timeout) {
      (void)cancel();
      for (size_t i = 0; i < units_; ++i)
        if (!got[i]) finish(UnitOutcome{.index = i, .log_path = log_path(opts_.job_dir, i),
                                        .error = "timed out: Slurm job " + job_id_ + " was cancelled"});
      break;
    }
    if (now - last_queue_check >= opts_.queue_every) {
      last_queue_check = now;
      auto q = queued();
      if (!q) return tl::unexpected(q.error());
      if (!q->never_starts.empty()) {
        // Waiting would be forever: cancel, and say why for every unit left.
        (void)cancel();
        for (size_t i = 0; i < units_; ++i)
          if (!got[i])
            finish(UnitOutcome{.index = i, .log_path = log_path(opts_.job_dir, i),
                               .error = "Slurm will never start job " + job_id_ + " (pending, reason " +
                                        q->never_starts + ": no node of the partition has the CPUs or memory "
                                        "a task asks for); it was cancelled"});
        break;
      }
      // Read status files after the queue: a task writes its status before
      // it leaves the queue, so one missing now is lost for good.
      if (auto st = collect(); !st) return tl::unexpected(st.error());
      for (size_t i = 0; i < units_; ++i)
        if (!got[i] && std::find(q->indices.begin(), q->indices.end(), i) == q->indices.end())
          finish(UnitOutcome{.index = i, .log_path = log_path(opts_.job_dir, i),
                             .error = "task " + std::to_string(i) + " of Slurm job " + job_id_ +
                                      " left the queue without a result (see " + opts_.job_dir + "/slurm-" +
                                      std::to_string(i) + ".out)"});
      continue;
    }
    std::this_thread::sleep_for(opts_.poll);
  }
  done_ = true;
  std::vector<UnitOutcome> out;
  for (auto& o : got) out.push_back(std::move(*o));
  return out;
}

Status SlurmExecutor::cancel() {
  if (job_id_.empty()) return {};
  auto r = run({"scancel", job_id_}, with_env(opts_.env_extra), std::chrono::seconds(30));
  if (!r) return tl::unexpected(r.error());
  if (!r->ok()) return fail("scancel " + job_id_ + " failed: " + first_line(r->err));
  done_ = true;
  return {};
}

}  // namespace ktstr::executor
