// `ktstr test --jobs N` logic (cmd/jobs.hpp): the split of --repeat runs
// into parts, the units in spec order, VM numbers that never collide,
// the default N from given CPUs and memory, the worker's options and
// document, and the merge of units finished in any order back into spec
// order.
#include "run/units.hpp"
#include "kbuild/kernel_report.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

namespace ktstr::runner {
namespace {

using Batches = std::vector<std::pair<unsigned, unsigned>>;

TEST(JobsSplit, RepeatRunsSplitEvenlyAndCoverEveryRunOnce) {
  EXPECT_EQ(split_repeat(10, 3), (Batches{{1, 4}, {5, 3}, {8, 3}}));
  EXPECT_EQ(split_repeat(10, 2), (Batches{{1, 5}, {6, 5}}));
  EXPECT_EQ(split_repeat(1, 1), (Batches{{1, 1}}));
  // Never an empty part: more parts than runs gives one run each.
  EXPECT_EQ(split_repeat(2, 5), (Batches{{1, 1}, {2, 1}}));
  for (unsigned repeat = 1; repeat <= 40; ++repeat)
    for (unsigned wanted = 1; wanted <= 9; ++wanted) {
      auto parts = split_repeat(repeat, wanted);
      unsigned next = 1, smallest = repeat, largest = 0;
      for (auto [first, count] : parts) {
        EXPECT_EQ(first, next);
        EXPECT_GE(count, 1u);
        smallest = std::min(smallest, count);
        largest = std::max(largest, count);
        next = first + count;
      }
      EXPECT_EQ(next, repeat + 1) << repeat << " in " << wanted;
      EXPECT_LE(largest - smallest, 1u) << repeat << " in " << wanted;
    }
}

TEST(JobsSplit, BatchesOnlyWhenThereAreFewerTestsThanJobs) {
  EXPECT_EQ(parts_per_test(1, 10, 2), 2u);
  EXPECT_EQ(parts_per_test(1, 10, 4), 4u);
  EXPECT_EQ(parts_per_test(2, 10, 4), 2u);
  EXPECT_EQ(parts_per_test(2, 10, 5), 2u);  // 4 units on 5 workers, not 6 boots
  EXPECT_EQ(parts_per_test(3, 10, 2), 1u);  // enough tests: each boot runs all its repetitions
  EXPECT_EQ(parts_per_test(2, 10, 2), 1u);
  EXPECT_EQ(parts_per_test(1, 3, 8), 3u);   // never more parts than runs
  EXPECT_EQ(parts_per_test(1, 1, 8), 1u);   // no --repeat: the test is the unit
  EXPECT_EQ(parts_per_test(0, 5, 8), 1u);
}

TEST(JobsPlan, UnitsComeInSpecOrderAndBatchVmNumbersNeverCollide) {
  auto units = plan_units(2, 7, 4);
  ASSERT_EQ(units.size(), 4u);
  EXPECT_EQ(units[0].test, 0u);
  EXPECT_EQ(units[1].test, 0u);
  EXPECT_EQ(units[2].test, 1u);
  EXPECT_EQ(units[3].test, 1u);
  EXPECT_EQ(units[0].first, 1u);
  EXPECT_EQ(units[0].count, 4u);
  EXPECT_EQ(units[1].first, 5u);
  EXPECT_EQ(units[1].count, 3u);
  // Each part may reboot up to once per repetition: its VM numbers stay
  // apart from the other parts' of the same test.
  for (size_t test : {0u, 1u}) {
    std::set<unsigned> vms;
    for (const TestUnit& u : units) {
      if (u.test != test) continue;
      EXPECT_EQ(u.parts, 2u);
      RepeatSlice s = u.slice();
      EXPECT_EQ(s.first, u.first);
      for (unsigned k = 1; k <= u.count; ++k) EXPECT_TRUE(vms.insert(s.vm_number(k)).second) << k;
    }
    // Without reboots the first VMs are 1..parts.
    EXPECT_TRUE(vms.count(1) && vms.count(2));
  }
  // No --repeat: one unit per test; one part numbers its VMs 1, 2, 3.
  auto plain = plan_units(3, 1, 2);
  ASSERT_EQ(plain.size(), 3u);
  for (size_t i = 0; i < plain.size(); ++i) {
    EXPECT_EQ(plain[i].test, i);
    EXPECT_EQ(plain[i].count, 1u);
    EXPECT_EQ(plain[i].slice().vm_number(3), 3u);
  }
}

TEST(JobsDefault, FromCpusAndMemoryPerVm) {
  // 2 CPUs, 2-CPU guests: one VM at a time.
  EXPECT_EQ(default_jobs({2, 16384}, {2, 2048}, 10), 1u);
  EXPECT_EQ(default_jobs({2, 16384}, {1, 2048}, 10), 2u);
  EXPECT_EQ(default_jobs({16, 65536}, {4, 2048}, 10), 4u);
  // Memory: each VM needs its memory plus the QEMU overhead.
  EXPECT_EQ(default_jobs({64, 3 * (1024 + kQemuOverheadMb)}, {1, 1024}, 10), 3u);
  EXPECT_EQ(default_jobs({64, 3 * (1024 + kQemuOverheadMb) - 1}, {1, 1024}, 10), 2u);
  // Never more than the units, never more than kMaxJobs, never 0.
  EXPECT_EQ(default_jobs({64, 1 << 20}, {1, 256}, 3), 3u);
  EXPECT_EQ(default_jobs({512, 1 << 24}, {1, 256}, 1000), kMaxJobs);
  EXPECT_EQ(default_jobs({1, 100}, {8, 4096}, 10), 1u);
  EXPECT_EQ(default_jobs({8, 0}, {1, 256}, 10), 1u);
}

TEST(JobsDefault, HostResourcesAreRead) {
  HostResources h = host_resources();
  EXPECT_GE(h.cpus, 1u);
  EXPECT_GT(h.available_mb, 0u);
}

TEST(JobsCli, JobsAndWorkerRunsParse) {
  EXPECT_EQ(parse_jobs("1").value_or(0), 1u);
  EXPECT_EQ(parse_jobs("32").value_or(0), 32u);
  for (const char* bad : {"0", "33", "", "x", "-2", "2x", " 2", "99999999999999999999"}) {
    auto r = parse_jobs(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().msg.rfind("--jobs ", 0), 0u) << r.error().msg;
    EXPECT_NE(r.error().hint.find("use 1 to 32"), std::string::npos);
  }
  TestUnit u;
  u.first = 8;
  u.count = 3;
  u.part = 3;
  u.parts = 3;
  EXPECT_EQ(format_worker_runs(u), "8:3:3:3");
  auto back = parse_worker_runs("8:3:3:3");
  ASSERT_TRUE(back) << back.error().msg;
  EXPECT_EQ(back->first, 8u);
  EXPECT_EQ(back->count, 3u);
  EXPECT_EQ(back->part, 3u);
  EXPECT_EQ(back->parts, 3u);
  for (const char* bad : {"", "1:1:1", "1:1:1:1:1", "1:1:2:1", "0:1:1:1", "1:0:1:1", "1::1:1", "1:1:1:1:", "a:1:1:1"})
    EXPECT_FALSE(parse_worker_runs(bad)) << bad;
}

WorkerRun run(const std::string& name, unsigned repetition, bool passed, const std::string& sig = "") {
  WorkerRun r;
  r.result = {{"name", name}, {"status", passed ? "pass" : "fail"}, {"repetition", repetition}};
  r.line = (passed ? "PASS " : "FAIL ") + name + " #" + std::to_string(repetition);
  r.failure = passed ? "" : "report of " + name + " #" + std::to_string(repetition) + "\n";
  r.outline.passed = passed;
  if (!passed && !sig.empty()) {
    r.outline.signature_key = sig;
    r.outline.signature_summary = "summary " + sig;
  } else if (!passed) {
    r.outline.other_key = "vm:watchdog";
  }
  return r;
}

TEST(JobsWorker, DocumentRoundTripsAndGarbageIsAnError) {
  WorkerOutput w;
  w.vms = 2;
  w.skipped = 1;
  w.peak_rss_kb = 12345;
  w.started_at = 1700000000;
  w.runs = {run("a", 1, true), run("a", 2, false, "k1"), run("a", 3, false, "k1")};
  w.runs[2].replayed_with = 1;
  auto back = parse_worker_output(worker_output_json(w).dump());
  ASSERT_TRUE(back) << back.error().msg;
  EXPECT_EQ(back->vms, 2u);
  EXPECT_EQ(back->skipped, 1u);
  EXPECT_EQ(back->peak_rss_kb, 12345);
  EXPECT_EQ(back->started_at, 1700000000);
  ASSERT_EQ(back->runs.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(back->runs[i].result, w.runs[i].result);
    EXPECT_EQ(back->runs[i].replayed_with, w.runs[i].replayed_with);
    // What the parent renders once it recorded the run is not the worker's
    // to send.
    EXPECT_EQ(back->runs[i].line, "");
    EXPECT_EQ(back->runs[i].failure, "");
  }
  for (const char* bad : {"", "not json", "{}", R"({"ktstr_worker":2,"runs":{}})", R"({"tests":[]})",
                          R"({"ktstr_worker":2,"runs":[{"line":"x"}]})",
                          // the version before workers stopped writing the store
                          R"({"ktstr_worker":1,"runs":[{"result":{"name":"a","status":"pass"}}]})",
                          // a result the parent could not record
                          R"({"ktstr_worker":2,"runs":[{"result":{"name":"a","status":"maybe"}}]})",
                          R"({"ktstr_worker":2,"runs":[{"result":{"name":"a","status":"pass","seed":-1}}]})",
                          // a crash "replayed" by a run that comes later
                          R"({"ktstr_worker":2,"runs":[{"result":{"name":"a","status":"fail"},"replayed_with":0}]})"})
    EXPECT_FALSE(parse_worker_output(bad)) << bad;
}

TEST(JobsMerge, UnitsFinishedInAnyOrderComeBackInSpecOrder) {
  // Test 0 split in two parts of 2, test 1 in two parts of 2.
  auto units = plan_units(2, 4, 4);
  ASSERT_EQ(units.size(), 4u);
  std::vector<WorkerOutput> outputs(units.size());
  for (size_t i = 0; i < units.size(); ++i) {
    std::string name = units[i].test == 0 ? "a" : "b";
    for (unsigned k = 0; k < units[i].count; ++k) {
      unsigned rep = units[i].first + k;
      outputs[i].runs.push_back(run(name, rep, rep != 3, "sig"));
    }
    outputs[i].vms = 1;
  }
  outputs[3].skipped = 1;
  // Shuffled together, as if they had finished in another order.
  std::vector<size_t> order = {3, 1, 0, 2};
  std::vector<TestUnit> shuffled_units;
  std::vector<WorkerOutput> shuffled_outputs;
  for (size_t i : order) {
    shuffled_units.push_back(units[i]);
    shuffled_outputs.push_back(outputs[i]);
  }
  for (const auto& [u, o] : {std::pair{units, outputs}, std::pair{shuffled_units, shuffled_outputs}}) {
    auto tests = merge_units(2, u, o);
    ASSERT_EQ(tests.size(), 2u);
    for (size_t t = 0; t < 2; ++t) {
      ASSERT_EQ(tests[t].runs.size(), 4u);
      for (unsigned k = 0; k < 4; ++k) EXPECT_EQ(tests[t].runs[k].result["repetition"], k + 1);
      EXPECT_EQ(tests[t].runs[0].result["name"], t == 0 ? "a" : "b");
      EXPECT_EQ(tests[t].vms, 2u);
    }
    EXPECT_EQ(tests[0].skipped, 0u);
    EXPECT_EQ(tests[1].skipped, 1u);
    // The tally is over all of a test's runs: one line, one report per
    // distinct failure.
    std::vector<RunOutline> outlines;
    for (const WorkerRun& r : tests[1].runs) outlines.push_back(r.outline);
    RepeatTally tally = tally_repeat(outlines, tests[1].skipped);
    EXPECT_EQ(tally.line(), "5 runs: 1 failed (signature summary sig), 0 other, 3 passed, 1 skipped");
    auto distinct = distinct_failures(outlines);
    ASSERT_EQ(distinct.size(), 1u);
    EXPECT_EQ(tests[1].runs[distinct[0]].failure, "report of b #3\n");
  }
}

TEST(JobsOverrides, BadOverridesAreErrors) {
  TestSpec eevdf;
  eevdf.name = "e";
  CellOverrides o;
  o.sched_args = std::vector<std::string>{"-v"};
  auto st = apply_cell_overrides(eevdf, o);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().msg.find("eevdf"), std::string::npos) << st.error().msg;
  o.sched_args = std::vector<std::string>{};
  EXPECT_TRUE(apply_cell_overrides(eevdf, o));  // nothing to pass is fine
}

}  // namespace
}  // namespace ktstr::runner

namespace ktstr::runner {

TEST(JobsWorker, KernelRecordReachesTheWorkerWhole) {
  KernelRecord k;
  k.id = "abc123";
  k.version = "6.12.3";
  k.name = "mine";
  k.source = "file:/boot/vmlinuz";
  k.image_path = "/cache/kernels/abc123/bzImage";
  k.config_path = "/cache/kernels/abc123/config";
  k.vmlinux_path = "/cache/kernels/abc123/vmlinux";
  k.image_sha256 = "ff00";
  k.image_size = 12345678;
  k.sched_ext = true;
  k.tracepoints = {"sched_ext_exit"};
  k.added_at = 1700000000;
  auto back = kbuild::kernel_from_json(kbuild::kernel_json(k).dump());
  ASSERT_TRUE(back) << back.error().msg;
  EXPECT_EQ(kbuild::kernel_json(*back), kbuild::kernel_json(k));
  for (const char* bad : {"", "[]", R"({"id":"x"})", R"({"id":"","image":"/b"})", R"({"id":1,"image":"/b"})",
                          R"({"id":"x","image":"/b","sched_ext":"yes"})"})
    EXPECT_FALSE(kbuild::kernel_from_json(bad)) << bad;
}

}  // namespace ktstr::runner
