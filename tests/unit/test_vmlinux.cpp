// vmlinux extraction, bzImage header parsing and BTF inspection on a real
// kernel image (label `kernel`): KTSTR_TEST_BZIMAGE, else the newest image in
// the kernel cache, else /tmp/ktstr-kernel. In CI a missing image fails.
#include "kbuild/btf_info.hpp"
#include "kbuild/bzimage.hpp"
#include "kbuild/vmlinux.hpp"

#include "core/fs.hpp"
#include "tests/vm/vm_env.hpp"

#include <gtest/gtest.h>
#include <lz4.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <random>

namespace fs = std::filesystem;
using namespace ktstr;
using namespace ktstr::kbuild;

namespace {

// Real images on this machine, most preferred first.
std::vector<std::string> candidate_images() {
  std::vector<std::string> out;
  if (const char* e = std::getenv("KTSTR_TEST_BZIMAGE"); e && *e) out.push_back(e);
  std::error_code ec;
  std::vector<fs::path> cached;
  for (auto& d : fs::directory_iterator(cache_dir() + "/artifacts/kernels", ec))
    if (fs::exists(d.path() / "bzImage", ec)) cached.push_back(d.path() / "bzImage");
  std::sort(cached.begin(), cached.end(), [](const fs::path& a, const fs::path& b) {
    std::error_code e1, e2;
    return fs::last_write_time(a, e1) > fs::last_write_time(b, e2);
  });
  for (auto& p : cached) out.push_back(p.string());
  for (auto& d : fs::directory_iterator("/tmp/ktstr-kernel/x/usr/lib/modules", ec))
    if (fs::exists(d.path() / "vmlinuz", ec)) out.push_back((d.path() / "vmlinuz").string());
  for (auto& d : fs::directory_iterator("/tmp/ktstr-kernel/x/boot", ec))
    if (d.path().filename().string().rfind("vmlinuz-", 0) == 0) out.push_back(d.path().string());
  return out;
}

struct RealImage {
  std::string path;
  std::string release;
  std::string bytes;
};

// The first candidate whose release matches `version` ("" = any).
std::optional<RealImage> find_image(const std::string& version) {
  for (auto& p : candidate_images()) {
    auto rel = bzimage_version(p);
    if (!rel || (!version.empty() && !version_matches(*rel, version))) continue;
    auto bytes = read_file(p);
    if (bytes) return RealImage{p, *rel, std::move(*bytes)};
  }
  return std::nullopt;
}

std::string junk(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  // False starts: every magic, followed by garbage.
  const std::string magics[] = {std::string("\x28\xb5\x2f\xfd", 4), std::string("\xfd\x37\x7a\x58\x5a\x00", 6),
                                std::string("\x1f\x8b\x08", 3), std::string("\x02\x21\x4c\x18", 4)};
  size_t at = 16;
  for (auto& m : magics) {
    if (at + m.size() < n) s.replace(at, m.size(), m);
    at += 64;
  }
  return s;
}

std::string xz_compress(const std::string& in) {
  std::string out(lzma_stream_buffer_bound(in.size()), '\0');
  size_t pos = 0;
  lzma_ret r = lzma_easy_buffer_encode(0, LZMA_CHECK_CRC32, nullptr,
                                       reinterpret_cast<const uint8_t*>(in.data()), in.size(),
                                       reinterpret_cast<uint8_t*>(out.data()), &pos, out.size());
  EXPECT_EQ(r, LZMA_OK);
  out.resize(pos);
  return out;
}

std::string gzip_compress(const std::string& in) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, 1, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&z, in.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// The legacy frame `lz4 -l` writes: magic, then <u32 size><block> per 8 MiB.
std::string lz4_legacy_compress(const std::string& in) {
  constexpr size_t kBlock = size_t{8} << 20;
  std::string out("\x02\x21\x4c\x18", 4);
  std::string buf(LZ4_compressBound(kBlock), '\0');
  for (size_t off = 0; off < in.size(); off += kBlock) {
    size_t n = std::min(kBlock, in.size() - off);
    int c = LZ4_compress_default(in.data() + off, buf.data(), static_cast<int>(n), static_cast<int>(buf.size()));
    EXPECT_GT(c, 0);
    uint32_t len = static_cast<uint32_t>(c);
    out.append(reinterpret_cast<const char*>(&len), 4);
    out.append(buf.data(), static_cast<size_t>(c));
  }
  uint32_t total = static_cast<uint32_t>(in.size());  // the kernel appends the size too
  out.append(reinterpret_cast<const char*>(&total), 4);
  return out;
}

class RealKernel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    image_ = find_image("");
    if (!image_) return;
    auto vm = extract_vmlinux_from_memory(image_->bytes, image_->path);
    if (vm) vmlinux_ = std::move(*vm);
    else extract_error_ = vm.error().msg;
  }
  static void TearDownTestSuite() {
    image_.reset();
    vmlinux_.reset();
  }
  void SetUp() override {
    KTSTR_VM_REQUIRE(image_.has_value(),
                     "no kernel image: set KTSTR_TEST_BZIMAGE or run 'ktstr kernel fetch'");
    ASSERT_TRUE(vmlinux_.has_value()) << extract_error_;
  }
  static inline std::optional<RealImage> image_;
  static inline std::optional<ExtractedVmlinux> vmlinux_;
  static inline std::string extract_error_;
};

}  // namespace

