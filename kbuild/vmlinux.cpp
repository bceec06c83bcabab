#include "kbuild/vmlinux.hpp"

#include "core/fs.hpp"

#include <gelf.h>
#include <libelf.h>
#include <lz4.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>

#include <spdlog/spdlog.h>

#include <climits>
#include <cstring>
#include <memory>
#include <vector>

namespace ktstr::kbuild {

const char* payload_format_name(PayloadFormat f) {
  switch (f) {
    case PayloadFormat::kZstd: return "zstd";
    case PayloadFormat::kXz: return "xz";
    case PayloadFormat::kGzip: return "gzip";
    case PayloadFormat::kLz4Legacy: return "lz4";
  }
  return "?";
}

namespace {

constexpr size_t kChunk = size_t{1} << 20;          // output step of zstd/xz/gzip
constexpr size_t kScratchBytes = size_t{8} << 20;   // an lz4 legacy block
// Real images have a handful of magic matches before the payload; garbage
// made of magics would otherwise cost seconds per megabyte.
constexpr size_t kMaxCandidates = 4096;
constexpr std::string_view kElfMagic{"\x7f" "ELF", 4};

// Why one candidate failed; kNotElf is the common, quiet case.
enum class Outcome { kOk, kNotElf, kTooBig, kTruncated, kCorrupt };

const char* outcome_text(Outcome o) {
  switch (o) {
    case Outcome::kOk: return "ok";
    case Outcome::kNotElf: return "not an ELF";
    case Outcome::kTooBig: return "output larger than the limit";
    case Outcome::kTruncated: return "truncated stream";
    case Outcome::kCorrupt: return "corrupt stream";
  }
  return "?";
}

// Collects decompressed bytes; stops a candidate as soon as its first bytes
// are not an ELF header, so false magic matches cost almost nothing.
struct Sink {
  std::string& out;
  size_t max;
  std::vector<char>& scratch;  // one buffer for every candidate (8 MiB: an lz4 block)
  bool elf_seen = false;
  Outcome stop = Outcome::kOk;

