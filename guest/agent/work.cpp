#include "guest/agent/work.hpp"

#include "guest/agent/util.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cmath>
#include <ctime>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace ktstr::agent {

namespace {

volatile std::sig_atomic_t g_stop_requested = 0;

uint64_t thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

timespec to_timespec(uint64_t ns) {
  return timespec{static_cast<time_t>(ns / 1000000000ull), static_cast<long>(ns % 1000000000ull)};
}

// A few microseconds of pure CPU work (longer under TCG): short enough that
// the gap between iterations shows time spent off the CPU.
void spin_unit() {
  volatile uint64_t x = 0;
  for (int i = 0; i < 1000; ++i) x = x + uint64_t(i);
}

// The bookkeeping every kind shares: iterations, gaps, migrations, CPUs.
class Meter {
 public:
  explicit Meter(uint64_t duration_ms) {
    start_ = last_ = monotonic_ns();
    end_ = start_ + duration_ms * 1000000ull;
    cpu_start_ = thread_cpu_ns();
    check_epoch();
    prev_cpu_ = sched_getcpu();
    if (prev_cpu_ >= 0 && unsigned(prev_cpu_) < kMaxTrackedCpus) {
      s.cpus_used.set(prev_cpu_);
      s.cpus_since_change.set(prev_cpu_);
    }
  }

  // One iteration done; true while the worker should go on.
  bool iteration() {
    uint64_t now = monotonic_ns();
    if (now - last_ > s.max_gap_ns) s.max_gap_ns = now - last_;
    last_ = now;
    ++s.iterations;
    check_epoch();
    int cpu = sched_getcpu();
    if (cpu >= 0) {
      if (prev_cpu_ >= 0 && cpu != prev_cpu_) ++s.migrations;
      prev_cpu_ = cpu;
      if (unsigned(cpu) < kMaxTrackedCpus) {
        s.cpus_used.set(cpu);
        s.cpus_since_change.set(cpu);
      }
    }
    return !over(now);
  }
  bool over(uint64_t now) const { return now >= end_ || g_stop_requested; }
  bool over() const { return over(monotonic_ns()); }
  uint64_t start() const { return start_; }
  uint64_t end() const { return end_; }

  WorkStats finish() {
    check_epoch();  // a change after the last iteration: nothing ran since
    s.wall_ns = last_ - start_;
    s.cpu_time_ns = thread_cpu_ns() - cpu_start_;
    return s;
  }

  WorkStats s;

 private:
  // A new cpuset epoch: the CPUs used from here on are judged against it.
  void check_epoch() {
    const uint32_t* e = work_cpuset_epoch();
    if (!e) return;
    uint32_t now = __atomic_load_n(e, __ATOMIC_ACQUIRE);
    if (now == epoch_) return;
    epoch_ = now;
    s.cpus_changed = true;
    s.cpus_since_change.reset();
  }

  uint64_t start_, end_, last_, cpu_start_;
  int prev_cpu_;
  uint32_t epoch_ = 0;
};

void set_latency(WorkStats& s, const LatencyHistogram& h) {
  s.set(kWakeLatencyP50, h.percentile(50));
  s.set(kWakeLatencyP99, h.percentile(99));
  s.set(kWakeLatencyMax, h.max());
}

// Sleeps until `when` on CLOCK_MONOTONIC; false when the stop signal came.
bool sleep_until(uint64_t when) {
  timespec ts = to_timespec(when);
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR)
    if (g_stop_requested) return false;
  return true;
}

WorkStats spin_yield(proto::WorkKind kind, uint64_t duration_ms) {
  Meter m(duration_ms);
  for (;;) {
    bool spin = kind == proto::WorkKind::Spin || (kind == proto::WorkKind::Mixed && m.s.iterations % 2 == 0);
    if (spin)
      spin_unit();
    else
      sched_yield();
    if (!m.iteration()) break;
  }
  return m.finish();
}

