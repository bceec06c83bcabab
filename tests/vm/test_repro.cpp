// Auto-repro in real VMs through the real ktstr binary: the crash of
// tests/vm/specs/crash.toml replayed with probes (7.3: tp_btf trigger fires,
// fentry events on ktstr_dispatch decode the task), a crash record whose map
// write was removed (not reproduced), and on 6.17 the fallback trigger.
#include "core/spec.hpp"
#include "db/crashes.hpp"
#include "db/store.hpp"
#include "vm/vm_store.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>

namespace ktstr::testing {
namespace {

// A fentry event on ktstr_dispatch whose task argument was decoded.
bool has_decoded_dispatch(const nlohmann::json& events) {
  for (auto& e : events) {
    if (e.value("kind", "") != "fentry" || e.value("func", "") != "ktstr_dispatch") continue;
    for (auto& a : e["args"])
      if (a.value("kind", "") == "task" && a.contains("task") && a["task"].value("pid", 0) >= 0 &&
          !a["task"].value("comm", "").empty() && !a["task"].value("cpus", "").empty())
        return true;
  }
  return false;
}

// `ktstr test --json [extra...] crash.toml` on `image`: the one test's JSON.
nlohmann::json crash_test(const VmStore& store, const std::string& image, std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"test", "--json", "--kernel", image};
  args.insert(args.end(), extra.begin(), extra.end());
  args.push_back(kVmSpecs + "/crash.toml");
  auto r = store.ktstr(args);
  EXPECT_EQ(r.status, 1) << r.err;
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  if (j.is_discarded() || !j.contains("tests") || j["tests"].empty()) {
    ADD_FAILURE() << "no JSON from ktstr test: " << r.err;
    return nlohmann::json::object();
  }
  return j["tests"][0];
}

TEST(Repro, CrashIsReplayedWithProbesAndReproduces) {
  std::string image = default_kernel_with_version("7.3");
  KTSTR_VM_REQUIRE(!image.empty(), "no cached 7.3 kernel (ktstr kernel fetch 7.3)");
  KTSTR_VM_STORE(store);
  auto t = crash_test(store, image);
  EXPECT_EQ(t["kernel"]["version"].get<std::string>().rfind("7.3", 0), 0u);
  ASSERT_TRUE(t.contains("crash_id")) << t.dump(1).substr(0, 3000);
  ASSERT_TRUE(t.contains("repro")) << t.value("diagnostics", nlohmann::json()).dump();
  auto& r = t["repro"];
  EXPECT_GE(r["pipeline"]["extracted"].get<int>(), 5);
  EXPECT_GE(r["pipeline"]["traceable_passed"].get<int>(), 1) << r["pipeline"];
  EXPECT_GE(r["pipeline"]["kprobes_attached"].get<int>(), 1) << r["pipeline"];
  EXPECT_EQ(r["pipeline"]["trigger"], "fired (tp_btf/sched_ext_exit)") << r.value("notes", nlohmann::json());
  EXPECT_TRUE(r["trigger_fired"].get<bool>());
  EXPECT_TRUE(has_decoded_dispatch(r["events"])) << r["events"].dump().substr(0, 3000);
  EXPECT_TRUE(r["reproduced"].get<bool>()) << r.value("reproduced_text", "");
  // The host sent the sched_ext_ops callbacks' argument kinds (the task of
  // ktstr_dispatch above was decoded with them).
  EXPECT_FALSE(r["plan"].value("ops_args", nlohmann::json::array()).empty()) << r["plan"];

  // The crash came 2 s into the workload. When that is well beyond what the
  // probes should take on this host (the crashed run's scheduler load
  // says), the replay starts the workload as the crashed run did and the
  // probes attach meanwhile: set after it began, before the crash, or the
  // repro says they were late.
  double died_at = t["sched"]["exit_t_s"];
  bool during = r["plan"].value("probes_during_workload", false);
  EXPECT_EQ(during, died_at >= std::max(1.0, 0.5 + 2.5 * t["sched"]["attach_s"].get<double>())) << r["plan"];
  ASSERT_TRUE(r["timing"].contains("probes_set_s")) << r["timing"];
  double set_at = r["timing"]["probes_set_s"];
  if (during) {
    EXPECT_GT(set_at, 0.0);
    bool late_noted = false;
    for (auto& n : r["notes"]) late_noted |= n.get<std::string>().find("before the probes were all set") != std::string::npos;
    EXPECT_TRUE(set_at < died_at || late_noted) << set_at << " " << r["notes"];
  } else {
    EXPECT_LT(set_at, 0.0);  // the workload waited for them
  }
  // A TCG guest is restored from (or saved to) a snapshot that has the
  // probes' kernel object loaded already.
  if (t["accel"] == "tcg" && std::getenv("KTSTR_SNAPSHOT") == nullptr) {
    EXPECT_TRUE(r["timing"]["guest_ms"].contains("kernel_preloaded")) << r["timing"];
  }

  // The stored crash report carries the section; `crash show` prints it.
  auto show = store.ktstr({"crash", "show", t["crash_id"].get<std::string>()});
  ASSERT_EQ(show.status, 0) << show.err;
  for (auto* line : {"--- auto-repro ---", "--- probe pipeline ---", "extracted: ", "trigger: fired (tp_btf/sched_ext_exit)",
                     "fentry ktstr_dispatch", "reproduced: yes (same signature)"})
    EXPECT_NE(show.out.find(line), std::string::npos) << line << "\n" << show.out.substr(0, 6000);
}

TEST(Repro, CrashWithoutItsMapWriteIsReportedAsNotReproduced) {
  std::string image = default_kernel_with_version("7.3");
  KTSTR_VM_REQUIRE(!image.empty(), "no cached 7.3 kernel (ktstr kernel fetch 7.3)");
  KTSTR_VM_STORE(store);
  auto test = crash_test(store, image, {"--no-auto-repro"});
  EXPECT_FALSE(test.contains("repro"));  // --no-auto-repro
  ASSERT_TRUE(test.contains("crash_id"));

  // A copy of the record whose spec no longer writes the crash trigger.
  std::string copy_id;
  {
    auto db = db::Store::open(store.path() + "/cache");
    ASSERT_TRUE(db) << db.error().msg;
    auto found = db::find_crash(**db, test["crash_id"]);
    ASSERT_TRUE(found && *found);
    CrashRecord c = **found;
    auto specs = parse_spec_text(c.spec_toml, "crash");
    ASSERT_TRUE(specs && specs->size() == 1);
    TestSpec spec = specs->front();
    ASSERT_FALSE(spec.bpf_map_writes.empty());
    spec.bpf_map_writes.clear();
    c.spec_toml = spec_to_toml(spec);
    c.id = db::new_crash_id(c);
    ASSERT_TRUE(db::put_crash(**db, c));
    copy_id = c.id;
  }
  auto rep = store.ktstr({"repro", "--json", copy_id});
  EXPECT_EQ(rep.status, 1) << rep.err;  // not reproduced
  auto r = nlohmann::json::parse(rep.out, nullptr, false);
  ASSERT_TRUE(r.is_object()) << rep.out << rep.err;
  EXPECT_EQ(r["outcome"], "no_crash");
  EXPECT_EQ(r["reproduced_text"], "no — the scheduler did not crash");
  EXPECT_FALSE(r["trigger_fired"].get<bool>());

  auto text = store.ktstr({"repro", copy_id.substr(0, 6)});
  EXPECT_NE(text.out.find("reproduced: no — the scheduler did not crash"), std::string::npos) << text.out;

  auto unknown = store.ktstr({"repro", "ffffffffffff"});
  EXPECT_EQ(unknown.status, 2);
  EXPECT_NE(unknown.err.find("ktstr crash list"), std::string::npos) << unknown.err;
}

TEST(Repro, Kernel617UsesTheFallbackTrigger) {
  std::string image = default_kernel_with_version("6.17");
  KTSTR_VM_REQUIRE(!image.empty(), "no cached 6.17 kernel (ktstr kernel fetch 6.17)");
  KTSTR_VM_STORE(store);
  auto t = crash_test(store, image);
  EXPECT_EQ(t["kernel"]["version"].get<std::string>().rfind("6.17", 0), 0u);
  ASSERT_TRUE(t.contains("repro")) << t.value("diagnostics", nlohmann::json()).dump();
  auto& r = t["repro"];
  ASSERT_TRUE(r.contains("setup")) << r.value("notes", nlohmann::json());
  EXPECT_EQ(r["setup"]["trigger"]["fallback_from"], "sched_ext_exit") << r["setup"]["trigger"];
  // The crash's own exit frame first, then the exit path from the guest's BTF.
  std::string names = r["setup"]["trigger"]["name"];
  EXPECT_EQ(names.substr(0, names.find(',')), "scx_kf_exit") << names;
  std::string trigger = r["pipeline"]["trigger"];
  EXPECT_EQ(trigger.rfind("fired (fallback kprobe scx_kf_exit; tp_btf/sched_ext_exit: attach failed: ", 0), 0u) << trigger;
  EXPECT_GT(r["pipeline"]["events_after_stitch"].get<int>(), 0);
  EXPECT_FALSE(r["events"].empty());
}

}  // namespace
}  // namespace ktstr::testing
