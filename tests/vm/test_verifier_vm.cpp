// `ktstr verifier` end to end: the fixture's programs loaded in one VM (the
// scx-ktstr binary, whose skeleton embeds the object, compared with the
// .bpf.o itself), with the verifier's real numbers; and the bad inputs that
// must fail before any VM boots.
#include "core/bpf_elf.hpp"
#include "core/fs.hpp"
#include "vm/vm_store.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <set>
#include <unistd.h>

namespace ktstr::testing {
namespace {

std::string self_exe() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, size_t(n)) : std::string();
}

const std::string kFixtureBin = std::string(KTSTR_BINARY_DIR) + "/bin/scx-ktstr";

std::set<std::string> struct_ops_sections() {
  auto obj = read_file(KTSTR_SCX_KTSTR_BPF_O);
  EXPECT_TRUE(obj);
  std::set<std::string> out;
  if (!obj) return out;
  auto sections = bpf_program_sections(*obj);
  EXPECT_TRUE(sections);
  if (!sections) return out;
  for (const std::string& s : *sections)
    if (s.rfind("struct_ops", 0) == 0) out.insert(s);
  return out;
}

TEST(VerifierVm, FixtureStatisticsAndSelfCompare) {
  KTSTR_VM_STORE(store);
  auto r = store.ktstr({"verifier", "--json", kFixtureBin, "--compare", KTSTR_SCX_KTSTR_BPF_O});
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << "not JSON (status " << r.status << "): " << r.out << "\n" << r.err;
  EXPECT_EQ(r.status, 0) << r.err << "\n" << j.dump(2);
  EXPECT_TRUE(j.value("ok", false)) << j.dump(2);
  ASSERT_TRUE(j.contains("a") && j.contains("b") && j.contains("deltas")) << j.dump(2);

  std::set<std::string> wanted = struct_ops_sections();
  ASSERT_GE(wanted.size(), 5u);
  for (const char* side : {"a", "b"}) {
    std::set<std::string> seen;
    uint64_t states = 0;
    for (const auto& p : j[side]["programs"]) {
      std::string what = std::string(side) + ": " + p.dump();
      seen.insert(p.value("section", ""));
      EXPECT_TRUE(p.value("loaded", false)) << what;
      ASSERT_TRUE(p["verified_insns"].is_number_unsigned()) << what;
      EXPECT_GT(p["verified_insns"].get<uint64_t>(), 0u) << what;
      // ktstr_init has no branch: 0 states is a real count there.
      ASSERT_TRUE(p["total_states"].is_number_unsigned()) << what;
      ASSERT_TRUE(p["peak_states"].is_number_unsigned()) << what;
      EXPECT_LE(p["peak_states"].get<uint64_t>(), p["total_states"].get<uint64_t>()) << what;
      states += p["total_states"].get<uint64_t>();
      if (p.value("name", "") == "ktstr_dispatch") {
        EXPECT_GT(p["total_states"].get<uint64_t>(), 0u) << what;
      }
      ASSERT_TRUE(p["verification_time_us"].is_number_unsigned()) << what;
      EXPECT_GT(p["verification_time_us"].get<uint64_t>(), 0u) << what;
      ASSERT_TRUE(p["xlated_insns"].is_number_unsigned()) << what;
      EXPECT_GT(p["xlated_insns"].get<uint64_t>(), 0u) << what;
      EXPECT_EQ(p.value("type", ""), "struct_ops") << what;
      EXPECT_FALSE(p.value("attach", "").empty()) << what;  // the sched_ext_ops member
    }
    for (const std::string& s : wanted) EXPECT_TRUE(seen.count(s)) << side << " lacks program section " << s;
    EXPECT_GT(states, 0u) << side;
  }
  // The binary embeds the object byte for byte: the verifier does the same work.
  ASSERT_EQ(j["deltas"].size(), j["a"]["programs"].size());
  for (const auto& d : j["deltas"]) {
    EXPECT_EQ(d.value("in", ""), "both") << d.dump();
    EXPECT_EQ(d["verified_insns"]["delta"], 0) << d.dump();
    EXPECT_EQ(d["total_states"]["delta"], 0) << d.dump();
    EXPECT_EQ(d["xlated_insns"]["delta"], 0) << d.dump();
  }
}

// No VM: each must fail with exit 2 and one error line plus a hint, fast.
TEST(VerifierVm, BadInputFailsBeforeBooting) {
  auto dir = TempDir::create("ktstr-verifier-test");
  ASSERT_TRUE(dir);
  std::string text = dir->path() + "/notes.txt";
  ASSERT_TRUE(write_file_atomic(text, "not an object\n"));
  std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"verifier", dir->path() + "/missing.bpf.o"}, "does not exist"},
      {{"verifier", text}, "not an ELF file"},
      {{"verifier", self_exe()}, "no BPF object inside"},  // an x86-64 ELF without a skeleton
      {{"verifier", KTSTR_SCX_KTSTR_BPF_O, "--compare", text}, "not an ELF file"},
  };
  for (auto& [args, want] : cases) {
    std::vector<std::string> argv = {kKtstrBin};
    argv.insert(argv.end(), args.begin(), args.end());
    SpawnOptions o;
    o.env_extra = {"KTSTR_CACHE_DIR=" + dir->path() + "/cache"};
    auto r = run(argv, o, std::chrono::seconds(30));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 2) << args.back() << ": " << r->err;
    EXPECT_NE(r->err.find("ktstr: error: "), std::string::npos) << r->err;
    EXPECT_NE(r->err.find(want), std::string::npos) << r->err;
    EXPECT_TRUE(r->out.empty()) << r->out;
    // Nothing was booted or stored.
    EXPECT_FALSE(path_exists(dir->path() + "/cache/ktstr.db")) << args.back();
  }
}

}  // namespace
}  // namespace ktstr::testing
