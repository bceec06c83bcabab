// A test that needs sched_ext on a kernel without it: one clear error before
// any VM boots, and the store keeps no run. Uses the real cached kernel image,
// registered in a private store and marked as lacking sched_ext.
#include "core/fs.hpp"
#include "core/subprocess.hpp"
#include "db/store.hpp"
#include "vm/vm_env.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace ktstr {
namespace {

const std::string kKtstr = std::string(KTSTR_BINARY_DIR) + "/bin/ktstr";

std::string cached_image() {
  auto r = run({kKtstr, "kernel", "list", "--json"});
  if (!r || !r->ok()) return "";
  auto j = nlohmann::json::parse(r->out, nullptr, false);
  if (!j.is_array()) return "";
  for (auto& k : j)
    if (!k.value("corrupt", true)) return k.value("image", "");
  return "";
}

TEST(NeedsSchedExt, KernelWithoutSchedExtIsRefusedBeforeBoot) {
  std::string image = cached_image();
  KTSTR_VM_REQUIRE(!image.empty(), "no cached kernel image (run 'ktstr kernel fetch')");
  auto dir = TempDir::create("ktstr-nosx");
  ASSERT_TRUE(dir);
  std::string cache = dir->path() + "/cache";
  SpawnOptions o;
  o.env_extra = {"KTSTR_CACHE_DIR=" + cache};
  auto add = run({kKtstr, "kernel", "add", image, "--name", "nosx"}, o);
  ASSERT_TRUE(add && add->ok()) << (add ? add->err : add.error().msg);
  {
    auto store = db::Store::open(cache);
    ASSERT_TRUE(store);
    auto k = (*store)->find_kernel("nosx");
    ASSERT_TRUE(k && *k);
    KernelRecord rec = **k;
    rec.sched_ext = false;
    ASSERT_TRUE((*store)->put_kernel(rec));
  }
  std::string spec = dir->path() + "/t.toml";
  ASSERT_TRUE(write_file_atomic(spec, "[[test]]\nname = \"needs_scx\"\nscheduler = \"scx-ktstr\"\n"));
  auto r = run({kKtstr, "test", spec, "--kernel", "nosx"}, o, std::chrono::seconds(60));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 2);
  EXPECT_NE(r->err.find("has no sched_ext"), std::string::npos) << r->err;
  EXPECT_NE(r->err.find("hint:"), std::string::npos);
  auto store = db::Store::open(cache);
  ASSERT_TRUE(store);
  auto runs = (*store)->list_runs();
  ASSERT_TRUE(runs);
  EXPECT_TRUE(runs->empty()) << "a refused test must not be recorded";
}

}  // namespace
}  // namespace ktstr
