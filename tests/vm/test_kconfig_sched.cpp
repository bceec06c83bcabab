// A scheduler whose BPF code reads the kernel config through libbpf's
// `__kconfig` externs (tests/sched/scx_hz: CONFIG_HZ) loads, attaches and
// runs in the guest, and reads the booted kernel's own CONFIG_HZ. With no
// config for the kernel, the report names libbpf's error instead of only
// "scheduler never attached".
#include "vm/vm_store.hpp"

#include <gtest/gtest.h>

#include <regex>
#include <string>

namespace ktstr::testing {
namespace {

const std::string kHz = std::string(KTSTR_BINARY_DIR) + "/tests/sched/scx_hz";

std::string hz_spec(const std::string& dir) {
  std::string path = dir + "/kconfig_hz.toml";
  auto st = write_file_atomic(path, "[[test]]\nname = \"kconfig_hz\"\nscheduler = \"" + kHz +
                                        "\"\ntopology = \"1n1l2c1t\"\nscenario = \"steady\"\nduration_s = 2\n");
  EXPECT_TRUE(st.has_value());
  return path;
}

// The store's one kernel as `kernel list --json` shows it.
nlohmann::json only_kernel(const VmStore& store) {
  auto list = store.ktstr({"kernel", "list", "--json"});
  auto j = nlohmann::json::parse(list.out, nullptr, false);
  if (j.is_discarded() || !j.is_array() || j.size() != 1) {
    ADD_FAILURE() << "kernel list: " << list.out << list.err;
    return nlohmann::json::object();
  }
  return j[0];
}

TEST(KconfigSched, ReadsTheBootedKernelsConfigHz) {
  KTSTR_VM_STORE(store);
  auto kernel = only_kernel(store);
  const std::string config_path = kernel.value("config", "");
  ASSERT_FALSE(config_path.empty()) << "the cached kernel has no config: " << kernel.dump();
  auto config = read_file(config_path);
  ASSERT_TRUE(config.has_value());
  std::smatch m;
  ASSERT_TRUE(std::regex_search(*config, m, std::regex("\nCONFIG_HZ=([0-9]+)\n")));
  const std::string hz = m[1];

  auto tmp = TempDir::create("ktstr-kconfig");
  ASSERT_TRUE(tmp.has_value());
  int status = -1;
  auto t = store.test_json(hz_spec(tmp->path()), &status);
  EXPECT_EQ(status, 0) << t.value("reason", "");
  EXPECT_EQ(t.value("status", ""), "pass") << t.dump(1).substr(0, 4000);
  EXPECT_TRUE(t["sched"].value("attached", false));
  std::string log = t["sched"].value("log", "");
  // Printed by scx_hz from what its BPF code read in ops.init.
  EXPECT_NE(log.find("scx_hz: attached (CONFIG_HZ=" + hz + ","), std::string::npos) << log << "\nwant " << hz;
  EXPECT_EQ(log.find("failed to open system Kconfig"), std::string::npos) << log;
  EXPECT_FALSE(t["workers"].empty());
}

TEST(KconfigSched, WithoutAConfigTheReportShowsLibbpfsError) {
  // A cache whose kernel has no config: the image alone, added by path.
  KTSTR_VM_STORE(store);
  const std::string image = only_kernel(store).value("image", "");
  ASSERT_FALSE(image.empty());
  auto tmp = TempDir::create("ktstr-noconfig");
  ASSERT_TRUE(tmp.has_value());
  const std::string lone = tmp->path() + "/img/bzImage";
  ASSERT_TRUE(make_dirs(tmp->path() + "/img").has_value());
  ASSERT_TRUE(copy_file_atomic(image, lone).has_value());
  SpawnOptions o;
  o.env_extra = {"KTSTR_CACHE_DIR=" + tmp->path() + "/cache"};
  auto add = run({kKtstrBin, "kernel", "add", lone}, o, std::chrono::minutes(5));
  ASSERT_TRUE(add && add->status == 0) << (add ? add->err : add.error().msg);
  auto r = run({kKtstrBin, "test", "--json", "--no-auto-repro", hz_spec(tmp->path())}, o, std::chrono::minutes(5));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 1) << r->err;
  auto j = nlohmann::json::parse(r->out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r->out << r->err;
  auto& t = j["tests"][0];
  EXPECT_EQ(t.value("failure_kind", ""), "attach_failed") << t.dump(1).substr(0, 4000);
  const std::string reason = t.value("reason", "");
  EXPECT_NE(reason.find("libbpf: failed to open system Kconfig"), std::string::npos) << reason;
  bool noted = false;
  for (auto& d : t["diagnostics"])
    if (d.get<std::string>().find("has no config in the cache") != std::string::npos) noted = true;
  EXPECT_TRUE(noted) << t["diagnostics"];
}

}  // namespace
}  // namespace ktstr::testing
