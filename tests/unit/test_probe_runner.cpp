// The probe runner's pure parts (guest/agent/probe_history.*, find_traceable):
// record conversion, the bounded per-task history and the report order.
#include "guest/agent/probe_history.hpp"
#include "guest/agent/probes.hpp"

#include <bpf/btf.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

using namespace ktstr::agent;
using ktstr::proto::ProbeEvent;

namespace {

ProbeEvent event(int32_t pid, uint64_t t_ns) {
  ProbeEvent e;
  e.pid = pid;
  e.t_ns = t_ns;
  e.kind = "kprobe";
  e.func = "f";
  return e;
}

}  // namespace

TEST(ProbeRunner, CpumaskRendersAsCpulist) {
  EXPECT_EQ(cpumask_to_cpulist(0), "");
  EXPECT_EQ(cpumask_to_cpulist(0xf), "0-3");
  EXPECT_EQ(cpumask_to_cpulist(0x5), "0,2");
  EXPECT_EQ(cpumask_to_cpulist(0x3c1), "0,6-9");
  EXPECT_EQ(cpumask_to_cpulist(1ull << 63), "63");
  EXPECT_EQ(cpumask_to_cpulist(~0ull), "0-63");
}

TEST(ProbeRunner, ArgKindNamesRoundTrip) {
  for (const char* name : {"task", "rq", "dsq", "exit_info", "scalar", "none"})
    EXPECT_STREQ(probe_arg_kind_name(probe_arg_kind_from_name(name)), name);
  EXPECT_EQ(probe_arg_kind_from_name("pointer"), uint32_t(KTSTR_ARG_NONE));
}

TEST(ProbeRunner, RecordsConvertWithBoundedStrings) {
  ktstr_probe_event raw;
  std::memset(&raw, 'x', sizeof raw);  // no NULs anywhere: strings must stay bounded
  raw.kind = KTSTR_EV_FEXIT;
  raw.nr_args = 200;  // lies: clamped to KTSTR_PROBE_MAX_ARGS
  raw.pid = 7;
  raw.ret = 42;
  for (auto& a : raw.args) {
    a.kind = KTSTR_ARG_SCALAR;
    a.decoded = 0;
  }
  raw.args[1].kind = KTSTR_ARG_TASK;
  raw.args[1].decoded = 1;
  raw.args[1].task.cpus_mask = 0xf;
  raw.args[2].kind = KTSTR_ARG_RQ;
  raw.args[2].decoded = 1;
  raw.args[2].cpu = 3;
  raw.args[3].kind = KTSTR_ARG_EXIT_INFO;
  raw.args[3].decoded = 1;
  raw.args[3].exit_kind = 1025;
  ProbeEvent e = to_proto_event(raw, "ktstr_dispatch", "bpf/scx_ktstr.bpf.c:101");
  EXPECT_EQ(e.kind, "fexit");
  EXPECT_EQ(e.ret, 42u);
  EXPECT_EQ(e.comm.size(), size_t(KTSTR_PROBE_COMM_LEN));
  ASSERT_EQ(e.args.size(), size_t(KTSTR_PROBE_MAX_ARGS));
  EXPECT_FALSE(e.args[0].task.has_value());
  ASSERT_TRUE(e.args[1].task.has_value());
  EXPECT_EQ(e.args[1].task->cpus, "0-3");
  EXPECT_EQ(e.args[1].task->comm.size(), size_t(KTSTR_PROBE_COMM_LEN));
  EXPECT_EQ(e.args[2].cpu, 3);
  EXPECT_EQ(e.args[3].exit_kind, 1025u);
  EXPECT_EQ(e.args[3].exit_reason->size(), size_t(KTSTR_PROBE_REASON_LEN));
}

TEST(ProbeRunner, HistoryKeepsTheNewestPerTask) {
  ProbeHistory h(3, 100);
  for (uint64_t t = 1; t <= 10; ++t) h.add(event(1, t));
  h.add(event(2, 11));
  EXPECT_EQ(h.kept_for(1), 3u);
  EXPECT_EQ(h.kept_for(2), 1u);
  EXPECT_EQ(h.total(), 11u);
  EXPECT_EQ(h.dropped(), 7u);
  auto r = h.report(std::nullopt);
  EXPECT_FALSE(r.trigger_fired);
  ASSERT_EQ(r.events.size(), 4u);
  EXPECT_EQ(r.events[0].t_ns, 8u);  // pid 1's newest three, then pid 2, by time
  EXPECT_EQ(r.events[3].t_ns, 11u);
  EXPECT_EQ(r.per_task_history.at("1"), 3u);
}

TEST(ProbeRunner, HistoryEvictsTheGloballyOldestWhenFull) {
  ProbeHistory h(1000, 5);
  for (uint64_t t = 1; t <= 1000; ++t) h.add(event(int32_t(t % 7), t));
  EXPECT_EQ(h.size(), 5u);
  EXPECT_EQ(h.dropped(), 995u);
  auto r = h.report(std::nullopt);
  ASSERT_EQ(r.events.size(), 5u);
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(r.events[i].t_ns, 996 + i);
}

TEST(ProbeRunner, HistoryStaysBoundedUnderChurn) {
  ProbeHistory h(2, 50);
  for (uint64_t t = 1; t <= 200000; ++t) h.add(event(int32_t(t % 97), t));
  EXPECT_LE(h.size(), 50u);
  EXPECT_EQ(h.total(), 200000u);
  EXPECT_EQ(h.dropped() + h.size(), 200000u);
}