// Wakes `rate_hz` times a second at absolute times; the latency is how late
// it runs after the time it asked for. Wake times already past are skipped
// (a late worker does not try to catch up).
WorkStats sleep_wake(uint32_t rate_hz, uint64_t duration_ms) {
  Meter m(duration_ms);
  LatencyHistogram h;
  const uint64_t period = 1000000000ull / rate_hz;
  uint64_t next = m.start() + period;
  for (;;) {
    if (!sleep_until(next)) break;
    uint64_t now = monotonic_ns();
    h.add(now > next ? now - next : 0);
    spin_unit();
    while (next <= now) next += period;
    if (!m.iteration() || next >= m.end()) break;
  }
  m.s.set(kWakeups, h.count());
  set_latency(m.s, h);
  return m.finish();
}

// Released every period_us; burns runtime_us of its own CPU time; a period
// whose work ends after the next release missed its deadline. Periods that
// passed entirely while it was late count as missed too.
WorkStats periodic(uint32_t period_us, uint32_t runtime_us, uint64_t duration_ms) {
  Meter m(duration_ms);
  LatencyHistogram h;
  const uint64_t period = uint64_t(period_us) * 1000, runtime = uint64_t(runtime_us) * 1000;
  uint64_t release = m.start() + period, periods = 0, missed = 0;
  for (;;) {
    if (!sleep_until(release)) break;
    uint64_t woke = monotonic_ns();
    h.add(woke > release ? woke - release : 0);
    uint64_t cpu0 = thread_cpu_ns();
    while (thread_cpu_ns() - cpu0 < runtime && !g_stop_requested) spin_unit();
    uint64_t done = monotonic_ns();
    ++periods;
    if (done > release + period) ++missed;
    release += period;
    while (release + period <= done && release < m.end()) {  // windows that closed before it could start
      release += period;
      ++periods;
      ++missed;
    }
    if (!m.iteration() || release >= m.end()) break;
  }
  m.s.set(kPeriods, periods);
  m.s.set(kMissedDeadlines, missed);
  set_latency(m.s, h);
  return m.finish();
}

long futex(std::atomic<uint32_t>* word, int op, uint32_t value, const timespec* timeout) {
  return ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), op, value, timeout, nullptr, 0);
}

// The partner of a pair runs with the stop signal blocked: the signal is
// for the worker's own loop, which then ends the partner.
bool start_partner(pthread_t& thread, void* (*fn)(void*), void* arg) {
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &block, &old);
  bool ok = pthread_create(&thread, nullptr, fn, arg) == 0;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return ok;
}

struct FutexPair {
  std::atomic<uint32_t> turn{0};  // 0: the worker's turn, 1: the partner's
  std::atomic<bool> stop{false};
};

constexpr timespec kPollTimeout{0, 50 * 1000 * 1000};  // so the end is noticed

void* futex_partner(void* arg) {
  auto* pair = static_cast<FutexPair*>(arg);
  for (;;) {
    while (pair->turn.load() == 0 && !pair->stop.load()) futex(&pair->turn, FUTEX_WAIT_PRIVATE, 0, &kPollTimeout);
    if (pair->stop.load()) return nullptr;
    pair->turn.store(0);
    futex(&pair->turn, FUTEX_WAKE_PRIVATE, 1, nullptr);
  }
}

// One round trip: hand the turn to the partner, wait until it hands it back.
WorkStats futex_pingpong(uint64_t duration_ms) {
  FutexPair pair;
  pthread_t partner;
  Meter m(duration_ms);
  bool started = start_partner(partner, futex_partner, &pair);
  uint64_t trips = 0;
  while (started) {
    pair.turn.store(1);
    futex(&pair.turn, FUTEX_WAKE_PRIVATE, 1, nullptr);
    while (pair.turn.load() == 1 && !m.over()) futex(&pair.turn, FUTEX_WAIT_PRIVATE, 1, &kPollTimeout);
    if (pair.turn.load() == 1) break;  // the run ended while the partner had the turn
    ++trips;
    if (!m.iteration()) break;
  }
  if (started) {
    pair.stop.store(true);
    pair.turn.store(1);
    futex(&pair.turn, FUTEX_WAKE_PRIVATE, 1, nullptr);
    pthread_join(partner, nullptr);
  } else {
    m.iteration();
  }
  m.s.set(kRoundTrips, trips);
  return m.finish();
}

struct PipePair {
  int to_partner[2] = {-1, -1};
  int to_worker[2] = {-1, -1};
};

