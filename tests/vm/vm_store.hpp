// A private ktstr store for VM tests, holding the kernel the default store
// has (registered by path, so nothing is downloaded again), and helpers to
// run the real ktstr binary in it.
#pragma once

#include "core/fs.hpp"
#include "core/subprocess.hpp"
#include "vm/vm_env.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace ktstr::testing {

inline const std::string kKtstrBin = std::string(KTSTR_BINARY_DIR) + "/bin/ktstr";
inline const std::string kVmSpecs = std::string(KTSTR_SOURCE_DIR) + "/tests/vm/specs";

// The image of a sched_ext kernel of the default store whose version starts
// with `prefix` (the first one `kernel list` shows, not flagged corrupt); ""
// when there is none.
inline std::string default_kernel_with_version(const std::string& prefix) {
  auto r = run({kKtstrBin, "kernel", "list", "--json"});
  if (!r || !r->ok()) return "";
  auto j = nlohmann::json::parse(r->out, nullptr, false);
  if (!j.is_array()) return "";
  for (auto& k : j)
    if (k.value("version", "").rfind(prefix, 0) == 0 && k.value("sched_ext", false) && !k.value("corrupt", true))
      return k.value("image", "");
  return "";
}

// The default store's sched_ext kernel image for VM tests: a 7.x kernel
// when one is cached (the tests' expectations are 7.x's), else any; "" if none.
inline std::string default_kernel_image() {
  std::string image = default_kernel_with_version("7.");
  return image.empty() ? default_kernel_with_version("") : image;
}

class VmStore {
 public:
  // Empty optional (with the test failed or skipped) when no kernel/QEMU.
  static std::optional<VmStore> create() {
    std::string image = default_kernel_image();
    if (image.empty() || find_in_path("qemu-system-x86_64").empty()) return std::nullopt;
    auto dir = TempDir::create("ktstr-vmtest");
    if (!dir) return std::nullopt;
    VmStore s(std::move(*dir));
    auto add = s.ktstr({"kernel", "add", image});
    if (add.status != 0) {
      ADD_FAILURE() << "kernel add failed: " << add.err;
      return std::nullopt;
    }
    return s;
  }

  // `env`: more "K=V" for ktstr's environment.
  Completed ktstr(std::vector<std::string> args, const std::vector<std::string>& env = {}) const {
    args.insert(args.begin(), kKtstrBin);
    SpawnOptions o;
    o.env_extra = {"KTSTR_CACHE_DIR=" + dir_.path() + "/cache", "KTSTR_TEST_DIR=" + dir_.path() + "/tests"};
    o.env_extra.insert(o.env_extra.end(), env.begin(), env.end());
    auto r = run(args, o, std::chrono::minutes(5));
    EXPECT_TRUE(r.has_value());
    return r ? *r : Completed{-1, "", r.error().msg};
  }

  // `ktstr test --json <spec>`: the one test's JSON object. Auto-repro is
  // off unless asked for: only the repro tests need the second VM.
  nlohmann::json test_json(const std::string& spec, int* status = nullptr, bool auto_repro = false) const {
    std::vector<std::string> args = {"test", "--json", spec};
    if (!auto_repro) args.push_back("--no-auto-repro");
    auto r = ktstr(args);
    if (status) *status = r.status;
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    if (j.is_discarded() || !j.contains("tests") || j["tests"].empty()) {
      ADD_FAILURE() << "no JSON from ktstr test (status " << r.status << "): " << r.err;
      return nlohmann::json::object();
    }
    return j["tests"][0];
  }

  std::string path() const { return dir_.path(); }

 private:
  explicit VmStore(TempDir d) : dir_(std::move(d)) {}
  TempDir dir_;
};

#define KTSTR_VM_STORE(var)                                                                        \
  auto var##_opt = ::ktstr::testing::VmStore::create();                                            \
  KTSTR_VM_REQUIRE(var##_opt.has_value(), "no cached sched_ext kernel or no qemu-system-x86_64"); \
  const auto& var = *var##_opt

}  // namespace ktstr::testing