TEST(ProbeRunner, TriggeringTaskComesFirstWithItsWholeHistory) {
  ProbeHistory h(64, 1000);
  for (uint64_t t = 1; t <= 30; ++t) h.add(event(t % 3 == 0 ? 42 : 5, t));
  TriggerHit hit{31, 42, 2, 1025, "scx_bpf_error"};
  auto r = h.report(hit);
  EXPECT_TRUE(r.trigger_fired);
  EXPECT_EQ(r.trigger_pid, 42);
  EXPECT_EQ(r.exit_kind, 1025u);
  ASSERT_EQ(r.events.size(), 30u);
  for (size_t i = 0; i < 10; ++i) EXPECT_EQ(r.events[i].pid, 42);  // all 10 of its events
  for (size_t i = 1; i < 10; ++i) EXPECT_LT(r.events[i - 1].t_ns, r.events[i].t_ns);
  for (size_t i = 10; i < 30; ++i) EXPECT_EQ(r.events[i].pid, 5);
  for (size_t i = 11; i < 30; ++i) EXPECT_LT(r.events[i - 1].t_ns, r.events[i].t_ns);
}

TEST(ProbeRunner, TraceableNamesComeFromTheFilterList) {
  char tmpl[] = "/tmp/ktstr-probe-test-XXXXXX";
  int fd = ::mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  ::close(fd);
  {
    std::ofstream out(tmpl);
    out << "do_pick_task_scx\nscx_exit_bstr\nvirtio_dev_probe [virtio]\n";
    for (int i = 0; i < 20000; ++i) out << "filler_function_" << i << "\n";
    out << "balance_scx";  // no trailing newline
  }
  auto found = find_traceable(tmpl, {"balance_scx", "__schedule", "do_pick_task_scx", "virtio_dev_probe"});
  EXPECT_EQ(found, (std::vector<std::string>{"balance_scx", "do_pick_task_scx", "virtio_dev_probe"}));
  // The byte cap stops the scan before the last line.
  auto capped = find_traceable(tmpl, {"balance_scx", "do_pick_task_scx"}, 1000);
  EXPECT_EQ(capped, std::vector<std::string>{"do_pick_task_scx"});
  EXPECT_TRUE(find_traceable("/nonexistent/available_filter_functions", {"x"}).empty());
  std::filesystem::remove(tmpl);
}

// A BTF made with libbpf's writer: only prototypes with an enum
// scx_exit_kind parameter (directly, through a typedef or const) count.
TEST(ProbeRunner, ExitPathFunctionsAreFoundByTheirPrototype) {
  btf* b = btf__new_empty();
  ASSERT_NE(b, nullptr);
  int s64 = btf__add_int(b, "long long", 8, BTF_INT_SIGNED);
  int kind = btf__add_enum(b, "scx_exit_kind", 4);
  ASSERT_EQ(btf__add_enum_value(b, "SCX_EXIT_ERROR_BPF", 1025), 0);
  int other = btf__add_enum(b, "other_kind", 4);
  ASSERT_EQ(btf__add_enum_value(b, "OTHER", 1), 0);
  int kind_typedef = btf__add_typedef(b, "exit_kind_t", kind);
  int kind_const = btf__add_const(b, kind_typedef);
  auto func = [&](const char* name, std::vector<std::pair<const char*, int>> params) {
    int proto = btf__add_func_proto(b, 0);
    for (auto& [pname, type] : params) EXPECT_EQ(btf__add_func_param(b, pname, type), 0);
    EXPECT_GT(btf__add_func(b, name, BTF_FUNC_STATIC, proto), 0);
  };
  func("scx_vexit", {{"sch", s64}, {"kind", kind}, {"exit_code", s64}});
  func("scx_kf_exit", {{"kind", kind_const}, {"exit_code", s64}});
  func("scx_exit_task", {{"p", s64}});
  func("other_exit", {{"k", other}});
  auto found = exit_kind_functions(b);
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(found[0].name, "scx_vexit");
  EXPECT_EQ(found[0].kind_arg, 1);
  EXPECT_EQ(found[1].name, "scx_kf_exit");
  EXPECT_EQ(found[1].kind_arg, 0);
  EXPECT_EQ(exit_kind_functions(b, 1).size(), 1u);
  EXPECT_TRUE(exit_kind_functions(nullptr).empty());
  btf__free(b);
}

// Every cached kernel (one per series when the matrix test fetched them):
// its BTF names an exit path, whatever this version calls it.
TEST(ProbeRunner, EveryCachedKernelHasAnExitPathInItsBtf) {
  std::string cache;
  if (const char* d = std::getenv("KTSTR_CACHE_DIR"); d && *d) cache = d;
  else if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) cache = std::string(x) + "/ktstr";
  else if (const char* h = std::getenv("HOME"); h && *h) cache = std::string(h) + "/.cache/ktstr";
  std::error_code ec;
  size_t checked = 0;
  for (auto& e : std::filesystem::directory_iterator(cache + "/artifacts/kernels", ec)) {
    std::string vmlinux = e.path().string() + "/vmlinux";
    if (!std::filesystem::is_regular_file(vmlinux, ec)) continue;
    btf* b = btf__parse(vmlinux.c_str(), nullptr);
    ASSERT_NE(b, nullptr) << vmlinux;
    auto found = exit_kind_functions(b);
    EXPECT_FALSE(found.empty()) << vmlinux;
    for (auto& f : found) EXPECT_GE(f.kind_arg, 0) << f.name;
    btf__free(b);
    ++checked;
  }
  if (!checked) GTEST_SKIP() << "no cached kernel under '" << cache << "' (ktstr kernel fetch)";
}