// Echoes each byte back until the worker closes its end.
void* pipe_partner(void* arg) {
  auto* p = static_cast<PipePair*>(arg);
  char byte;
  for (;;) {
    ssize_t n = ::read(p->to_partner[0], &byte, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return nullptr;
    while (::write(p->to_worker[1], &byte, 1) < 0 && errno == EINTR) {
    }
  }
}

WorkStats pipe_pingpong(uint64_t duration_ms) {
  PipePair p;
  Meter m(duration_ms);
  pthread_t partner;
  bool started = ::pipe2(p.to_partner, O_CLOEXEC) == 0 && ::pipe2(p.to_worker, O_CLOEXEC) == 0 &&
                 start_partner(partner, pipe_partner, &p);
  uint64_t trips = 0;
  while (started) {
    char byte = 'x';
    ssize_t sent;
    while ((sent = ::write(p.to_partner[1], &byte, 1)) < 0 && errno == EINTR) {
    }
    if (sent != 1) break;
    bool back = false;
    while (!back && !m.over()) {
      pollfd pfd{p.to_worker[0], POLLIN, 0};
      if (::poll(&pfd, 1, 50) > 0) back = ::read(p.to_worker[0], &byte, 1) == 1;
    }
    if (!back) break;
    ++trips;
    if (!m.iteration()) break;
  }
  if (!started) m.iteration();
  if (p.to_partner[1] >= 0) ::close(p.to_partner[1]);  // EOF ends the partner
  p.to_partner[1] = -1;
  if (started) pthread_join(partner, nullptr);
  for (int fd : {p.to_partner[0], p.to_worker[0], p.to_worker[1]})
    if (fd >= 0) ::close(fd);
  m.s.set(kRoundTrips, trips);
  return m.finish();
}

// fork(), the child exits at once, the worker reaps it.
WorkStats fork_churn(uint64_t duration_ms) {
  Meter m(duration_ms);
  uint64_t forks = 0;
  for (;;) {
    pid_t pid = ::fork();
    if (pid == 0) ::_exit(0);
    if (pid > 0) {
      ++forks;
      while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
      }
    }
    if (!m.iteration()) break;
  }
  m.s.set(kForks, forks);
  return m.finish();
}

// Maps 1 MiB, writes one byte per page, unmaps it: each page a fresh fault.
// The count is the kernel's (minor faults of this thread), not the pages
// touched, so it shows what really happened.
WorkStats fault_churn(uint64_t duration_ms) {
  constexpr size_t kBytes = 1 << 20;
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  rusage before{}, after{};
  ::getrusage(RUSAGE_THREAD, &before);
  Meter m(duration_ms);
  for (;;) {
    void* mem = ::mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem != MAP_FAILED) {
      ::madvise(mem, kBytes, MADV_NOHUGEPAGE);
      auto* bytes = static_cast<volatile char*>(mem);
      for (size_t off = 0; off < kBytes; off += page) bytes[off] = 1;
      ::munmap(mem, kBytes);
    }
    if (!m.iteration()) break;
  }
  ::getrusage(RUSAGE_THREAD, &after);
  m.s.set(kPageFaults, static_cast<uint64_t>(after.ru_minflt - before.ru_minflt));
  return m.finish();
}

// Spins, and every interval_us pins itself to the next CPU it is allowed
// (its cgroup's cpuset at the start), round robin.
WorkStats affinity_churn(uint32_t interval_us, uint64_t duration_ms) {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  ::sched_getaffinity(0, sizeof allowed, &allowed);
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &allowed)) cpus.push_back(c);
  Meter m(duration_ms);
  const uint64_t interval = uint64_t(interval_us) * 1000;
  uint64_t next = m.start() + interval, changes = 0;
  size_t at = 0;
  for (;;) {
    spin_unit();
    uint64_t now = monotonic_ns();
    if (now >= next && !cpus.empty()) {
      at = (at + 1) % cpus.size();
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(cpus[at], &one);
      if (::sched_setaffinity(0, sizeof one, &one) == 0) ++changes;
      next = now + interval;
    }
    if (!m.iteration()) break;
  }
  ::sched_setaffinity(0, sizeof allowed, &allowed);
  m.s.set(kAffinityChanges, changes);
  return m.finish();
}

}  // namespace