  bool append(const void* p, size_t n) {
    if (n > max - out.size()) {
      stop = Outcome::kTooBig;
      return false;
    }
    out.append(static_cast<const char*>(p), n);
    if (!elf_seen && out.size() >= kElfMagic.size()) {
      if (out.compare(0, kElfMagic.size(), kElfMagic) != 0) {
        stop = Outcome::kNotElf;
        return false;
      }
      elf_seen = true;
    }
    return true;
  }
  // A stream that ended cleanly but never produced 4 bytes is not an ELF.
  Outcome finish() const { return elf_seen ? Outcome::kOk : Outcome::kNotElf; }
};

Outcome decompress_zstd(std::string_view in, Sink& sink) {
  std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> dctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
  if (!dctx) return Outcome::kCorrupt;
  std::vector<char>& buf = sink.scratch;
  ZSTD_inBuffer ib{in.data(), in.size(), 0};
  for (;;) {
    ZSTD_outBuffer ob{buf.data(), kChunk, 0};
    size_t before = ib.pos;
    size_t r = ZSTD_decompressStream(dctx.get(), &ob, &ib);
    if (ZSTD_isError(r)) return sink.elf_seen ? Outcome::kCorrupt : Outcome::kNotElf;
    if (!sink.append(buf.data(), ob.pos)) return sink.stop;
    if (r == 0) return sink.finish();  // frame complete
    if (ob.pos == 0 && ib.pos == before) return sink.elf_seen ? Outcome::kTruncated : Outcome::kNotElf;
  }
}

Outcome decompress_xz(std::string_view in, Sink& sink) {
  lzma_stream s = LZMA_STREAM_INIT;
  // One stream only (no LZMA_CONCATENATED): bytes after it are the rest of the image.
  // The kernel's xz dictionary is at most 32 MiB; the limit stops garbage headers asking for more.
  if (lzma_stream_decoder(&s, uint64_t{256} << 20, 0) != LZMA_OK) return Outcome::kCorrupt;
  std::unique_ptr<lzma_stream, void (*)(lzma_stream*)> guard(&s, lzma_end);
  auto* buf = reinterpret_cast<uint8_t*>(sink.scratch.data());
  s.next_in = reinterpret_cast<const uint8_t*>(in.data());
  s.avail_in = in.size();
  for (;;) {
    s.next_out = buf;
    s.avail_out = kChunk;
    lzma_ret r = lzma_code(&s, LZMA_FINISH);
    if (!sink.append(buf, kChunk - s.avail_out)) return sink.stop;
    if (r == LZMA_STREAM_END) return sink.finish();
    if (r == LZMA_BUF_ERROR) return sink.elf_seen ? Outcome::kTruncated : Outcome::kNotElf;
    if (r != LZMA_OK) return sink.elf_seen ? Outcome::kCorrupt : Outcome::kNotElf;
  }
}

Outcome decompress_gzip(std::string_view in, Sink& sink) {
  z_stream z{};
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) return Outcome::kCorrupt;
  std::unique_ptr<z_stream, int (*)(z_stream*)> guard(&z, inflateEnd);
  auto* buf = reinterpret_cast<unsigned char*>(sink.scratch.data());
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(std::min<size_t>(in.size(), UINT_MAX));
  for (;;) {
    z.next_out = buf;
    z.avail_out = static_cast<uInt>(kChunk);
    int r = inflate(&z, Z_NO_FLUSH);
    if (!sink.append(buf, kChunk - z.avail_out)) return sink.stop;
    if (r == Z_STREAM_END) return sink.finish();
    if (r == Z_BUF_ERROR) return sink.elf_seen ? Outcome::kTruncated : Outcome::kNotElf;
    if (r != Z_OK) return sink.elf_seen ? Outcome::kCorrupt : Outcome::kNotElf;
  }
}

// LZ4 legacy frame (what `lz4 -l` writes): magic, then blocks of
// <u32 LE compressed size><data>, each decoding to 8 MiB except the last.
Outcome decompress_lz4_legacy(std::string_view in, Sink& sink) {
  constexpr size_t kBlock = size_t{8} << 20;
  const size_t max_compressed = static_cast<size_t>(LZ4_compressBound(static_cast<int>(kBlock)));
  std::vector<char>& buf = sink.scratch;
  size_t pos = 4;  // past the magic
  bool any = false;
  while (pos + 4 <= in.size()) {
    uint32_t n;
    std::memcpy(&n, in.data() + pos, 4);  // x86 only: little-endian like the format
    if (n == 0x184C2102) {  // another legacy frame follows
      pos += 4;
      continue;
    }
    if (n == 0 || n > max_compressed || n > in.size() - pos - 4) break;  // the end (e.g. size trailer)
    int got = LZ4_decompress_safe(in.data() + pos + 4, buf.data(), static_cast<int>(n),
                                  static_cast<int>(kBlock));
    if (got < 0) {
      if (!any) return Outcome::kNotElf;
      break;  // what follows is not ours
    }
    any = true;
    if (!sink.append(buf.data(), static_cast<size_t>(got))) return sink.stop;
    pos += 4 + n;
    if (static_cast<size_t>(got) < kBlock) break;  // a short block is the last one
  }
  if (!any) return Outcome::kNotElf;
  return sink.finish();
}

struct Magic {
  PayloadFormat format;
  std::string_view bytes;
};
const Magic kMagics[] = {
    {PayloadFormat::kZstd, std::string_view("\x28\xb5\x2f\xfd", 4)},
    {PayloadFormat::kXz, std::string_view("\xfd\x37\x7a\x58\x5a\x00", 6)},
    {PayloadFormat::kGzip, std::string_view("\x1f\x8b\x08", 3)},
    {PayloadFormat::kLz4Legacy, std::string_view("\x02\x21\x4c\x18", 4)},
};

Outcome decompress(PayloadFormat f, std::string_view in, Sink& sink) {
  switch (f) {
    case PayloadFormat::kZstd: return decompress_zstd(in, sink);
    case PayloadFormat::kXz: return decompress_xz(in, sink);
    case PayloadFormat::kGzip: return decompress_gzip(in, sink);
    case PayloadFormat::kLz4Legacy: return decompress_lz4_legacy(in, sink);
  }
  return Outcome::kCorrupt;
}

void libelf_init() {
  static const bool ok = elf_version(EV_CURRENT) != EV_NONE;
  (void)ok;
}

}  // namespace