TEST_F(RealKernel, ExtractsElfWithBtf) {
  EXPECT_EQ(vmlinux_->elf.compare(0, 4, "\x7f" "ELF"), 0);
  EXPECT_GT(vmlinux_->elf.size(), image_->bytes.size());
  auto btf = elf_has_section(vmlinux_->elf, ".BTF");
  ASSERT_TRUE(btf) << btf.error().msg;
  EXPECT_TRUE(*btf);
  EXPECT_GT(vmlinux_->payload_offset, 0x200u);  // after the setup header
}

TEST_F(RealKernel, ExtractToFileWritesSameBytes) {
  auto dir = TempDir::create("ktstr-test");
  ASSERT_TRUE(dir);
  std::string out = dir->path() + "/vmlinux";
  auto r = extract_vmlinux(image_->path, out);
  ASSERT_TRUE(r) << r.error().msg;
  auto written = read_file(out);
  ASSERT_TRUE(written);
  EXPECT_TRUE(*written == vmlinux_->elf);
}

TEST_F(RealKernel, FindsRecompressedPayloadsBetweenJunk) {
  struct Case {
    PayloadFormat format;
    std::string compressed;
  };
  Case cases[] = {{PayloadFormat::kXz, xz_compress(vmlinux_->elf)},
                  {PayloadFormat::kGzip, gzip_compress(vmlinux_->elf)},
                  {PayloadFormat::kLz4Legacy, lz4_legacy_compress(vmlinux_->elf)}};
  unsigned seed = 1;
  for (auto& c : cases) {
    std::string prefix = junk(8192, seed++);
    std::string blob = prefix + c.compressed + junk(4096, seed++);
    auto r = extract_vmlinux_from_memory(blob, payload_format_name(c.format));
    ASSERT_TRUE(r) << payload_format_name(c.format) << ": " << r.error().msg;
    EXPECT_EQ(r->format, c.format);
    EXPECT_EQ(r->payload_offset, prefix.size());
    EXPECT_TRUE(r->elf == vmlinux_->elf) << payload_format_name(c.format);
  }
}

TEST_F(RealKernel, TruncatedImageIsAnError) {
  std::string_view half(image_->bytes.data(), image_->bytes.size() / 2);
  auto r = extract_vmlinux_from_memory(half, "half");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().msg.find("cannot decompress"), std::string::npos) << r.error().msg;
}

TEST_F(RealKernel, OutputLimitIsEnforced) {
  auto r = extract_vmlinux_from_memory(image_->bytes, "img", size_t{1} << 20);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().msg.find("larger than the limit"), std::string::npos) << r.error().msg;
}

