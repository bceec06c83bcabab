// The crash demo with auto-repro on one kernel per series the Debian archive
// offers (labels vm;slow: on demand, CI skips it). A kernel already in the
// cache (KTSTR_CACHE_DIR or the default one) is used as it is; a missing one
// is fetched there (kernels are big and shared). Every run gets a private
// store. Prints a table (version, how the trigger fired, events) and
// asserts on every series: the crash was recorded with the demo's signature
// (one signature across all series) and the repro's trigger fired.
// KTSTR_MATRIX_SERIES="6.17,7.3" limits the series.
#include "core/fs.hpp"
#include "core/sched_exit.hpp"
#include "core/subprocess.hpp"
#include "db/store.hpp"
#include "kbuild/bzimage.hpp"
#include "kbuild/debian_fetch.hpp"
#include "vm/vm_env.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <map>

namespace ktstr::testing {
namespace {

const std::string kKtstr = std::string(KTSTR_BINARY_DIR) + "/bin/ktstr";
const std::string kDemo = std::string(KTSTR_SOURCE_DIR) + "/tests/demo/crash_demo.toml";

struct Row {
  std::string version;
  bool crash_recorded = false;
  std::string signature_key;
  std::string summary;
  std::string trigger_how;  // "tp_btf sched_ext_exit", "kprobe scx_exit", ...
  bool trigger_fired = false;
  uint64_t events = 0;
  std::string outcome;
  std::string problem;
};

std::string series_of(const std::string& release) {
  std::string v = kbuild::upstream_version(release);
  size_t second = v.find('.', v.find('.') + 1);
  return v.substr(0, second);
}

Completed ktstr_in(const std::string& cache, std::vector<std::string> args) {
  args.insert(args.begin(), kKtstr);
  SpawnOptions o;
  o.env_extra = {"KTSTR_CACHE_DIR=" + cache};
  auto r = run(args, o, std::chrono::minutes(15));
  return r ? *r : Completed{};
}

// The image of the cached kernel built from `release`, else empty.
std::string cached_image(db::Store& store, const std::string& release) {
  auto all = store.list_kernels();
  if (!all) return {};
  for (const auto& k : *all)
    if (k.version == release && !k.image_path.empty() && path_exists(k.image_path)) return k.image_path;
  return {};
}

Row run_series(db::Store& store, const kbuild::DebianKernelPackage& pkg) {
  Row row;
  row.version = kbuild::upstream_version(pkg.release);
  std::string image = cached_image(store, pkg.release);
  if (image.empty()) {
    auto fetched = run({kKtstr, "kernel", "fetch", row.version, "--json"}, {}, std::chrono::minutes(20));
    if (!fetched || !fetched->ok()) {
      row.problem = "fetch failed: " + (fetched ? fetched->err : fetched.error().msg);
      return row;
    }
    auto k = nlohmann::json::parse(fetched->out, nullptr, false);
    image = k.is_object() ? k.value("image", "") : "";
    if (image.empty()) {
      row.problem = "no image in: " + fetched->out;
      return row;
    }
  }
  auto dir = TempDir::create("ktstr-matrix");
  if (!dir) {
    row.problem = "no temporary directory: " + dir.error().msg;
    return row;
  }
  const std::string cache = dir->path() + "/cache";
  auto add = ktstr_in(cache, {"kernel", "add", image});
  if (add.status != 0) {
    row.problem = "kernel add failed: " + add.err;
    return row;
  }
  auto test = ktstr_in(cache, {"test", "--json", kDemo, "--kernel", image});
  auto doc = nlohmann::json::parse(test.out, nullptr, false);
  if (!doc.is_object() || !doc.contains("tests") || doc["tests"].empty()) {
    row.problem = "no JSON from ktstr test: " + test.err.substr(0, 400);
    return row;
  }
  const auto& t = doc["tests"][0];
  auto crashes = nlohmann::json::parse(ktstr_in(cache, {"crash", "list", "--json"}).out, nullptr, false);
  // The signature's source is the file name and line, without directories.
  if (crashes.is_array() && crashes.size() == 1 && crashes[0].value("kind", -1) == kScxExitErrorBpf &&
      crashes[0].value("message", "").find("host-triggered crash") != std::string::npos &&
      crashes[0].value("source", "").rfind("scx_ktstr.bpf.c:", 0) == 0) {
    row.crash_recorded = true;
    row.signature_key = crashes[0].value("signature_key", "");
    row.summary = crashes[0].value("latest_summary", "");
  } else {
    row.problem = "crash list: " + crashes.dump().substr(0, 400);
  }
  if (!t.contains("repro")) {
    row.problem += " no auto-repro: " + t.value("reason", "");
    return row;
  }
  const auto& r = t["repro"];
  row.trigger_fired = r.value("trigger_fired", false);
  row.events = r["pipeline"].value("events_captured", uint64_t{0});
  row.outcome = r.value("outcome", "");
  if (r.contains("setup")) {
    const auto& trig = r["setup"]["trigger"];
    std::string kind = trig.value("kind", ""), name = trig.value("name", "");
    // The function that fired: the earliest trigger event.
    uint64_t best = UINT64_MAX;
    for (const auto& e : r["events"])
      if (e.value("kind", "") == "trigger" && e.value("t_ns", UINT64_MAX) < best) {
        best = e.value("t_ns", UINT64_MAX);
        name = e.value("func", name);
      }
    row.trigger_how = kind == "tp_btf" ? "tp_btf " + name : kind == "kprobe" ? "fallback kprobe " + name : kind;
  }
  if (!row.trigger_fired) row.problem += " trigger: " + r["pipeline"].value("trigger", "");
  return row;
}

TEST(KernelMatrix, CrashDemoRecordsAndTheReproTriggerFiresOnEverySeries) {
  KTSTR_VM_REQUIRE(!find_in_path("qemu-system-x86_64").empty(), "qemu-system-x86_64 is not installed");
  KTSTR_VM_REQUIRE(!find_in_path("apt-get").empty(), "apt-get is not installed (kernels come from Debian)");
  auto store = db::Store::open(cache_dir());
  ASSERT_TRUE(store) << store.error().msg;
  auto offered = kbuild::list_debian_kernels(**store);
  ASSERT_TRUE(offered) << offered.error().msg;
  std::map<std::string, kbuild::DebianKernelPackage> newest;  // offered is oldest first
  for (const auto& p : *offered) newest[series_of(p.release)] = p;
  std::string only;
  if (const char* s = std::getenv("KTSTR_MATRIX_SERIES"); s) only = "," + std::string(s) + ",";
  std::vector<kbuild::DebianKernelPackage> ladder;
  for (const auto& p : *offered)
    if (newest[series_of(p.release)].release == p.release &&
        (only.empty() || only.find("," + series_of(p.release) + ",") != std::string::npos))
      ladder.push_back(p);
  ASSERT_FALSE(ladder.empty());

  std::vector<Row> rows;
  for (const auto& p : ladder) {
    rows.push_back(run_series(**store, p));
    const Row& r = rows.back();  // as it goes: a full matrix takes a while under TCG
    std::printf("[matrix] %s: crash %s, trigger %s%s, %llu events, repro %s%s\n", r.version.c_str(),
                r.crash_recorded ? "recorded" : "NOT recorded", r.trigger_fired ? "fired: " : "NOT fired: ",
                r.trigger_how.c_str(), static_cast<unsigned long long>(r.events), r.outcome.c_str(),
                r.problem.empty() ? "" : (" (" + r.problem + ")").c_str());
    std::fflush(stdout);
  }

  std::string table = fmt::format("{:<9} {:<6} {:<17} {:<32} {:>7} {}\n", "version", "crash", "signature",
                                  "trigger", "events", "repro");
  for (const auto& r : rows)
    table += fmt::format("{:<9} {:<6} {:<17} {:<32} {:>7} {}\n", r.version, r.crash_recorded ? "yes" : "NO",
                         r.signature_key.empty() ? "-" : r.signature_key,
                         (r.trigger_fired ? "fired: " : "NOT fired: ") + r.trigger_how, r.events,
                         r.outcome.empty() ? "-" : r.outcome);
  std::printf("%s", table.c_str());
  for (const auto& r : rows) {
    EXPECT_TRUE(r.crash_recorded) << r.version << ": " << r.problem;
    EXPECT_TRUE(r.trigger_fired) << r.version << ": " << r.problem;
    EXPECT_GT(r.events, 0u) << r.version;
    EXPECT_EQ(r.signature_key, rows.front().signature_key) << r.version << " recorded another signature";
  }
}

}  // namespace
}  // namespace ktstr::testing