namespace {

// Calls `on_found(scn)` for the section named `section`; false when absent.
template <typename Fn>
Result<bool> with_section(std::string_view elf, const std::string& section, Fn on_found) {
  libelf_init();
  Elf* e = elf_memory(const_cast<char*>(elf.data()), elf.size());
  if (!e) return fail(std::string("cannot parse ELF: ") + elf_errmsg(-1));
  std::unique_ptr<Elf, int (*)(Elf*)> guard(e, elf_end);
  if (elf_kind(e) != ELF_K_ELF) return fail("not an ELF file");
  size_t shstrndx = 0;
  if (elf_getshdrstrndx(e, &shstrndx) != 0)
    return fail(std::string("cannot read ELF section names: ") + elf_errmsg(-1));
  for (Elf_Scn* scn = elf_nextscn(e, nullptr); scn; scn = elf_nextscn(e, scn)) {
    GElf_Shdr sh;
    if (!gelf_getshdr(scn, &sh)) continue;
    const char* name = elf_strptr(e, shstrndx, sh.sh_name);
    if (!name || section != name) continue;
    if (auto s = on_found(scn); !s) return fail(s.error());
    return true;
  }
  return false;
}

}  // namespace

Result<std::string> elf_section_bytes(std::string_view elf, const std::string& section) {
  std::string bytes;
  auto found = with_section(elf, section, [&](Elf_Scn* scn) -> Status {
    Elf_Data* d = elf_getdata(scn, nullptr);
    if (!d || !d->d_buf) return fail("cannot read ELF section '" + section + "'");
    bytes.assign(static_cast<const char*>(d->d_buf), d->d_size);
    return {};
  });
  if (!found) return fail(found.error());
  if (!*found) return fail("ELF has no section '" + section + "'");
  return bytes;
}

Result<bool> elf_has_section(std::string_view elf, const std::string& section) {
  return with_section(elf, section, [](Elf_Scn*) -> Status { return {}; });
}

Result<ExtractedVmlinux> extract_vmlinux_from_memory(std::string_view image, const std::string& what,
                                                     size_t max_out) {
  // The failure worth reporting: a candidate that began as an ELF and then broke.
  std::string best_failure;
  std::vector<char> scratch;
  size_t candidates = 0;
  for (size_t off = 0; off < image.size(); ++off) {
    const unsigned char c = static_cast<unsigned char>(image[off]);
    if (c != 0x28 && c != 0xfd && c != 0x1f && c != 0x02) continue;
    for (const Magic& m : kMagics) {
      if (image.compare(off, m.bytes.size(), m.bytes) != 0) continue;
      if (++candidates > kMaxCandidates)
        return fail("no compressed vmlinux found in '" + what + "' (gave up after " +
                        std::to_string(kMaxCandidates) + " false payload candidates)",
                    "is it a bzImage?");
      ExtractedVmlinux r;
      if (scratch.empty()) scratch.resize(kScratchBytes);
      Sink sink{r.elf, max_out, scratch};
      Outcome o = decompress(m.format, image.substr(off), sink);
      if (o == Outcome::kNotElf) continue;
      if (o != Outcome::kOk) {
        spdlog::debug("{} payload at offset {} in '{}': {}", payload_format_name(m.format), off, what,
                      outcome_text(o));
        if (best_failure.empty())
          best_failure = fmt::format("{} at offset {}: {}", payload_format_name(m.format), off,
                                     outcome_text(o));
        continue;
      }
      auto has_btf = elf_has_section(r.elf, ".BTF");
      if (!has_btf) {
        if (best_failure.empty())
          best_failure = fmt::format("{} at offset {}: {}", payload_format_name(m.format), off,
                                     has_btf.error().msg);
        continue;
      }
      if (!*has_btf)
        return fail("vmlinux in '" + what + "' has no .BTF section",
                    "build the kernel with CONFIG_DEBUG_INFO_BTF=y (sched_ext needs BTF)");
      r.format = m.format;
      r.payload_offset = off;
      spdlog::debug("vmlinux from '{}': {} payload at offset {}, {} bytes", what,
                    payload_format_name(m.format), off, r.elf.size());
      return r;
    }
  }
  if (!best_failure.empty())
    return fail("cannot decompress the vmlinux in '" + what + "' (" + best_failure + ")",
                "the image looks damaged; fetch or build it again");
  return fail("no compressed vmlinux found in '" + what + "'",
              "is it a bzImage? ktstr reads zstd, xz, gzip and lz4 payloads");
}

Result<std::string> extract_vmlinux(const std::string& bzimage_path, const std::string& out_path) {
  auto image = read_file(bzimage_path, size_t{512} << 20);
  if (!image) return fail(image.error());
  auto vm = extract_vmlinux_from_memory(*image, bzimage_path);
  if (!vm) return fail(vm.error());
  if (auto w = write_file_atomic(out_path, vm->elf); !w) return fail(w.error());
  return out_path;
}

}  // namespace ktstr::kbuild