TEST_F(RealKernel, VersionFromHeader) {
  auto v = bzimage_version_from_memory(image_->bytes, image_->path);
  ASSERT_TRUE(v) << v.error().msg;
  EXPECT_EQ(*v, image_->release);
  EXPECT_TRUE(looks_like_version(upstream_version(*v))) << *v;
  // Debian installs the image under a name holding its release: they must agree.
  if (image_->path.find("/tmp/ktstr-kernel/") == 0) {
    EXPECT_NE(image_->path.find(*v), std::string::npos) << image_->path << " vs " << *v;
  }
}

TEST_F(RealKernel, BtfFromFileAndFromMemoryAgree) {
  auto dir = TempDir::create("ktstr-test");
  ASSERT_TRUE(dir);
  ASSERT_TRUE(write_file_atomic(dir->path() + "/vmlinux", vmlinux_->elf));
  auto from_file = inspect_btf_file(dir->path() + "/vmlinux");
  ASSERT_TRUE(from_file) << from_file.error().msg;
  auto raw = elf_section_bytes(vmlinux_->elf, ".BTF");
  ASSERT_TRUE(raw) << raw.error().msg;
  auto from_mem = inspect_btf_raw(*raw);
  ASSERT_TRUE(from_mem) << from_mem.error().msg;
  EXPECT_EQ(from_file->sched_ext_ops, from_mem->sched_ext_ops);
  EXPECT_EQ(from_file->tracepoints, from_mem->tracepoints);
}

namespace {

BtfFeatures features_of_version(const std::string& version, bool required) {
  auto img = find_image(version);
  if (!img) {
    if (required && ktstr::testing::in_ci()) ADD_FAILURE() << "CI=true and no " << version << " image";
    return {};
  }
  auto vm = extract_vmlinux_from_memory(img->bytes, img->path);
  EXPECT_TRUE(vm) << vm.error().msg;
  if (!vm) return {};
  auto raw = elf_section_bytes(vm->elf, ".BTF");
  EXPECT_TRUE(raw);
  if (!raw) return {};
  auto f = inspect_btf_raw(*raw);
  EXPECT_TRUE(f) << f.error().msg;
  return f ? *f : BtfFeatures{};
}

bool has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

TEST(KernelBtf, Kernel73HasSchedExtExitTracepoint) {
  if (!find_image("7.3")) {
    KTSTR_VM_REQUIRE(false, "no 7.3 kernel image: run 'ktstr kernel fetch 7.3'");
  }
  auto f = features_of_version("7.3", true);
  EXPECT_TRUE(f.sched_ext_ops);
  EXPECT_TRUE(has(f.tracepoints, "sched_ext_exit"));
  EXPECT_TRUE(has(f.tracepoints, "sched_ext_dump"));
  for (auto& t : f.tracepoints) EXPECT_EQ(t.rfind("sched_ext_", 0), 0u) << t;
}

TEST(KernelBtf, Kernel617LacksSchedExtExitTracepoint) {
  if (!find_image("6.17")) GTEST_SKIP() << "no 6.17 kernel image here";
  auto f = features_of_version("6.17", false);
  EXPECT_TRUE(f.sched_ext_ops);
  EXPECT_FALSE(has(f.tracepoints, "sched_ext_exit"));
  EXPECT_TRUE(has(f.tracepoints, "sched_ext_dump"));
}

TEST(Vmlinux, GarbageAndEmptyInputAreErrors) {
  auto empty = extract_vmlinux_from_memory("", "empty");
  ASSERT_FALSE(empty);
  EXPECT_NE(empty.error().msg.find("no compressed vmlinux found in 'empty'"), std::string::npos);
  EXPECT_FALSE(empty.error().hint.empty());
  EXPECT_FALSE(extract_vmlinux_from_memory(junk(1 << 20, 7), "junk"));
  // A well-formed stream that holds something other than an ELF.
  std::string text(100000, 'k');
  std::string z(ZSTD_compressBound(text.size()), '\0');
  z.resize(ZSTD_compress(z.data(), z.size(), text.data(), text.size(), 1));
  auto not_elf = extract_vmlinux_from_memory(junk(100, 3) + z, "text");
  ASSERT_FALSE(not_elf);
  // Nothing but magics: every offset is a candidate, none may crash or hang.
  std::string magics;
  while (magics.size() < (1u << 20))
    magics += std::string("\x1f\x8b\x08\x00\x28\xb5\x2f\xfd\xfd\x37\x7a\x58\x5a\x00\x02\x21\x4c\x18", 18);
  auto many = extract_vmlinux_from_memory(magics, "magics");
  ASSERT_FALSE(many);
  EXPECT_NE(many.error().msg.find("gave up"), std::string::npos) << many.error().msg;
  // Only the magic, nothing after it.
  EXPECT_FALSE(extract_vmlinux_from_memory(std::string("\x28\xb5\x2f\xfd", 4), "magic"));
  EXPECT_FALSE(extract_vmlinux_from_memory(std::string("\x02\x21\x4c\x18\xff\xff\x00\x00", 8), "lz4"));
}

TEST(Vmlinux, MissingFileIsAnError) {
  auto r = extract_vmlinux("/nonexistent/bzImage", "/nonexistent/vmlinux");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().msg.find("/nonexistent/bzImage"), std::string::npos) << r.error().msg;
}

