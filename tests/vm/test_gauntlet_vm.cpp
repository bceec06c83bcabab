// `ktstr gauntlet` through the real binary in real VMs: one scx_tiny test
// (spec topology 1n1l2c1t, a 2 s steady load) over 2 kernels (the default
// 7.x and a 6.17) x 1 topology (1n1l1c1t, not the spec's: the override must
// reach the VM) x 2 argument sets, one of which makes scx_tiny fail itself
// (`--fail-after-ms 300`): 4 cells. From the --json output and from the
// store: every cell ran on its own kernel and topology with its arguments
// (the stored run and the guest's own view, not the grid), the crashing
// cells are CRASH with crash records the store holds, the others pass,
// exit status 1.
#include "vm/vm_store.hpp"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <stdexcept>

namespace ktstr::testing {
namespace {

const std::string kTiny = std::string(KTSTR_BINARY_DIR) + "/tests/sched/scx_tiny";

std::string write_spec(const std::string& dir) {
  std::string path = dir + "/gauntlet.toml";
  std::string toml = "[[test]]\nname = \"gauntlet_tiny\"\nscheduler = \"" + kTiny +
                     "\"\ntopology = \"1n1l2c1t\"\nscenario = \"steady\"\nduration_s = 2\n";
  auto st = write_file_atomic(path, toml);
  if (!st) throw std::runtime_error(st.error().msg);
  return path;
}

TEST(GauntletVm, TwoKernelsTimesTwoArgumentSetsCrashWhereAskedAndRunWhereSaid) {
  KTSTR_VM_STORE(store);
  std::string old_image = default_kernel_with_version("6.17");
  KTSTR_VM_REQUIRE(!old_image.empty(), "no cached 6.17 kernel (scripts/ensure-kernel.sh build --with-6.17)");
  auto add = store.ktstr({"kernel", "add", old_image, "--json"});
  ASSERT_EQ(add.status, 0) << add.err;
  auto list = store.ktstr({"kernel", "list", "--json"});
  auto kernels = nlohmann::json::parse(list.out, nullptr, false);
  ASSERT_TRUE(kernels.is_array()) << list.out;
  std::string new_series;  // the default kernel's "7.x"
  std::map<std::string, std::string> id_of_series;
  for (auto& k : kernels) {
    std::string v = k.value("version", "");
    std::string series = v.substr(0, v.find('.', v.find('.') + 1));
    id_of_series[series] = k.value("id", "");
    if (series != "6.17") new_series = series;
  }
  ASSERT_EQ(id_of_series.size(), 2u) << list.out;
  ASSERT_FALSE(new_series.empty()) << list.out;

  auto dir = TempDir::create("ktstr-gauntlet");
  ASSERT_TRUE(dir);
  std::string spec = write_spec(dir->path());
  auto r = store.ktstr({"gauntlet", spec, "--kernel", new_series + ",6.17", "--topo", "1n1l1c1t", "--sched-args",
                        "", "--sched-args", "--fail-after-ms 300", "--json"},
                       {"KTSTR_VM_LOCK="});
  auto doc = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << "status " << r.status << ": " << r.err << r.out;
  EXPECT_EQ(r.status, 1) << r.err;
  ASSERT_EQ(doc["cells"].size(), 4u) << doc.dump(1);
  EXPECT_EQ(doc["summary"]["passed"], 2) << doc.dump(1);
  EXPECT_EQ(doc["summary"]["crashed"], 2) << doc.dump(1);

  std::set<std::pair<std::string, bool>> seen;  // (kernel id, crashing args)
  std::set<int64_t> run_ids;
  for (auto& c : doc["cells"]) {
    const std::string text = c.dump(1).substr(0, 3000);
    const bool crashing = c["sched_args"] == nlohmann::json({"--fail-after-ms", "300"});
    if (!crashing) {
      EXPECT_EQ(c["sched_args"], nlohmann::json::array()) << text;
    }
    EXPECT_FALSE(c["sched_args_from_spec"].get<bool>()) << text;
    std::string series = c["kernel"]["ref"].get<std::string>();
    ASSERT_TRUE(id_of_series.count(series)) << text;
    EXPECT_EQ(c["kernel"]["id"], id_of_series[series]) << text;
    seen.insert({c["kernel"]["id"].get<std::string>(), crashing});
    ASSERT_TRUE(c["run_id"].is_number_integer()) << text;
    int64_t run_id = c["run_id"].get<int64_t>();
    run_ids.insert(run_id);

    // The stored run: its kernel, topology, scheduler arguments, and what
    // the guest itself saw.
    auto shown = store.ktstr({"runs", "show", std::to_string(run_id), "--json"});
    ASSERT_EQ(shown.status, 0) << shown.err;
    auto run = nlohmann::json::parse(shown.out, nullptr, false);
    ASSERT_TRUE(run.is_object()) << shown.out.substr(0, 2000);
    EXPECT_EQ(run["kernel"]["id"], id_of_series[series]) << text;
    EXPECT_EQ(run["kernel"]["version"].get<std::string>().rfind(series + ".", 0), 0u) << text;
    EXPECT_EQ(run["topology"], "1n1l1c1t") << text;
    ASSERT_TRUE(run.contains("guest_topology")) << shown.out.substr(0, 2000);
    EXPECT_EQ(run["guest_topology"]["cpus"], 1) << text;
    EXPECT_EQ(run["sched"]["args"], c["sched_args"]) << text;

    if (crashing) {
      EXPECT_EQ(c["verdict"], "crash") << text;
      ASSERT_TRUE(c["crash_id"].is_string()) << text;
      std::string crash_id = c["crash_id"].get<std::string>();
      // The crash record is in the store, with this cell's axes and run.
      // (The stored run itself was written before the crash was recorded,
      // so its result names no crash id.)
      auto crash = store.ktstr({"crash", "show", crash_id, "--json"});
      ASSERT_EQ(crash.status, 0) << crash.err;
      auto rec = nlohmann::json::parse(crash.out, nullptr, false);
      ASSERT_TRUE(rec.is_object()) << crash.out.substr(0, 2000);
      const std::string rec_text = rec.dump().substr(0, 3000);
      EXPECT_NE(rec.value("report", "").find("tiny: told to fail"), std::string::npos) << rec_text;
      EXPECT_EQ(rec["kernel_id"], id_of_series[series]) << rec_text;
      EXPECT_EQ(rec["topology"], "1n1l1c1t") << rec_text;
      EXPECT_EQ(rec["sched_args"], c["sched_args"]) << rec_text;
      EXPECT_EQ(rec["run_id"], run_id) << rec_text;
    } else {
      EXPECT_EQ(c["verdict"], "pass") << text;
      EXPECT_TRUE(c["crash_id"].is_null()) << text;
      EXPECT_EQ(run["status"], "pass") << text;
    }
  }
  EXPECT_EQ(seen.size(), 4u) << "every kernel x argument set once";
  EXPECT_EQ(run_ids.size(), 4u);
  auto runs = store.ktstr({"runs", "list", "--json"});
  auto stored = nlohmann::json::parse(runs.out, nullptr, false);
  ASSERT_TRUE(stored.is_array()) << runs.out;
  EXPECT_EQ(stored.size(), 4u) << runs.out;
}

}  // namespace
}  // namespace ktstr::testing
