// run/worker and run/gauntlet_run: what a worker gets (one request, JSON on
// its argv) comes back whole; a gauntlet cell's overrides reach the worker's
// spec; a gauntlet unit asks the executor (and Slurm) for its topology's
// CPUs and memory.
#include "run/gauntlet_run.hpp"
#include "run/worker.hpp"
#include "run/workers.hpp"
#include "core/fs.hpp"
#include "executor/slurm.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

namespace ktstr::runner {
namespace {

KernelRecord kernel() {
  KernelRecord k;
  k.id = "abc123";
  k.version = "7.3.1";
  k.image_path = "/cache/kernels/abc123/bzImage";
  k.sched_ext = true;
  return k;
}

WorkerRequest request() {
  WorkerRequest r;
  r.spec_file = "/specs/a.toml";
  r.test = "t";
  r.kernel = kernel();
  r.artifacts_dir = "/cache/artifacts";
  r.options.verbose = true;
  r.options.seed = 0xfedcba9876543210ull;  // all 64 bits
  r.options.memory_mb = 1024;
  r.options.repeat = 10;
  r.options.auto_repro = false;
  r.unit.first = 5;
  r.unit.count = 3;
  r.unit.part = 2;
  r.unit.parts = 3;
  r.overrides.topology = Topology{2, 4, 2, 1};
  r.overrides.sched_args = std::vector<std::string>{"--name", "a b", "it's"};
  return r;
}

TEST(WorkerRequest, RoundTripsThroughTheArgv) {
  WorkerRequest r = request();
  auto argv = worker_argv(r);
  ASSERT_EQ(argv.size(), 3u);
  EXPECT_EQ(argv[1], "worker");
  auto back = parse_worker_request(argv[2]);
  ASSERT_TRUE(back) << back.error().msg;
  EXPECT_EQ(worker_request_json(*back), worker_request_json(r));
  EXPECT_EQ(back->options.seed, r.options.seed);
  EXPECT_EQ(back->unit.first, 5u);
  EXPECT_EQ(back->unit.parts, 3u);
  EXPECT_EQ(back->overrides.topology, r.overrides.topology);
  EXPECT_EQ(back->overrides.sched_args, r.overrides.sched_args);
  // No seed and no overrides stay absent (a fresh seed; the spec's values).
  WorkerRequest plain = request();
  plain.options.seed.reset();
  plain.overrides = {};
  auto p = parse_worker_request(worker_request_json(plain).dump());
  ASSERT_TRUE(p) << p.error().msg;
  EXPECT_FALSE(p->options.seed);
  EXPECT_FALSE(p->overrides.topology);
  EXPECT_FALSE(p->overrides.sched_args);
}

TEST(WorkerRequest, MalformedRequestsAreErrors) {
  auto good = worker_request_json(request());
  EXPECT_TRUE(parse_worker_request(good.dump()));
  std::vector<nlohmann::json> bad;
  for (const char* key : {"test", "kernel", "artifacts", "runs", "repeat", "verbose", "auto_repro", "memory_mb"}) {
    bad.push_back(good);
    bad.back().erase(key);
  }
  bad.push_back(good), bad.back()["spec_toml"] = "[[test]]";  // both a file and a spec
  bad.push_back(good), bad.back().erase("spec_file");        // neither
  bad.push_back(good), bad.back()["runs"] = "1:1:2:1";
  bad.push_back(good), bad.back()["seed"] = "x";
  bad.push_back(good), bad.back()["topo"] = "1n1l2c";
  bad.push_back(good), bad.back()["sched_args"] = {1, 2};
  bad.push_back(good), bad.back()["ktstr_worker_request"] = 2;
  for (auto& j : bad) EXPECT_FALSE(parse_worker_request(j.dump())) << j.dump();
  EXPECT_FALSE(parse_worker_request("not json"));
}

// The cell's topology and arguments replace the spec's in the worker's test.
TEST(WorkerRequest, TheWorkersTestHasTheCellsOverrides) {
  auto tmp = TempDir::create("ktstr-worker");
  ASSERT_TRUE(tmp);
  const std::string file = tmp->path() + "/a.toml";
  std::ofstream(file) << "[[test]]\nname = \"other\"\n\n[[test]]\nname = \"t\"\nscheduler = \"/bin/true\"\n"
                         "sched_args = [\"--old\"]\ntopology = \"1n1l2c1t\"\n";
  WorkerRequest r = request();
  r.spec_file = file;
  auto spec = worker_test(r);
  ASSERT_TRUE(spec) << spec.error().msg;
  EXPECT_EQ(spec->name, "t");
  EXPECT_EQ(spec->topology, *r.overrides.topology);
  EXPECT_EQ(spec->sched_args, *r.overrides.sched_args);
  r.overrides = {};
  spec = worker_test(r);
  ASSERT_TRUE(spec) << spec.error().msg;
  EXPECT_EQ(spec->topology.to_string(), "1n1l2c1t");
  EXPECT_EQ(spec->sched_args, std::vector<std::string>{"--old"});
  // No arguments is an override too: the spec's are dropped.
  r.overrides.sched_args = std::vector<std::string>{};
  spec = worker_test(r);
  ASSERT_TRUE(spec);
  EXPECT_TRUE(spec->sched_args.empty());
  r.test = "missing";
  EXPECT_FALSE(worker_test(r));
  // An ad-hoc test travels as its spec.
  WorkerRequest adhoc = request();
  adhoc.spec_file.clear();
  adhoc.overrides = {};
  adhoc.spec_toml = "[[test]]\nname = \"t\"\nduration_s = 4.5\n";
  auto back = parse_worker_request(worker_request_json(adhoc).dump());
  ASSERT_TRUE(back) << back.error().msg;
  spec = worker_test(*back);
  ASSERT_TRUE(spec) << spec.error().msg;
  EXPECT_DOUBLE_EQ(spec->duration_s, 4.5);
}

GauntletAxes two_node_axes() {
  GauntletAxes axes;
  TestSpec spec;
  spec.name = "t";
  spec.source_file = "/specs/a.toml";
  spec.scheduler = "scx-ktstr";
  spec.memory_mb = 2048;
  axes.specs.push_back(spec);
  axes.topologies = std::vector<Topology>{Topology{1, 1, 2, 1}, Topology{2, 2, 4, 1}};
  axes.kernels.push_back({"7.3", kernel()});
  axes.arg_sets.emplace_back(std::nullopt);
  return axes;
}

// Each cell's unit carries its own topology's CPUs and its memory; a Slurm
// job array asks for the largest.
TEST(GauntletPlan, UnitsAskForTheirTopologysCpusAndMemory) {
  GauntletPlan plan = plan_gauntlet(two_node_axes(), "/cache/artifacts", false, false);
  ASSERT_EQ(plan.cells.size(), 2u);
  ASSERT_EQ(plan.units.size(), 2u);
  EXPECT_EQ(plan.units[0].cpus, 2u);
  EXPECT_EQ(plan.units[1].cpus, 8u);
  EXPECT_EQ(plan.units[1].memory_mb, 2048u + kQemuOverheadMb);
  EXPECT_EQ(plan.need.cpus, 8u);
  EXPECT_EQ(plan.need.memory_mb, 2048u);
  EXPECT_EQ(plan.unit_specs[1].topology.to_string(), "2n2l4c1t");
  // The worker gets the cell's topology in its request.
  auto r = parse_worker_request(plan.units[1].argv.at(2));
  ASSERT_TRUE(r) << r.error().msg;
  EXPECT_EQ(r->overrides.topology->to_string(), "2n2l4c1t");
  EXPECT_FALSE(r->options.auto_repro);
  EXPECT_EQ(r->options.repeat, 1u);

  executor::SlurmOptions so;
  so.job_dir = "/jobs/job-1";
  so.runner = "/usr/bin/ktstr";
  auto argv = executor::sbatch_argv(so, work_units(plan.units), "/jobs/job-1/task.sh");
  EXPECT_NE(std::find(argv.begin(), argv.end(), "--cpus-per-task=8"), argv.end());
  EXPECT_NE(std::find(argv.begin(), argv.end(), "--mem=" + std::to_string(2048 + kQemuOverheadMb)), argv.end());
  EXPECT_NE(std::find(argv.begin(), argv.end(), "--array=0-1"), argv.end());
}

TEST(GauntletPlan, CellsThatCannotRunAreSkippedWithTheirReason) {
  GauntletAxes axes = two_node_axes();
  axes.kernels.front().kernel->sched_ext = false;
  GauntletPlan plan = plan_gauntlet(axes, "/cache/artifacts", false, true);
  EXPECT_TRUE(plan.units.empty());
  ASSERT_EQ(plan.cells.size(), 2u);
  EXPECT_EQ(plan.cells[0].detail, "no sched_ext");
  EXPECT_EQ(plan.cells[0].verdict, Verdict::kSkip);
}

}  // namespace
}  // namespace ktstr::runner
