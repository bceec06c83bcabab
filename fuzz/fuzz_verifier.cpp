// libFuzzer target: what `ktstr verifier` reads. The input is a verifier
// log for parse_verifier_stats (core/verifier_stats.hpp), a file for the
// BPF object scan (core/bpf_elf.hpp: find_bpf_objects, then
// bpf_program_sections on each object found), and a VERIFIER_RESULT
// payload for the strict decoder (guest/proto/verifier_messages.cpp).
// None may crash, hang, throw or read outside the input.
#include "core/bpf_elf.hpp"
#include "core/verifier_stats.hpp"
#include "guest/proto/messages.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

using namespace ktstr;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);

  VerifierLogStats st = parse_verifier_stats(bytes);
  if (!st.stack_depth.empty() && st.stack_depth.find_first_not_of("0123456789+") != std::string::npos) std::abort();

  if (auto spans = find_bpf_objects(bytes)) {
    for (const BpfObjectSpan& s : *spans) {
      if (s.offset > size || s.size > size - s.offset) std::abort();  // a span outside the file
      (void)bpf_program_sections(bytes.substr(s.offset, s.size));
    }
  }
  (void)bpf_program_sections(bytes);

  proto::Frame f;
  f.type = proto::MsgType::VerifierResult;
  f.payload = std::string(bytes);
  if (auto m = proto::decode_payload<proto::VerifierResultMsg>(f)) {
    if (m->programs.size() > proto::kMaxVerifierPrograms) std::abort();
    VerifierReport r;
    for (const auto& p : m->programs) {
      VerifierProgram vp;
      vp.name = p.name;
      vp.loaded = p.loaded;
      vp.stats = parse_verifier_stats(p.log);
      r.programs.push_back(vp);
    }
    (void)render_verifier_table(r);
    (void)to_json(r).dump();
  }
  return 0;
}
