#include "guest/agent/repeat.hpp"

#include "guest/agent/util.hpp"

#include <cerrno>
#include <fcntl.h>
#include <unistd.h>

namespace ktstr::agent {

SettleOutcome wait_sched_disabled(const std::function<std::optional<std::string>()>& read_state,
                                  unsigned bound_ms, const SettleClock& clock) {
  SettleOutcome out;
  const uint64_t deadline = clock.now_ms() + bound_ms;
  for (;;) {
    auto state = read_state();
    if (!state) {
      out.settled = true;
      out.state.clear();
      return out;
    }
    out.state = *state;
    if (out.state == "disabled") {
      out.settled = true;
      return out;
    }
    if (clock.now_ms() >= deadline) return out;
    clock.sleep_ms(10);
  }
}

SettleClock real_settle_clock() {
  return SettleClock{[] { return monotonic_ns() / 1000000; }, [](unsigned ms) { sleep_ms(ms); }};
}

std::string clear_trace_buffer(const std::string& tracing_dir) {
  int fd = ::open((tracing_dir + "/trace").c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd < 0) return errno_text(errno);
  ::close(fd);
  return {};
}

std::vector<std::string> remove_job_cgroups(const std::string& root, const proto::JobMsg& job) {
  std::vector<std::string> problems;
  auto remove = [&](const std::string& dir) {
    // A cgroup with no tasks left goes with rmdir; its files are virtual.
    if (::rmdir(dir.c_str()) != 0 && errno != ENOENT)
      problems.push_back("removing cgroup '" + dir + "': " + errno_text(errno));
  };
  for (const proto::CgroupPlan& cg : job.scenario.cgroups) remove(root + "/" + cg.name);
  remove(root);
  return problems;
}

}  // namespace ktstr::agent