TEST(BzImage, NotABzImage) {
  auto r = bzimage_version_from_memory(std::string(4096, 'x'), "notes.txt");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().msg, "'notes.txt' is not a bzImage");
  EXPECT_FALSE(r.error().hint.empty());
  // Valid magic, version pointer past the end.
  std::string hdr(0x300, '\0');
  hdr.replace(0x202, 4, "HdrS");
  hdr[0x20E] = '\xff';
  hdr[0x20F] = '\x7f';
  EXPECT_FALSE(bzimage_version_from_memory(hdr, "short"));
  // A synthetic header with a version string.
  hdr[0x20E] = 0x40;  // string at 0x240
  hdr[0x20F] = 0;
  hdr.replace(0x240, 30, std::string("6.9.1-test (me@host) #1 SMP\0", 28) + "xx");
  auto v = bzimage_version_from_memory(hdr, "synthetic");
  ASSERT_TRUE(v) << v.error().msg;
  EXPECT_EQ(*v, "6.9.1-test");
}

TEST(KernelVersion, UpstreamCompareAndMatch) {
  EXPECT_EQ(upstream_version("7.3.4+deb13-cloud-amd64"), "7.3.4");
  EXPECT_EQ(upstream_version("6.17.0-rc1"), "6.17.0");
  EXPECT_LT(compare_versions("6.9", "6.17.13"), 0);
  EXPECT_GT(compare_versions("7.3.4", "7.3"), 0);
  EXPECT_EQ(compare_versions("7.3.4", "7.3.4"), 0);
  EXPECT_TRUE(version_matches("6.17.13+deb13-cloud-amd64", "6.17"));
  EXPECT_TRUE(version_matches("6.17.13+deb13-cloud-amd64", "6.17.13"));
  EXPECT_TRUE(version_matches("6.17.13+deb13-cloud-amd64", "6.17.13+deb13-cloud-amd64"));
  EXPECT_FALSE(version_matches("6.17.13+deb13-cloud-amd64", "6.1"));
  EXPECT_FALSE(version_matches("6.17.13+deb13-cloud-amd64", "6.17.1"));
  EXPECT_TRUE(looks_like_version("7.3"));
  EXPECT_FALSE(looks_like_version("abc123"));
}

TEST(KernelConfig, SchedExtOnlyWhenSetToY) {
  EXPECT_TRUE(config_has_sched_ext("CONFIG_A=y\nCONFIG_SCHED_CLASS_EXT=y\nCONFIG_B=m\n"));
  EXPECT_TRUE(config_has_sched_ext("CONFIG_SCHED_CLASS_EXT=y"));
  EXPECT_FALSE(config_has_sched_ext("# CONFIG_SCHED_CLASS_EXT is not set\n"));
  EXPECT_FALSE(config_has_sched_ext("CONFIG_SCHED_CLASS_EXT=yy\n"));
  EXPECT_FALSE(config_has_sched_ext("XCONFIG_SCHED_CLASS_EXT=y\n"));
}
