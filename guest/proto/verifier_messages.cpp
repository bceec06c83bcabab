// JSON for the verifier plan (in JobMsg, version 4) and the VERIFIER_RESULT
// payload. Strict like messages.cpp; the host bounds what a guest sends.
#include "guest/proto/json_fields.hpp"
#include "guest/proto/messages.hpp"

namespace ktstr::proto {

using nlohmann::json;

using detail::get_field;
using detail::get_optional;
using detail::get_unsigned;

namespace {

json opt(const std::optional<uint64_t>& v) { return v ? json(*v) : json(nullptr); }

void get_opt_unsigned(const json& j, const char* key, std::optional<uint64_t>& out) {
  out.reset();
  if (!j.contains(key) || j.at(key).is_null()) return;
  uint64_t v = 0;
  get_unsigned(j, key, v);
  out = v;
}

}  // namespace

Status validate_verifier_plan(const VerifierPlan& plan) {
  if (plan.objects.empty()) return fail("verifier plan has no objects");
  if (plan.objects.size() > kMaxVerifierObjects)
    return fail("verifier plan has " + std::to_string(plan.objects.size()) + " objects, more than " +
                std::to_string(kMaxVerifierObjects));
  for (const std::string& path : plan.objects)
    if (path.empty() || path.front() != '/') return fail("verifier object path '" + path + "' is not absolute");
  return {};
}

void to_json(json& j, const VerifierPlan& v) { j = {{"objects", v.objects}}; }
void from_json(const json& j, VerifierPlan& v) { get_field(j, "objects", v.objects); }

void to_json(json& j, const VerifierProgramMsg& v) {
  j = {{"name", v.name},
       {"section", v.section},
       {"type", v.type},
       {"attach", v.attach},
       {"loaded", v.loaded},
       {"error", v.error},
       {"log", v.log},
       {"verified_insns", opt(v.verified_insns)},
       {"xlated_bytes", opt(v.xlated_bytes)},
       {"jited_bytes", opt(v.jited_bytes)}};
}
void from_json(const json& j, VerifierProgramMsg& v) {
  get_field(j, "name", v.name);
  get_optional(j, "section", v.section);
  get_optional(j, "type", v.type);
  get_optional(j, "attach", v.attach);
  get_field(j, "loaded", v.loaded);
  get_optional(j, "error", v.error);
  get_optional(j, "log", v.log);
  get_opt_unsigned(j, "verified_insns", v.verified_insns);
  get_opt_unsigned(j, "xlated_bytes", v.xlated_bytes);
  get_opt_unsigned(j, "jited_bytes", v.jited_bytes);
}

void to_json(json& j, const VerifierResultMsg& v) {
  j = {{"object", v.object},   {"path", v.path},         {"opened", v.opened},
       {"loaded", v.loaded},   {"error", v.error},       {"libbpf_log", v.libbpf_log},
       {"programs", v.programs}, {"load_ms", v.load_ms}, {"t_ms", v.t_ms}};
}
void from_json(const json& j, VerifierResultMsg& v) {
  get_unsigned(j, "object", v.object);
  get_optional(j, "path", v.path);
  get_field(j, "opened", v.opened);
  get_field(j, "loaded", v.loaded);
  get_optional(j, "error", v.error);
  get_optional(j, "libbpf_log", v.libbpf_log);
  get_field(j, "programs", v.programs);
  if (v.programs.size() > kMaxVerifierPrograms)
    throw std::runtime_error("more than " + std::to_string(kMaxVerifierPrograms) + " programs");
  if (j.contains("load_ms")) get_unsigned(j, "load_ms", v.load_ms);
  if (j.contains("t_ms")) get_unsigned(j, "t_ms", v.t_ms);
}

}  // namespace ktstr::proto