const char* counter_name(Counter c) {
  switch (c) {
    case kWakeups: return "wakeups";
    case kWakeLatencyP50: return "wake_latency_p50_ns";
    case kWakeLatencyP99: return "wake_latency_p99_ns";
    case kWakeLatencyMax: return "wake_latency_max_ns";
    case kRoundTrips: return "round_trips";
    case kForks: return "forks";
    case kPageFaults: return "page_faults";
    case kPeriods: return "periods";
    case kMissedDeadlines: return "missed_deadlines";
    case kAffinityChanges: return "affinity_changes";
    case kCounterCount: break;
  }
  return "unknown";
}

unsigned LatencyHistogram::bucket_of(uint64_t ns) {
  if (ns < 8) return static_cast<unsigned>(ns);
  unsigned exp = 63u - static_cast<unsigned>(__builtin_clzll(ns));  // >= 3
  unsigned sub = static_cast<unsigned>((ns >> (exp - 3)) & 7u);
  return (exp - 2) * 8 + sub;
}

uint64_t LatencyHistogram::bucket_upper(unsigned bucket) {
  if (bucket < 8) return bucket;
  unsigned exp = bucket / 8 + 2, sub = bucket % 8;
  uint64_t width = 1ull << (exp - 3);
  uint64_t lower = (8ull + sub) << (exp - 3);
  return lower + (width - 1);
}

void LatencyHistogram::add(uint64_t ns) {
  unsigned b = std::min(bucket_of(ns), kBuckets - 1);
  if (buckets_[b] < UINT32_MAX) ++buckets_[b];
  ++count_;
  max_ = std::max(max_, ns);
}

uint64_t LatencyHistogram::percentile(double pct) const {
  if (count_ == 0) return 0;
  auto rank = static_cast<uint64_t>(std::ceil(pct / 100.0 * static_cast<double>(count_)));
  rank = std::clamp<uint64_t>(rank, 1, count_);
  uint64_t seen = 0;
  for (unsigned b = 0; b < kBuckets; ++b) {
    seen += buckets_[b];
    if (seen >= rank) return std::min(bucket_upper(b), max_);
  }
  return max_;
}

volatile std::sig_atomic_t& work_stop_flag() { return g_stop_requested; }

const uint32_t*& work_cpuset_epoch() {
  static const uint32_t* epoch = nullptr;
  return epoch;
}

WorkStats run_work(const proto::CgroupPlan& plan, uint64_t duration_ms) {
  using proto::WorkKind;
  switch (plan.work) {
    case WorkKind::Spin:
    case WorkKind::Yield:
    case WorkKind::Mixed: return spin_yield(plan.work, duration_ms);
    case WorkKind::Sleep: return sleep_wake(std::max(1u, plan.rate_hz), duration_ms);
    case WorkKind::Futex: return futex_pingpong(duration_ms);
    case WorkKind::Pipe: return pipe_pingpong(duration_ms);
    case WorkKind::Fork: return fork_churn(duration_ms);
    case WorkKind::Fault: return fault_churn(duration_ms);
    case WorkKind::Periodic:
      return periodic(std::max(100u, plan.period_us), std::clamp(plan.runtime_us, 1u, std::max(100u, plan.period_us) - 1),
                      duration_ms);
    case WorkKind::Affinity: return affinity_churn(std::max(100u, plan.interval_us), duration_ms);
  }
  return spin_yield(WorkKind::Spin, duration_ms);
}

std::string apply_sched_params(const proto::CgroupPlan& plan) {
  if (plan.policy == "batch" || plan.policy == "idle") {
    sched_param param{};
    int policy = plan.policy == "batch" ? SCHED_BATCH : SCHED_IDLE;
    if (::sched_setscheduler(0, policy, &param) != 0)
      return "setting policy '" + plan.policy + "': " + errno_text(errno);
  }
  if (plan.nice != 0 && ::setpriority(PRIO_PROCESS, 0, plan.nice) != 0)
    return "setting nice " + std::to_string(plan.nice) + ": " + errno_text(errno);
  return {};
}

}  // namespace ktstr::agent
